// The sampler's flags, shared by `generate`, `chat` and `eval` (same names, same meaning), and
// the rule that derives the lengths the user did not give from those they did.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "sample/generate.h"

namespace illada {
namespace tokenizer {
class Tokenizer;
}

namespace cli {

struct SamplingFlags {
  std::optional<int64_t> gen_length, max_length, block_length, steps;
  double temperature = 0.0, cfg_scale = 0.0;
  std::string remasking = "low_confidence", cache = "none";
  std::optional<double> threshold, factor;
  bool variable_length = false, logits_eos_inf = false, confidence_eos_eot_inf = false;
  bool allow_mask_prediction = false;
  uint64_t seed = 0;
  std::vector<std::string> stops;  // --stop: more texts that end the answer
  double end_think_boost = 0.0, end_think_power = 2.0;
  std::string end_think_text = "</think>";
};

// `length_default` says the command's default answer length in the help (generate: 128,
// shortened to fit). `--cfg-scale` and `--seed` are registered by the caller when it shares
// them with scoring flags (eval).
void add_sampling_flags(CLI::App* cmd, SamplingFlags& f, const std::string& length_default,
                        bool with_cfg_and_seed = true);

// Lengths, as the help describes them:
//   length (--gen-length; with --variable-length --max-length, else --gen-length) given, or the
//     command's default, shortened (to a multiple of 32) when the prompt leaves less room in
//     the model's context;
//   --block-length: 32 when it divides the length, else the whole length as one block;
//   --steps: one token per step (= the length; with --variable-length steps are per block,
//     so the block length).
// With --variable-length the length need not be a multiple of the block nor fit beside the
// prompt: the sampler cuts it to whole blocks and to the context (eval_illada.py).
struct SamplingLengths {
  int64_t length = 0, block_length = 0, steps = 0;
};
// `prompt_tokens` < 0: not known yet (eval: one example at a time); `context` the model's
// max_sequence_length. Throws Error naming the flag when a given value cannot fit.
SamplingLengths derive_lengths(const SamplingFlags& f, int64_t default_length, int64_t prompt_tokens, int64_t context);

// GenerateOptions from the flags and derived lengths. With a tokenizer the answer ends at the
// EOS text, <|eot_id|> when the tokenizer has it, and --stop texts, searched in the decoded
// answer as the released code does; without one, at the EOS id.
GenerateOptions sampling_options(const SamplingFlags& f, const SamplingLengths& len, const Model& m,
                                 const tokenizer::Tokenizer* tok);

}  // namespace cli
}  // namespace illada
