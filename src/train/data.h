// Training data: a tokenized dataset directory (token shards + dataset.json), read back into
// one in-memory stream, and the loader that samples windows of seq_len tokens from it, splits
// some of them in two (docs/numerics.md §2), and packs them with cumulative offsets, never padded.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace illada::train {

inline constexpr const char* kDatasetManifest = "dataset.json";
inline constexpr const char* kDatasetFormat = "illada-token-dataset";
inline constexpr int kDatasetVersion = 1;

// dataset.json: what a prepared dataset holds (written last, atomically, by `data prepare`).
struct DatasetInfo {
  bool sft = false;               // prompt/response examples (prompt flags stored)
  int64_t n_tokens = 0;
  int64_t n_documents = 0;        // documents (pre-training) or examples (SFT)
  int32_t vocab_size = 0;
  int32_t eos_token_id = -1;
  int32_t mask_token_id = -1;
  std::vector<std::string> shards;       // file names inside the directory, stream order
  std::vector<int64_t> shard_tokens;     // [shards]
};

// The whole token stream of a dataset.
struct TokenStream {
  DatasetInfo info;
  std::vector<int32_t> ids;     // [n_tokens] documents separated (terminated) by EOS
  std::vector<uint8_t> prompt;  // [n_tokens] 1 on prompt tokens (SFT), or empty
};

void write_dataset_info(const std::string& dir, const DatasetInfo& info);
DatasetInfo read_dataset_info(const std::string& dir);  // throws Error naming the file/key
// Reads every shard, checking each against dataset.json (counts, vocabulary, flags).
TokenStream load_dataset(const std::string& dir);

struct LoaderOptions {
  int64_t seq_len = 0;            // tokens per window
  int64_t batch_size = 1;         // windows per step
  uint64_t seed = 0;
  double split_prob = 0.3;        // a window is cut in two at a uniform point (docs/numerics.md §2)
  bool split_documents = false;   // also cut after every EOS inside a window
  int32_t eos_token_id = -1;      // needed by split_documents
  int64_t begin = 0, end = -1;    // the part of the stream to sample from (end -1: all)
};

// Clean packed windows; view() is what Trainer::train_step takes.
struct LoaderBatch {
  std::vector<int32_t> ids;         // [n_windows * seq_len]
  std::vector<int32_t> cu_seqlens;  // [segments + 1], 0 ... ids.size()
  std::vector<uint8_t> prompt;      // [ids] or empty
  std::vector<int64_t> starts;      // [n_windows] stream offset of each window (tests, logs)
  PackedBatch view() const { return {ids, cu_seqlens, prompt}; }
};

// Samples windows deterministically in (seed, global window index): window g of the run is
// window g % W of epoch g / W, where an epoch is a random permutation of the W = floor(range /
// seq_len) non-overlapping windows at a random offset. A step's windows are g = step *
// batch_size ... + batch_size - 1, so a batch depends only on (seed, step): resuming needs
// nothing but the step.
class DataLoader {
 public:
  DataLoader(const TokenStream& stream, const LoaderOptions& opts);  // throws Error

  int64_t windows_per_epoch() const { return n_windows_; }
  // Windows [micro * batch_size / n_micro, (micro + 1) * batch_size / n_micro) of the step.
  LoaderBatch batch(int64_t step, int micro = 0, int n_micro = 1) const;
  // Stream offset of global window g.
  int64_t window_start(int64_t g) const;
  // Whether global window g is split and where (0 = not split).
  int64_t split_point(int64_t g) const;
  // Steps of `epochs` passes over the range: ceil(epochs * range / (batch_size * seq_len)).
  int64_t steps_for_epochs(double epochs) const;
  const LoaderOptions& options() const { return opts_; }

 private:
  const std::vector<int64_t>& permutation(int64_t epoch) const;

  const TokenStream* stream_;
  LoaderOptions opts_;
  int64_t n_windows_ = 0;
  mutable int64_t perm_epoch_ = -1;
  mutable std::vector<int64_t> perm_;  // [n_windows_] window order of perm_epoch_
};

// Fixed held-out batches: consecutive non-overlapping windows of [begin, end), unsplit (but
// split at documents when asked), batch_size windows per batch, at most max_batches.
std::vector<LoaderBatch> heldout_batches(const TokenStream& stream, const LoaderOptions& opts,
                                         int64_t max_batches);

inline constexpr uint64_t kStreamEpochPerm = 0x6550'0000'0000'0000ull;  // "eP"
inline constexpr uint64_t kStreamEpochOffset = 0x654f'0000'0000'0000ull;  // "eO"
inline constexpr uint64_t kStreamSplit = 0x7353'0000'0000'0000ull;  // "sS": split or not
inline constexpr uint64_t kStreamSplitAt = 0x7341'0000'0000'0000ull;  // "sA": where

}  // namespace illada::train
