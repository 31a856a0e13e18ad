// Helpers the C API's files share: prompt encoding as the CLI does it, id arrays for the caller.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "illada/illada.h"

namespace illada::capi {

// A text prompt as ids: plain text with special tokens, or (chat) the rendered template
// without. Throws NO_TOKENIZER when the model has none.
std::vector<int32_t> encode_prompt(const illada_model& m, const std::string& text, const illada_prompt_params& p);

// A malloc'ed copy (for illada_free); never NULL.
int32_t* malloc_ids(std::span<const int32_t> ids);

// `ids` as a span; INVALID_ARGUMENT naming `what` when NULL with n > 0.
std::span<const int32_t> ids_of(const illada_token* ids, size_t n, const char* what);

}  // namespace illada::capi
