// Masked-diffusion text generation: LLaDA's semi-autoregressive block sampler (fixed canvas),
// iLLaDA's variable-length generation (one block at a time until EOS), and Fast-dLLM's fast
// decoders (confidence-threshold/factor parallel commits, prefix and dual KV cache), for a
// batch of prompts packed into each forward pass.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "sample/decode.h"

namespace illada {

enum class CacheMode { kNone, kPrefix, kDual };
CacheMode parse_cache_mode(const std::string& s);  // none|prefix|dual
const char* cache_mode_name(CacheMode m);

// What the sampler reports after each step (for --visual and progress displays).
struct StepInfo {
  int64_t request = 0;
  int64_t block = 0;
  int64_t step = 0;                       // step within the block
  std::span<const int32_t> canvas;        // the whole canvas after this step's commits
  int64_t prompt_length = 0;
  std::span<const int32_t> committed;     // canvas positions committed in this step
};

struct GenerateOptions {
  int64_t gen_length = 128;    // fixed canvas: tokens to generate
  int64_t block_length = 32;   // semi-autoregressive block size
  int64_t steps = 128;         // steps over the whole canvas (per block: steps / blocks)
  double temperature = 0.0;
  Remasking remasking = Remasking::kLowConfidence;
  double cfg_scale = 0.0;               // classifier-free guidance (0 = off)
  bool logits_eos_inf = false;          // EOS can never be picked
  bool confidence_eos_eot_inf = false;  // picks of EOS/EOT are committed last
  int32_t eot_token_id = -1;            // <|eot_id|> for confidence_eos_eot_inf, if any
  bool variable_length = false;         // iLLaDA: grow one block at a time until EOS
  int64_t max_length = 0;               // variable length: most tokens generated (0: gen_length)
  std::vector<int32_t> stop_tokens;     // variable length: tokens that end the answer (empty: EOS)
  std::optional<double> threshold;      // Fast-dLLM: commit every confidence >= threshold
  std::optional<double> factor;         // Fast-dLLM: the factor rule
  CacheMode cache = CacheMode::kNone;
  // The official code lets argmax pick the mask token itself (the position then stays masked).
  // Off by default: a committed mask would be no decision at all.
  bool allow_mask_prediction = false;
  uint64_t seed = 0;
  std::function<void(const StepInfo&)> on_step;
};

struct GenerateResult {
  std::vector<int32_t> ids;     // generated tokens (prompt excluded; cut at the first stop
                                // token for variable-length generation)
  std::vector<int32_t> canvas;  // the final canvas, prompt included
  int64_t nfe = 0;              // forward passes that included this request
  bool stopped = false;         // variable length: a stop token was generated
};

// Throws Error on inconsistent options (block length not dividing the length, steps not
// divisible by the number of blocks, an empty prompt, a canvas beyond max_sequence_length,
// CFG with a KV cache, ...).
std::vector<GenerateResult> generate(const Model& model,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& opts);

}  // namespace illada
