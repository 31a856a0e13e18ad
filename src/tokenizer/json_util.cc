// Field helpers shared by the tokenizer.json component parsers.
#include "tokenizer/json_util.h"

#include "tokenizer/utf8.h"

namespace illada::tokenizer::json_util {

std::string get_char(const json& obj, const char* key, const std::string& def, const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return def;
  if (!v->is_string()) fail(where, ".", key, ": expected a one-character string");
  const std::string s = v->get<std::string>();
  if (s.empty() || static_cast<size_t>(utf8_len(s, 0)) != s.size()) {
    fail(where, ".", key, ": expected exactly one character, got '", s, "'");
  }
  return s;
}

Regex get_pattern(const json& obj, const std::string& where) {
  const json* p = find(obj, "pattern");
  if (!p || !p->is_object()) fail(where, ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
  if (const json* s = find(*p, "String")) {
    if (!s->is_string()) fail(where, ".pattern.String: expected a string");
    return Regex::literal(s->get<std::string>(), where + ".pattern");
  }
  if (const json* r = find(*p, "Regex")) {
    if (!r->is_string()) fail(where, ".pattern.Regex: expected a string");
    return Regex::compile(r->get<std::string>(), where + ".pattern");
  }
  fail(where, ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace illada::tokenizer::json_util
