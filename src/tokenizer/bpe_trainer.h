// Byte-level BPE trainer: counts pre-tokenized words (Llama-3 split regex), learns merges with
// incrementally updated pair counts and a lazy max-heap, and writes a standard tokenizer.json
// + tokenizer_config.json that Hugging Face tokenizers and transformers.js load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace illada::tokenizer {

// The Llama-3 pre-tokenization regex (also used by LLaDA's tokenizer).
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct BpeTrainerOptions {
  int32_t vocab_size = 32000;  // exactly: 256 bytes + merges + special tokens
  int64_t min_frequency = 1;   // a pair seen fewer times is never merged
  // Special tokens, given ids at the end of the vocabulary in this order. The defaults are
  // LLaDA's names: BOS, EOS, the diffusion mask, the chat header/turn tokens.
  std::vector<std::string> special_tokens = {"<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>",
                                             "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  int reserved_tokens = 10;  // "<|reserved_token_i|>" appended after special_tokens
  std::string split_pattern = std::string(kLlama3Pattern);
  bool verbose = false;      // progress on stderr
};

struct BpeTrainerStats {
  int64_t bytes = 0;
  int64_t words = 0;         // pre-tokens counted
  int64_t unique_words = 0;
  double count_seconds = 0, merge_seconds = 0;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);

  // Counts the pre-tokens of `text` (special tokens in it are cut out, not learned).
  void add_text(std::string_view text);
  // Reads and counts a file; throws illada::Error if it cannot be read.
  void add_file(const std::string& path);

  // Learns the merges. Throws illada::Error if the input has too few distinct pairs to
  // reach options.vocab_size.
  void train();

  // After train(): token bytes by id, and merges (pairs of ids) in rank order.
  const std::vector<std::string>& vocab() const { return vocab_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }
  const BpeTrainerStats& stats() const { return stats_; }

  // tokenizer.json / tokenizer_config.json contents.
  std::string tokenizer_json() const;
  std::string tokenizer_config_json() const;
  // Writes both files into `dir` (created if needed).
  void save(const std::string& dir) const;

 private:
  BpeTrainerOptions opt_;
  std::vector<std::string> specials_;  // special + reserved tokens, in id order
  std::vector<std::pair<std::string, int64_t>> word_counts_;  // filled by train()
  struct Counter;
  std::shared_ptr<Counter> counter_;
  std::vector<std::string> vocab_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  BpeTrainerStats stats_;
};

}  // namespace illada::tokenizer
