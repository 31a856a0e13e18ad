// Parsing and printing of token id lists for the command line ("1,2,3" / "1 2 3").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace illada::tokenizer {

// Parses ids separated by commas and/or whitespace (an optional [ ] around them is allowed).
// Throws illada::Error naming `flag` for anything else, or an id outside [0, vocab_size)
// when vocab_size > 0.
std::vector<int32_t> parse_id_list(std::string_view text, std::string_view flag, int32_t vocab_size = 0);

// "1 2 3" (text) or {"ids": [1, 2, 3]} (json).
std::string format_ids(std::span<const int32_t> ids, bool json);

}  // namespace illada::tokenizer
