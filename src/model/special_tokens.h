// The one owner of the special token ids: the mask, EOS, BOS and (chat templates) EOT. A
// model's config.json decides mask/EOS/BOS; its tokenizer must agree and supplies the texts and
// <|eot_id|>; a tokenizer alone (data preparation) decides from tokenizer_config.json, else from
// the LLaDA token names. Everything else asks these functions instead of looking ids up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace illada {
namespace tokenizer {
class Tokenizer;
}

struct SpecialTokens {
  int32_t mask = -1, eos = -1, bos = -1;
  int32_t eot = -1;          // <|eot_id|>, ending a chat turn, when the tokenizer has it
  std::string eos_text, eot_text;  // their texts (empty without a tokenizer / EOT)
  // What ends an answer: EOS and EOT, as ids and as the texts the released code searches for.
  std::vector<int32_t> stop_ids() const;
  std::vector<std::string> stop_texts() const;
};

// A tokenizer on its own: tokenizer_config.json's mask_token / eos_token / bos_token, else
// <|mdm_mask|>, <|endoftext|>, <|startoftext|>. Throws Error naming the tokenizer when it has no
// EOS.
SpecialTokens tokenizer_special_tokens(const tokenizer::Tokenizer& tok);

// A model's: config.json's ids; with its tokenizer (may be null) the texts and EOT, after
// checking that they agree: a tokenizer whose mask token is another id, or whose EOS is neither
// the config's EOS nor the EOT, is an Error naming both sources and ids.
SpecialTokens model_special_tokens(const ModelConfig& c, const tokenizer::Tokenizer* tok);

}  // namespace illada
