// Added-token matching. Like HF's aho-corasick (MatchKind::LeftmostLongest) followed by its
// single_word / lstrip / rstrip adjustments.
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::tokenizer {
namespace {

// Rust regex `\w` (HF tests word boundaries with it): Alphabetic, marks, decimal digits,
// connector punctuation, joiners.
bool is_word_char(std::string_view one_char) {
  static const Regex re = Regex::compile(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])",
                                         "added-token word test");
  size_t b, e;
  return re.search(one_char, 0, b, e) && b == 0;
}

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t k = s.size() - 1;
  while (k > 0 && s.size() - k < 4 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  const Utf8Char c = utf8_decode(s, k);
  return c.valid && k + c.len == s.size() && is_word_char(s.substr(k));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  const Utf8Char c = utf8_decode(s, 0);
  return c.valid && is_word_char(s.substr(0, c.len));
}

}  // namespace

void AddedTokenMatcher::build(const std::vector<std::string>& patterns,
                              const std::vector<const AddedToken*>& tokens) {
  ILLADA_CHECK(patterns.size() == tokens.size());
  nodes_.assign(1, Node{});
  tokens_.clear();
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  for (size_t i = 0; i < patterns.size(); ++i) {
    const std::string& p = patterns[i];
    if (p.empty()) continue;
    int32_t node = 0;
    for (unsigned char b : p) {
      int32_t c = child(node, b);
      if (c < 0) {
        c = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        auto& next = nodes_[node].next;
        next.insert(std::upper_bound(next.begin(), next.end(), std::make_pair(b, int32_t{-1})),
                    std::make_pair(static_cast<uint8_t>(b), c));
      }
      node = c;
    }
    // The first token with a given content wins.
    if (nodes_[node].token < 0) {
      nodes_[node].token = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(tokens[i]);
    }
    first_byte_[static_cast<unsigned char>(p[0])] = true;
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t b) const {
  const auto& next = nodes_[node].next;
  for (const auto& [byte, c] : next) {
    if (byte == b) return c;
    if (byte > b) break;
  }
  return -1;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<AddedSplit>& out) const {
  out.clear();
  const auto n = static_cast<uint32_t>(text.size());
  uint32_t start_offset = 0;  // end of the previous split
  uint32_t i = 0;
  while (i < n) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest pattern starting at i.
    int32_t node = 0, best = -1;
    uint32_t best_end = 0;
    for (uint32_t j = i; j < n; ++j) {
      node = child(node, static_cast<uint8_t>(text[j]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = j + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = *tokens_[best];
    uint32_t start = i, stop = best_end;
    i = best_end;  // matches never overlap, even when this one is discarded
    if (tok.single_word) {
      const bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
      const bool stop_space = stop == n || !starts_with_word(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      const std::string_view before = text.substr(0, start);
      const auto kept = strip_if(before, is_unicode_whitespace, false, true);
      start = std::max<uint32_t>(static_cast<uint32_t>(kept.size()), start_offset);
    }
    if (tok.rstrip) {
      const std::string_view after = text.substr(stop);
      stop += static_cast<uint32_t>(after.size() - strip_if(after, is_unicode_whitespace, true, false).size());
      i = stop;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({start_offset, n, -1});
}

}  // namespace illada::tokenizer
