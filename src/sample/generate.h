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
  // Fixed canvas: steps over the whole canvas (steps / blocks per block, as the official
  // generate()). Variable length: steps for EACH block, as the released var_generate(), which
  // calls generate() once per block with this step count.
  int64_t steps = 128;
  double temperature = 0.0;
  Remasking remasking = Remasking::kLowConfidence;
  // Classifier-free guidance (0 = off). The unconditional input masks everything before the
  // current block's generate() call: the prompt (fixed canvas), or the prompt and every block
  // generated so far (variable length, as var_generate's per-block calls do).
  double cfg_scale = 0.0;
  bool logits_eos_inf = false;          // EOS can never be picked
  bool confidence_eos_eot_inf = false;  // picks of EOS/EOT are committed last
  int32_t eot_token_id = -1;            // <|eot_id|> for confidence_eos_eot_inf, if any
  // iLLaDA variable length (var_generate): one block of masks at a time, no future masks; stop
  // after the block once the answer so far holds a stop (token or string). The length is
  // max_length (0: gen_length), cut to what the context leaves after the prompt and down to a
  // whole number of blocks, as eval_illada.py does.
  bool variable_length = false;
  int64_t max_length = 0;
  // What ends an answer: token ids, and (with `detokenize`) strings searched in the decoded
  // text of the whole answer so far (special tokens kept, as tokenizer.decode(...,
  // skip_special_tokens=False) in the released code). The answer is cut at the earliest stop.
  // With neither given, the model's EOS id.
  std::vector<int32_t> stop_tokens;
  std::vector<std::string> stop_strings;
  std::function<std::string(std::span<const int32_t>)> detokenize;
  // End-of-thinking boost (apply_end_think_logit_boost of the released code): at the block's
  // leftmost masked position, add end_think_boost * progress^end_think_power to the logit of
  // the next token of `end_think_ids` (progress = answer position / answer length), after CFG
  // and before the EOS rule, the noise and the confidence; off once the answer holds the
  // whole sequence. 0 = off.
  double end_think_boost = 0.0;
  double end_think_power = 2.0;
  std::vector<int32_t> end_think_ids;   // e.g. the ids of "</think>" without special tokens
  std::optional<double> threshold;      // Fast-dLLM: commit every confidence >= threshold
  std::optional<double> factor;         // Fast-dLLM: the factor rule
  CacheMode cache = CacheMode::kNone;
  // The official code lets argmax pick the mask token itself (the position then stays masked).
  // Off by default: a committed mask would be no decision at all.
  bool allow_mask_prediction = false;
  uint64_t seed = 0;
  // Batch-invariant forward passes (kernels/gemm.h, BatchInvariantScope): a request's tokens
  // are the same bits whether it runs alone or packed with others, which serving needs and
  // which `illada generate` keeps so that both agree. Off: oneDNN picks its fastest kernel for
  // each packed shape (measurably faster only for matrices wider than 512, docs/serve.md); a
  // batch's results may then differ from single runs in the last bits (and so, rarely, a token).
  bool batch_invariant = true;
  // Called after each step of each request (on the thread that runs generate()).
  std::function<void(const StepInfo&)> on_step;
  // Asked before each step for every unfinished request: true stops that request where it is
  // (its result has cancelled set; the others go on). For clients that go away or time out.
  std::function<bool(int64_t request)> cancelled;
};

struct GenerateResult {
  std::vector<int32_t> ids;     // generated tokens (prompt excluded): the whole canvas for a
                                // fixed canvas; cut at the first stop for variable length
  std::vector<int32_t> canvas;  // the final canvas, prompt included
  int64_t answer_length = 0;    // tokens before the first stop (both modes)
  std::string text;             // with detokenize: the answer's text cut at the first stop
  int64_t nfe = 0;              // forward passes that included this request
  bool stopped = false;         // a stop (token or string) was generated
  bool cancelled = false;       // options.cancelled stopped it before it finished
};

// The end of an answer: the number of tokens before the earliest stop token or the token in
// which the earliest stop string begins, and the text up to that stop (with detokenize; a
// stop string may begin inside a token, the text is cut exactly there).
struct StopMatch {
  bool found = false;
  int64_t tokens = 0;
  std::string text;
};
StopMatch find_stop(std::span<const int32_t> answer, const GenerateOptions& opts, int32_t eos_id);

// Runs the step-wise engine (sampler.h) over all prompts until each is done: every step is one
// forward pass packing every request that still decides positions. Throws Error on
// inconsistent options (block length not dividing the length, steps not divisible by the
// number of blocks, an empty prompt, a canvas beyond max_sequence_length, CFG with a KV
// cache, ...).
std::vector<GenerateResult> generate(const Model& model,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& opts);

}  // namespace illada
