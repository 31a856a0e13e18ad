// Flag value parsers for the CLI.
#include "cli/parse_util.h"

#include <charconv>

#include "util/check.h"

namespace illada::cli {

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size()) {
      fail(flag, ": '", item, "' is not a token id (expected comma-separated integers like 1,2,3)");
    }
    ids.push_back(v);
    i = j + 1;
  }
  return ids;
}

}  // namespace illada::cli
