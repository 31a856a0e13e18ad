// The special token ids (see special_tokens.h).
#include "model/special_tokens.h"

#include <span>

#include "tokenizer/tokenizer.h"
#include "util/check.h"

namespace illada {
namespace {

std::string text_of(const tokenizer::Tokenizer& tok, int32_t id) {
  return id < 0 ? std::string() : tok.decode(std::span<const int32_t>(&id, 1), false);
}

int32_t named_or(int32_t id, const tokenizer::Tokenizer& tok, const char* name) {
  return id >= 0 ? id : tok.token_to_id(name);
}

}  // namespace

std::vector<int32_t> SpecialTokens::stop_ids() const {
  std::vector<int32_t> ids{eos};
  if (eot >= 0 && eot != eos) ids.push_back(eot);
  return ids;
}

std::vector<std::string> SpecialTokens::stop_texts() const {
  std::vector<std::string> texts{eos_text};
  if (!eot_text.empty() && eot_text != eos_text) texts.push_back(eot_text);
  return texts;
}

SpecialTokens tokenizer_special_tokens(const tokenizer::Tokenizer& tok) {
  const auto& cfg = tok.config();
  SpecialTokens s;
  s.mask = named_or(cfg.mask_id, tok, "<|mdm_mask|>");
  s.eos = named_or(cfg.eos_id, tok, "<|endoftext|>");
  s.bos = named_or(cfg.bos_id, tok, "<|startoftext|>");
  s.eot = tok.token_to_id("<|eot_id|>");
  if (s.eos < 0) fail(tok.source(), ": the tokenizer has no EOS token (eos_token in tokenizer_config.json)");
  s.eos_text = text_of(tok, s.eos);
  s.eot_text = text_of(tok, s.eot);
  return s;
}

SpecialTokens model_special_tokens(const ModelConfig& c, const tokenizer::Tokenizer* tok) {
  SpecialTokens s{.mask = c.mask_token_id, .eos = c.eos_token_id, .bos = c.bos_token_id};
  if (!tok) return s;
  const SpecialTokens t = tokenizer_special_tokens(*tok);
  s.eot = t.eot;
  if (t.mask >= 0 && t.mask != s.mask) {
    fail("the model's config.json says mask_token_id ", s.mask, " but its tokenizer (", tok->source(),
         ") has the mask token '", text_of(*tok, t.mask), "' at id ", t.mask, ": they belong to different models");
  }
  if (t.eos != s.eos && t.eos != s.eot) {
    fail("the model's config.json says eos_token_id ", s.eos, " but its tokenizer (", tok->source(),
         ") ends text with '", text_of(*tok, t.eos), "' (id ", t.eos, "): they belong to different models");
  }
  if (s.bos < 0) s.bos = t.bos;
  s.eos_text = text_of(*tok, s.eos);
  s.eot_text = text_of(*tok, s.eot);
  return s;
}

}  // namespace illada
