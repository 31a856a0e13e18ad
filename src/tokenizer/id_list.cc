// Id-list parsing for `illada detokenize --ids` and printing for `illada tokenize`.
#include "tokenizer/id_list.h"

#include <charconv>

#include "util/check.h"

namespace illada::tokenizer {

std::vector<int32_t> parse_id_list(std::string_view text, std::string_view flag, int32_t vocab_size) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip_sep = [&] {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                               text[i] == '\r' || text[i] == '[' || text[i] == ']')) {
      ++i;
    }
  };
  skip_sep();
  while (i < text.size()) {
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    const size_t used = static_cast<size_t>(ptr - (text.data() + i));
    if (ec != std::errc() || used == 0) {
      size_t end = i;
      while (end < text.size() && text[end] != ',' && text[end] != ' ') ++end;
      fail(flag, ": '", text.substr(i, end - i), "' is not a token id (expected integers like 1,2,3)");
    }
    if (v < 0 || (vocab_size > 0 && v >= vocab_size) || v > INT32_MAX) {
      fail(flag, ": token id ", v, " is outside the vocabulary (0..", vocab_size > 0 ? vocab_size - 1 : INT32_MAX, ")");
    }
    ids.push_back(static_cast<int32_t>(v));
    i += used;
    if (i < text.size() && text[i] != ',' && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' &&
        text[i] != '\r' && text[i] != ']') {
      fail(flag, ": unexpected '", text.substr(i, 1), "' after token id ", v);
    }
    skip_sep();
  }
  return ids;
}

std::string format_ids(std::span<const int32_t> ids, bool json) {
  std::string out = json ? "{\"ids\": [" : "";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += json ? ", " : " ";
    out += std::to_string(ids[i]);
  }
  if (json) out += "]}";
  return out;
}

}  // namespace illada::tokenizer
