// generate() as a loop over the step-wise engine (sampler.h), the checks of prompts and
// options that every request passes, and the stop rule that ends an answer.
#include "sample/generate.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "sample/generate_internal.h"
#include "sample/sampler.h"
#include "util/check.h"

namespace illada {

int64_t answer_budget(const ModelConfig& c, const GenerateOptions& o, int64_t r, int64_t prompt_len) {
  if (!o.variable_length) {
    if (prompt_len + o.gen_length > c.max_sequence_length) {
      fail("generate: prompt ", r, " (", prompt_len, " tokens) plus ", o.gen_length,
           " generated tokens exceeds the model's max_sequence_length ", c.max_sequence_length);
    }
    return o.gen_length;
  }
  const int64_t wanted = o.max_length > 0 ? o.max_length : o.gen_length;
  const int64_t total = std::min(wanted, c.max_sequence_length - prompt_len) / o.block_length * o.block_length;
  if (total <= 0) {
    fail("generate: prompt ", r, " (", prompt_len, " tokens) leaves no room for one block of ",
         o.block_length, " tokens within the model's max_sequence_length ", c.max_sequence_length);
  }
  return total;
}

void check_prompt(const ModelConfig& c, std::span<const int32_t> prompt, int64_t r) {
  if (prompt.empty()) fail("generate: prompt ", r, " is empty (give at least one token)");
  for (int32_t id : prompt) {
    if (id < 0 || id >= c.embedding_size) {
      fail("generate: prompt ", r, " has token id ", id, " outside the vocabulary [0, ", c.embedding_size, ")");
    }
  }
}

void check_options(const ModelConfig& c, const GenerateOptions& o) {
  if (o.block_length <= 0) fail("`block_length` (", o.block_length, ") must be positive");
  if (o.variable_length) {
    if ((o.max_length > 0 ? o.max_length : o.gen_length) <= 0) fail("`max_length` must be positive");
    if (o.steps <= 0) fail("`steps` (", o.steps, ") must be positive (steps per block with `variable_length`)");
  } else {
    if (o.gen_length <= 0) fail("`gen_length` (", o.gen_length, ") must be positive");
    if (o.gen_length % o.block_length != 0) {
      fail("`gen_length` (", o.gen_length, ") must be a multiple of `block_length` (", o.block_length, ")");
    }
    const int64_t blocks = o.gen_length / o.block_length;
    if (o.steps <= 0 || o.steps % blocks != 0) {
      fail("`steps` (", o.steps, ") must be a positive multiple of the number of blocks (", blocks, ")");
    }
  }
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) fail("`temperature` (", o.temperature, ") must be a finite number >= 0");
  if (!(o.cfg_scale >= 0) || !std::isfinite(o.cfg_scale)) fail("`cfg_scale` (", o.cfg_scale, ") must be a finite number >= 0");
  if (o.cfg_scale > 0 && o.cache != CacheMode::kNone) {
    fail("`cfg_scale` cannot be combined with `cache` (Fast-dLLM's caches have no CFG)");
  }
  if (o.threshold && o.factor) fail("give `threshold` or `factor`, not both");
  if (o.threshold && !(*o.threshold >= 0 && *o.threshold <= 1)) fail("`threshold` (", *o.threshold, ") must be in [0, 1]");
  if (o.factor && !(*o.factor > 0 && std::isfinite(*o.factor))) fail("`factor` (", *o.factor, ") must be a finite number > 0");
  if (!(o.end_think_boost >= 0) || !std::isfinite(o.end_think_boost)) {
    fail("`end_think_boost` (", o.end_think_boost, ") must be a finite number >= 0");
  }
  if (!std::isfinite(o.end_think_power)) fail("`end_think_power` (", o.end_think_power, ") must be a finite number");
  for (int32_t id : o.end_think_ids) {
    if (id < 0 || id >= c.embedding_size) {
      fail("`end_think_ids`: token id ", id, " is outside the vocabulary [0, ", c.embedding_size, ")");
    }
  }
  if (!o.stop_strings.empty() && !o.detokenize) {
    fail("generate: stop strings need a tokenizer to decode the answer (none was given)");
  }
}

PickOptions pick_options(const ModelConfig& c, const GenerateOptions& o) {
  return {.temperature = o.temperature,
          .remasking = o.remasking,
          .suppress_token = o.logits_eos_inf ? c.eos_token_id : -1,
          .suppress_token_b = o.allow_mask_prediction ? -1 : c.mask_token_id,
          // Official quirk: at temperature > 0 only EOT leaves the confidence softmax.
          .no_confidence_token_a = o.confidence_eos_eot_inf && o.temperature == 0 ? c.eos_token_id : -1,
          .no_confidence_token_b = o.confidence_eos_eot_inf ? o.eot_token_id : -1};
}

bool contains_sequence(std::span<const int32_t> tokens, std::span<const int32_t> seq) {
  if (seq.empty() || tokens.size() < seq.size()) return false;
  return std::search(tokens.begin(), tokens.end(), seq.begin(), seq.end()) != tokens.end();
}

// The token of `seq` that continues what precedes `pos`: after the longest proper prefix of
// `seq` that ends just before pos (within the answer, which starts at `answer_start`), else
// its first token (get_next_sequence_token_id of the released code).
int32_t next_sequence_token(std::span<const int32_t> canvas, int64_t pos, std::span<const int32_t> seq,
                            int64_t answer_start) {
  const int64_t longest = std::min<int64_t>(static_cast<int64_t>(seq.size()) - 1, pos - answer_start);
  for (int64_t k = longest; k > 0; --k) {
    if (std::equal(seq.begin(), seq.begin() + k, canvas.begin() + (pos - k))) return seq[k];
  }
  return seq[0];
}


CacheMode parse_cache_mode(const std::string& s) {
  if (s == "none") return CacheMode::kNone;
  if (s == "prefix") return CacheMode::kPrefix;
  if (s == "dual") return CacheMode::kDual;
  fail("`cache`: unknown mode '", s, "' (expected none, prefix or dual)");
}

const char* cache_mode_name(CacheMode m) {
  return m == CacheMode::kNone ? "none" : m == CacheMode::kPrefix ? "prefix" : "dual";
}

StopMatch find_stop(std::span<const int32_t> answer, const GenerateOptions& o, int32_t eos_id) {
  const int64_t n = static_cast<int64_t>(answer.size());
  StopMatch m{.tokens = n};
  std::vector<int32_t> stop_ids = o.stop_tokens;
  if (stop_ids.empty() && o.stop_strings.empty()) stop_ids.push_back(eos_id);
  const auto tok_stop = std::find_first_of(answer.begin(), answer.end(), stop_ids.begin(), stop_ids.end());
  if (tok_stop != answer.end()) {
    m.found = true;
    m.tokens = tok_stop - answer.begin();
  }
  if (!o.detokenize) return m;
  const std::string text = o.detokenize(answer);
  size_t cut = std::string::npos;
  for (const auto& s : o.stop_strings) {
    if (!s.empty()) cut = std::min(cut, text.find(s));
  }
  if (cut != std::string::npos) {
    // The longest run of whole tokens whose text lies inside the cut text (a decoded prefix can
    // end in a replacement character for a split UTF-8 sequence, so test every length).
    const std::string_view kept(text.data(), cut);
    int64_t whole = 0;
    for (int64_t k = 1; k <= std::min(n, m.tokens); ++k) {
      if (kept.starts_with(o.detokenize(answer.first(static_cast<size_t>(k))))) whole = k;
    }
    if (!m.found || whole <= m.tokens) {
      m.found = true;
      m.tokens = whole;
      m.text.assign(kept);
      return m;
    }
  }
  m.text = m.tokens == n ? text : o.detokenize(answer.first(static_cast<size_t>(m.tokens)));
  return m;
}

std::vector<GenerateResult> generate(const Model& model,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& o) {
  const ModelConfig& c = model.config();
  if (prompts.empty()) fail("generate: no prompt given");
  for (size_t r = 0; r < prompts.size(); ++r) check_prompt(c, prompts[r], static_cast<int64_t>(r));
  check_options(c, o);
  Sampler sampler(model, o.batch_invariant);
  std::vector<int64_t> ids;
  for (size_t r = 0; r < prompts.size(); ++r) ids.push_back(sampler.add(prompts[r], o, static_cast<int64_t>(r)));
  while (sampler.step().requests > 0) {
  }
  std::vector<GenerateResult> out;
  for (int64_t id : ids) out.push_back(sampler.take(id));
  return out;
}

}  // namespace illada
