// Typed field access for tokenizer.json / tokenizer_config.json objects, throwing
// illada::Error messages that name the field ("tokenizer.json: pre_tokenizer.pattern: ...").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"
#include "util/check.h"

namespace illada::tokenizer::json_util {

using nlohmann::json;

inline const json* find(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return (it == obj.end() || it->is_null()) ? nullptr : &*it;
}

inline std::string get_string(const json& obj, const char* key, const std::string& where) {
  const json* v = find(obj, key);
  if (!v || !v->is_string()) fail(where, ".", key, ": expected a string");
  return v->get<std::string>();
}

inline std::optional<std::string> get_opt_string(const json& obj, const char* key,
                                                 const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(where, ".", key, ": expected a string or null");
  return v->get<std::string>();
}

inline bool get_bool(const json& obj, const char* key, bool def, const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return def;
  if (!v->is_boolean()) fail(where, ".", key, ": expected true or false");
  return v->get<bool>();
}

inline int64_t get_int(const json& obj, const char* key, int64_t def, const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return def;
  if (!v->is_number_integer()) fail(where, ".", key, ": expected an integer");
  return v->get<int64_t>();
}

// A single Unicode character given as a string (Metaspace replacement, Strip content).
std::string get_char(const json& obj, const char* key, const std::string& def, const std::string& where);

// A tokenizer.json `pattern` field: {"String": "..."} (literal) or {"Regex": "..."}.
Regex get_pattern(const json& obj, const std::string& where);

}  // namespace illada::tokenizer::json_util
