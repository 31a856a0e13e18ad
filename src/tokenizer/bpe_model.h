// The BPE model of tokenizer.json: vocabulary, ranked merges, and the merge loop that turns
// one pre-token ("word") into ids, with a per-thread cache of frequent words.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace illada::tokenizer {

// Transparent string hashing so maps keyed by std::string accept string_view lookups.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept;
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Open-addressing map from a pair of token ids to (merge rank, merged id).
class MergeMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };
  void reserve(size_t n);
  // Inserts or overwrites (a later merge of the same pair wins, as in HF and transformers.js).
  void insert(int32_t a, int32_t b, Value v);
  const Value* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Value value{};
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20); }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class BpeModel {
 public:
  // Parses the `model` object of tokenizer.json (type "BPE"). Throws illada::Error naming the
  // offending field.
  static BpeModel from_json(const nlohmann::json& model);

  // Builds a model from an already ranked merge list (the trainer's output).
  static BpeModel from_parts(StringIdMap vocab,
                             const std::vector<std::pair<std::string, std::string>>& merges,
                             std::string_view continuing_subword_prefix = "");

  // When the pre-tokenizer's last step is ByteLevel, words arrive as raw bytes instead of
  // byte-level characters; the model then maps bytes to ids directly.
  void set_raw_byte_input(bool on);

  // Appends the ids of one pre-token.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  const std::string* id_to_token(int32_t id) const;    // nullptr if absent
  const StringIdMap& vocab() const { return vocab_; }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  void build_reverse();
  void encode_uncached(std::string_view word, std::vector<int32_t>& out) const;
  void merge_symbols(std::vector<int32_t>& syms) const;

  StringIdMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  MergeMap merges_;
  std::optional<std::string> unk_token_;
  int32_t unk_id_ = -1;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_fallback_ids_{};  // "<0xXX>" tokens, -1 if absent

  // Raw-byte input mode (byte-level models).
  bool raw_bytes_ = false;
  std::array<int32_t, 256> byte_ids_{};  // id of each byte's byte-level character
  StringIdMap raw_vocab_;                // raw bytes of each vocab token -> id (ignore_merges)

  uint64_t uid_ = 0;  // identifies this model's entries in the per-thread word cache
};

}  // namespace illada::tokenizer
