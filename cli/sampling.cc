// Sampler flags and the derivation of unset lengths (see sampling.h).
#include "cli/sampling.h"

#include <algorithm>

#include "model/special_tokens.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"

namespace illada::cli {

void add_sampling_flags(CLI::App* cmd, SamplingFlags& f, const std::string& length_default, bool with_cfg_and_seed) {
  const Range<int64_t> tokens{1, kMaxTokens};
  num(cmd, "--gen-length", f.gen_length, tokens, "Tokens to generate (with --variable-length: the most)",
      length_default);
  num(cmd, "--max-length", f.max_length, tokens, "With --variable-length: most tokens generated", "--gen-length");
  num(cmd, "--block-length", f.block_length, tokens, "Semi-autoregressive block length",
      "32 when it divides the length, else the whole length");
  num(cmd, "--steps", f.steps, tokens, "Denoising steps: over the whole answer, or per block with --variable-length",
      "one token per step (the length, or the block length with --variable-length)");
  num(cmd, "--temperature", f.temperature, Range<double>{0, 1e6}, "0: greedy; > 0: Gumbel-max sampling");
  choice(cmd, "--remasking", f.remasking, {"low_confidence", "random", "margin", "entropy"}, "Confidence measure");
  flag(cmd, "--variable-length", f.variable_length,
       "iLLaDA (the released var_generate): add one block at a time, stop after the block whose answer holds a "
       "stop (EOS, EOT, --stop); the length is cut to whole blocks and to the context");
  texts(cmd, "--stop", f.stops, "Text that ends the answer (repeatable; EOS and EOT always do)");
  num(cmd, "--end-think-boost", f.end_think_boost, Range<double>{0, 1e6},
      "Logit bonus for the next token of --end-think-text, times progress^power (0: off)");
  num(cmd, "--end-think-power", f.end_think_power, Range<double>{-1e6, 1e6}, "Exponent of the answer progress in the boost");
  text(cmd, "--end-think-text", f.end_think_text, "The end-of-thinking text the boost pushes towards");
  num(cmd, "--threshold", f.threshold, Range<double>{0, 1},
      "Fast-dLLM parallel decoding: commit every position with confidence >= TAU", "off");
  num(cmd, "--factor", f.factor, Range<double>{0, 1e6, true}, "Fast-dLLM factor rule for parallel decoding", "off");
  choice(cmd, "--cache", f.cache, {"none", "prefix", "dual"}, "Fast-dLLM block-wise KV cache");
  flag(cmd, "--logits-eos-inf", f.logits_eos_inf, "Never pick EOS");
  flag(cmd, "--confidence-eos-eot-inf", f.confidence_eos_eot_inf, "Commit EOS/EOT picks last");
  flag(cmd, "--allow-mask-prediction", f.allow_mask_prediction, "Let argmax pick the mask token, as the official code does");
  flag(cmd, "--no-batch-invariant", f.no_batch_invariant,
       "oneDNN's fastest product for each batch shape: faster, but an answer may then differ in the last bits "
       "(rarely a token) from the same prompt run alone or by `illada serve`");
  if (with_cfg_and_seed) {
    num(cmd, "--cfg-scale", f.cfg_scale, Range<double>{0, 1e6}, "Classifier-free guidance scale (0: off)");
    num(cmd, "--seed", f.seed, Range<uint64_t>{}, "Random seed (temperature > 0, random remasking)");
  }
}

SamplingLengths derive_lengths(const SamplingFlags& f, int64_t default_length, int64_t prompt_tokens,
                               int64_t context) {
  if (f.max_length && !f.variable_length) fail("--max-length applies to --variable-length (use --gen-length)");
  const bool max = f.variable_length && f.max_length;
  return illada::derive_lengths({.length = max ? f.max_length : f.gen_length,
                                 .block_length = f.block_length,
                                 .steps = f.steps,
                                 .variable_length = f.variable_length,
                                 .length_option = max ? "max_length" : "gen_length"},
                                default_length, prompt_tokens, context);
}

GenerateOptions sampling_options(const SamplingFlags& f, const SamplingLengths& len, const Model& m,
                                 const tokenizer::Tokenizer* tok) {
  GenerateOptions o{.gen_length = len.length,
                    .block_length = len.block_length,
                    .steps = len.steps,
                    .temperature = f.temperature,
                    .remasking = parse_remasking(f.remasking),
                    .cfg_scale = f.cfg_scale,
                    .logits_eos_inf = f.logits_eos_inf,
                    .confidence_eos_eot_inf = f.confidence_eos_eot_inf,
                    .variable_length = f.variable_length,
                    .max_length = f.variable_length ? len.length : 0,
                    .end_think_boost = f.end_think_boost,
                    .end_think_power = f.end_think_power,
                    .threshold = f.threshold,
                    .factor = f.factor,
                    .cache = parse_cache_mode(f.cache),
                    .allow_mask_prediction = f.allow_mask_prediction,
                    .seed = f.seed,
                    .batch_invariant = !f.no_batch_invariant};
  if (!tok) {  // ids only: stop at the EOS id
    if (!f.stops.empty()) fail("--stop needs a tokenizer (give --tokenizer DIR)");
    if (f.end_think_boost > 0) fail("--end-think-boost needs a tokenizer (give --tokenizer DIR)");
    o.stop_tokens.push_back(m.config().eos_token_id);
    return o;
  }
  // As the released code: stop strings searched in the decoded answer (special tokens kept).
  const SpecialTokens special = model_special_tokens(m.config(), tok);  // checks they agree
  o.detokenize = [tok](std::span<const int32_t> ids) { return tok->decode(ids, false); };
  o.stop_strings = special.stop_texts();
  o.eot_token_id = special.eot;
  o.stop_strings.insert(o.stop_strings.end(), f.stops.begin(), f.stops.end());
  if (f.end_think_boost > 0) o.end_think_ids = tok->encode(f.end_think_text, false);
  return o;
}

}  // namespace illada::cli
