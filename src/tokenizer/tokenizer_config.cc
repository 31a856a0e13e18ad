// Parsing of tokenizer_config.json (the transformers-side configuration of a tokenizer).
#include "tokenizer/tokenizer_config.h"

#include "tokenizer/json_util.h"

namespace illada::tokenizer {

using nlohmann::json;
using namespace json_util;

namespace {

// A special token is written either as a string or as {"content": ..., "__type": "AddedToken"}.
std::optional<std::string> token_field(const json& config, const char* key, const std::string& where) {
  const json* v = find(config, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return get_string(*v, "content", str_cat(where, ".", key));
  fail(where, ".", key, ": expected a string or an object with \"content\"");
}

}  // namespace

TokenizerConfig TokenizerConfig::parse(const json& config, const std::string& where) {
  if (!config.is_object()) fail(where, ": expected a JSON object");
  TokenizerConfig c;
  c.bos_token = token_field(config, "bos_token", where);
  c.eos_token = token_field(config, "eos_token", where);
  c.pad_token = token_field(config, "pad_token", where);
  c.unk_token = token_field(config, "unk_token", where);
  c.mask_token = token_field(config, "mask_token", where);
  c.add_bos_token = get_bool(config, "add_bos_token", false, where);
  c.add_eos_token = get_bool(config, "add_eos_token", false, where);
  c.clean_up_tokenization_spaces = get_bool(config, "clean_up_tokenization_spaces", false, where);
  c.tokenizer_class = get_opt_string(config, "tokenizer_class", where).value_or("");
  if (const json* t = find(config, "chat_template")) {
    if (t->is_string()) {
      c.chat_template = t->get<std::string>();
    } else if (t->is_array()) {
      for (size_t i = 0; i < t->size(); ++i) {
        const std::string w = str_cat(where, ".chat_template[", i, "]");
        const json& item = (*t)[i];
        if (!item.is_object()) fail(w, ": expected {\"name\": ..., \"template\": ...}");
        c.chat_templates[get_string(item, "name", w)] = get_string(item, "template", w);
      }
      if (auto it = c.chat_templates.find("default"); it != c.chat_templates.end()) c.chat_template = it->second;
    } else {
      fail(where, ".chat_template: expected a string or a list of named templates");
    }
  }
  return c;
}

}  // namespace illada::tokenizer
