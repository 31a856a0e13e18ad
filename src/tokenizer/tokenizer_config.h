// tokenizer_config.json: special tokens, BOS/EOS flags and the chat template(s).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace illada::tokenizer {

struct TokenizerConfig {
  // Token contents; ids are resolved against the tokenizer (-1 when absent).
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token, mask_token;
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1, mask_id = -1;
  bool add_bos_token = false;
  bool add_eos_token = false;
  bool clean_up_tokenization_spaces = false;
  std::string tokenizer_class;
  // The default chat template ("" if none) and any named ones (a list of {name, template}).
  std::string chat_template;
  std::map<std::string, std::string> chat_templates;

  // Parses the JSON object; `where` names the file in errors.
  static TokenizerConfig parse(const nlohmann::json& config, const std::string& where);
};

}  // namespace illada::tokenizer
