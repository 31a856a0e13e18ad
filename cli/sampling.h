// The sampler's flags, shared by `generate`, `chat` and `eval` (same names, same meaning), and
// the rule that derives the lengths the user did not give from those they did.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "sample/generate.h"
#include "sample/lengths.h"

namespace illada {
namespace tokenizer {
class Tokenizer;
}

namespace cli {

// The defaults are the library's (GenerateOptions), read from it; lengths unset are derived
// (sample/lengths.h).
struct SamplingFlags {
  std::optional<int64_t> gen_length, max_length, block_length, steps;
  double temperature = GenerateOptions{}.temperature, cfg_scale = GenerateOptions{}.cfg_scale;
  std::string remasking = remasking_name(GenerateOptions{}.remasking);
  std::string cache = cache_mode_name(GenerateOptions{}.cache);
  std::optional<double> threshold = GenerateOptions{}.threshold, factor = GenerateOptions{}.factor;
  bool variable_length = GenerateOptions{}.variable_length, logits_eos_inf = GenerateOptions{}.logits_eos_inf;
  bool confidence_eos_eot_inf = GenerateOptions{}.confidence_eos_eot_inf;
  bool allow_mask_prediction = GenerateOptions{}.allow_mask_prediction;
  bool no_batch_invariant = !GenerateOptions{}.batch_invariant;
  uint64_t seed = GenerateOptions{}.seed;
  std::vector<std::string> stops;  // --stop: more texts that end the answer
  double end_think_boost = GenerateOptions{}.end_think_boost, end_think_power = GenerateOptions{}.end_think_power;
  std::string end_think_text = "</think>";  // text: the library takes its token ids
};

// `length_default` says the command's default answer length in the help (generate: 128,
// shortened to fit). `--cfg-scale` and `--seed` are registered by the caller when it shares
// them with scoring flags (eval).
void add_sampling_flags(CLI::App* cmd, SamplingFlags& f, const std::string& length_default,
                        bool with_cfg_and_seed = true);

// The library's rule (sample/lengths.h) on the flags: --max-length with --variable-length,
// else --gen-length; errors name the options, which the CLI shows as these flags.
using SamplingLengths = AnswerLengths;
SamplingLengths derive_lengths(const SamplingFlags& f, int64_t default_length, int64_t prompt_tokens, int64_t context);

// GenerateOptions from the flags and derived lengths. With a tokenizer the answer ends at the
// EOS text, <|eot_id|> when the tokenizer has it, and --stop texts, searched in the decoded
// answer as the released code does; without one, at the EOS id.
GenerateOptions sampling_options(const SamplingFlags& f, const SamplingLengths& len, const Model& m,
                                 const tokenizer::Tokenizer* tok);

}  // namespace cli
}  // namespace illada
