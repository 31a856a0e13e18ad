// The answer lengths a caller did not give, derived from those it did: one rule for the CLI
// (`generate`, `chat`, `eval`), the C API and the server. Errors name the options in
// backquotes (`gen_length`, `block_length`, `steps`); the CLI shows them as its flags.
#pragma once

#include <cstdint>
#include <optional>

namespace illada {

// The defaults of an answer: 128 tokens (shortened to fit the prompt), blocks of 32 when 32
// divides the length (else one block), one token per step.
inline constexpr int64_t kDefaultGenLength = 128;
inline constexpr int64_t kDefaultBlockLength = 32;

struct LengthRequest {
  // The answer length (variable length: the most), the block length and the steps; unset:
  // derived. `length_option` names the length in errors: "gen_length" or "max_length".
  std::optional<int64_t> length, block_length, steps;
  bool variable_length = false;
  const char* length_option = "gen_length";
};

struct AnswerLengths {
  int64_t length = 0, block_length = 0, steps = 0;
};

// The rule:
//   length: given, or `default_length` shortened (to a multiple of the block, 32 unless given)
//     when the prompt leaves less room in the model's context;
//   block_length: 32 when it divides the length, else the whole length as one block;
//   steps: one token per step (the length; with variable_length steps are per block, so the
//     block length).
// With variable_length the length need not be a multiple of the block nor fit beside the
// prompt: the sampler cuts it to whole blocks and to the context (eval_illada.py).
// `prompt_tokens` < 0: not known yet (checked per example later); `context` the model's
// max_sequence_length. Throws Error naming the option when a given value cannot fit.
AnswerLengths derive_lengths(const LengthRequest& r, int64_t default_length, int64_t prompt_tokens,
                             int64_t context);

}  // namespace illada
