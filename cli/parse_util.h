// Small parsers shared by the subcommands: id lists and similar flag values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace illada::cli {

// "1,2,3" -> {1, 2, 3}; throws illada::Error naming `flag` on anything else.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);

}  // namespace illada::cli
