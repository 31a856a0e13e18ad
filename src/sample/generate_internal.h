// Pieces of generate.cc that the step-wise engine (sampler.cc) shares: option and prompt checks,
// the answer budget, the pick rules of a request, and the end-of-thinking boost's helpers. Not
// part of the sample library's interface.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sample/generate.h"

namespace illada {

// Throws Error naming prompt `r` (empty, or an id outside the vocabulary).
void check_prompt(const ModelConfig& c, std::span<const int32_t> prompt, int64_t r);
// Throws Error naming the option (as its CLI flag) that is inconsistent or out of range.
void check_options(const ModelConfig& c, const GenerateOptions& o);

// Tokens request `r` generates: the fixed canvas, or (variable length) the requested maximum
// cut to what the context leaves after the prompt and down to whole blocks (eval_illada.py).
// Throws Error when nothing fits.
int64_t answer_budget(const ModelConfig& c, const GenerateOptions& o, int64_t r, int64_t prompt_len);

// The per-position pick rules of these options.
PickOptions pick_options(const ModelConfig& c, const GenerateOptions& o);

bool contains_sequence(std::span<const int32_t> tokens, std::span<const int32_t> seq);

// The token of `seq` that continues what precedes `pos`: after the longest proper prefix of
// `seq` that ends just before pos (within the answer, which starts at `answer_start`), else
// its first token (get_next_sequence_token_id of the released code).
int32_t next_sequence_token(std::span<const int32_t> canvas, int64_t pos, std::span<const int32_t> seq,
                            int64_t answer_start);

}  // namespace illada
