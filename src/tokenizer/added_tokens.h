// Added tokens of tokenizer.json ("added_tokens"): special and user tokens matched in the text
// before normalization / pre-tokenization, with HF's lstrip / rstrip / single_word rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace illada::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// One piece of a split: a byte range of the input, and the added token it is (or -1).
struct AddedSplit {
  uint32_t begin, end;
  int32_t id;
};

// Leftmost-longest multi-pattern matcher over bytes (a trie with a first-byte filter).
class AddedTokenMatcher {
 public:
  // `patterns[i]` matches token `tokens[i]`; empty patterns are ignored.
  void build(const std::vector<std::string>& patterns, const std::vector<const AddedToken*>& tokens);
  bool empty() const { return tokens_.empty(); }

  // Splits `text` into added-token matches and the text between them (HF's find_matches).
  void split(std::string_view text, std::vector<AddedSplit>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t token = -1;                             // index into tokens_ if a pattern ends here
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace illada::tokenizer
