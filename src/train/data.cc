// Dataset directories and the window loader (see data.h).
#include "train/data.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/token_shards.h"
#include "util/file.h"
#include "util/check.h"
#include "util/rng.h"

namespace illada::train {

using nlohmann::json;

void write_dataset_info(const std::string& dir, const DatasetInfo& info) {
  json shards = json::array();
  for (size_t i = 0; i < info.shards.size(); ++i) {
    shards.push_back({{"file", info.shards[i]}, {"tokens", info.shard_tokens[i]}});
  }
  const json j = {{"format", kDatasetFormat},        {"version", kDatasetVersion},
                  {"sft", info.sft},                 {"n_tokens", info.n_tokens},
                  {"n_documents", info.n_documents}, {"vocab_size", info.vocab_size},
                  {"eos_token_id", info.eos_token_id}, {"mask_token_id", info.mask_token_id},
                  {"shards", shards}};
  write_file_atomic(dir + "/" + kDatasetManifest, j.dump(2) + "\n");
}

DatasetInfo read_dataset_info(const std::string& dir) {
  const std::string path = dir + "/" + kDatasetManifest;
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  auto need = [&](const char* key) -> const json& {
    if (!j.is_object() || !j.contains(key)) fail(path, ": missing key '", key, "'");
    return j.at(key);
  };
  if (need("format") != kDatasetFormat) fail(path, ": format is ", need("format").dump(), ", expected \"", kDatasetFormat, "\"");
  if (need("version") != kDatasetVersion) fail(path, ": dataset version ", need("version").dump(), " is not supported (expected ", kDatasetVersion, ")");
  DatasetInfo info;
  try {
    info.sft = need("sft").get<bool>();
    info.n_tokens = need("n_tokens").get<int64_t>();
    info.n_documents = need("n_documents").get<int64_t>();
    info.vocab_size = need("vocab_size").get<int32_t>();
    info.eos_token_id = need("eos_token_id").get<int32_t>();
    info.mask_token_id = need("mask_token_id").get<int32_t>();
    for (const auto& s : need("shards")) {
      info.shards.push_back(s.at("file").get<std::string>());
      info.shard_tokens.push_back(s.at("tokens").get<int64_t>());
    }
  } catch (const json::exception& e) {
    fail(path, ": malformed: ", e.what());
  }
  return info;
}

TokenStream load_dataset(const std::string& dir) {
  TokenStream s;
  s.info = read_dataset_info(dir);
  s.ids.reserve(static_cast<size_t>(s.info.n_tokens));
  if (s.info.sft) s.prompt.reserve(static_cast<size_t>(s.info.n_tokens));
  for (size_t i = 0; i < s.info.shards.size(); ++i) {
    const std::string path = dir + "/" + s.info.shards[i];
    const TokenShard sh = read_token_shard(path);
    if (static_cast<int64_t>(sh.tokens.size()) != s.info.shard_tokens[i]) {
      fail(path, ": holds ", sh.tokens.size(), " tokens, dataset.json says ", s.info.shard_tokens[i]);
    }
    if (static_cast<int32_t>(sh.vocab_size) != s.info.vocab_size) {
      fail(path, ": vocab size ", sh.vocab_size, " differs from dataset.json's ", s.info.vocab_size);
    }
    if (s.info.sft != !sh.prompt.empty()) {
      fail(path, s.info.sft ? ": has no prompt flags but the dataset is SFT" : ": has prompt flags but the dataset is not SFT");
    }
    s.ids.insert(s.ids.end(), sh.tokens.begin(), sh.tokens.end());
    s.prompt.insert(s.prompt.end(), sh.prompt.begin(), sh.prompt.end());
  }
  if (static_cast<int64_t>(s.ids.size()) != s.info.n_tokens) {
    fail(dir, "/", kDatasetManifest, ": n_tokens is ", s.info.n_tokens, " but the shards hold ", s.ids.size());
  }
  return s;
}

// ---------------------------------------------------------------------------------- loader

DataLoader::DataLoader(const TokenStream& stream, const LoaderOptions& opts)
    : stream_(&stream), opts_(opts) {
  const int64_t n = static_cast<int64_t>(stream.ids.size());
  if (opts_.end < 0) opts_.end = n;
  if (opts_.seq_len < 2) fail("seq_len must be at least 2, got ", opts_.seq_len);
  if (opts_.batch_size < 1) fail("batch_size must be at least 1, got ", opts_.batch_size);
  if (!(opts_.split_prob >= 0.0 && opts_.split_prob <= 1.0)) fail("split_prob must be in [0, 1], got ", opts_.split_prob);
  if (opts_.begin < 0 || opts_.end > n || opts_.begin > opts_.end) {
    fail("loader range [", opts_.begin, ", ", opts_.end, ") is outside the stream of ", n, " tokens");
  }
  if (opts_.split_documents && opts_.eos_token_id < 0) fail("split_documents needs the EOS token id");
  n_windows_ = (opts_.end - opts_.begin) / opts_.seq_len;
  if (n_windows_ < 1) {
    fail("the training data holds ", opts_.end - opts_.begin, " tokens, fewer than one window of seq_len ", opts_.seq_len);
  }
}

const std::vector<int64_t>& DataLoader::permutation(int64_t epoch) const {
  if (epoch != perm_epoch_) {
    perm_.resize(static_cast<size_t>(n_windows_));
    for (int64_t i = 0; i < n_windows_; ++i) perm_[i] = i;
    Rng rng(opts_.seed, kStreamEpochPerm ^ static_cast<uint64_t>(epoch));
    for (int64_t i = n_windows_ - 1; i > 0; --i) {
      std::swap(perm_[i], perm_[rng.below(static_cast<uint64_t>(i + 1))]);
    }
    perm_epoch_ = epoch;
  }
  return perm_;
}

int64_t DataLoader::window_start(int64_t g) const {
  const int64_t epoch = g / n_windows_, k = g % n_windows_;
  const int64_t slack = (opts_.end - opts_.begin) - n_windows_ * opts_.seq_len;
  const int64_t offset = static_cast<int64_t>(
      random_bits(opts_.seed, kStreamEpochOffset, static_cast<uint64_t>(epoch)) % static_cast<uint64_t>(slack + 1));
  return opts_.begin + offset + permutation(epoch)[k] * opts_.seq_len;
}

int64_t DataLoader::split_point(int64_t g) const {
  if (random_uniform(opts_.seed, kStreamSplit, static_cast<uint64_t>(g)) >= opts_.split_prob) return 0;
  return 1 + static_cast<int64_t>(random_bits(opts_.seed, kStreamSplitAt, static_cast<uint64_t>(g)) %
                                  static_cast<uint64_t>(opts_.seq_len - 1));
}

int64_t DataLoader::steps_for_epochs(double epochs) const {
  const double range = static_cast<double>(opts_.end - opts_.begin);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                  epochs * range / static_cast<double>(opts_.batch_size * opts_.seq_len) - 1e-9)));
}

namespace {

// Appends the window [start, start + L) to b: its segments are cut at `split` (if > 0) and,
// when asked, after every EOS that is not the window's last token.
void append_window(LoaderBatch& b, const TokenStream& s, int64_t start, int64_t len, int64_t split,
                   bool split_docs, int32_t eos) {
  const int32_t base = static_cast<int32_t>(b.ids.size());
  b.ids.insert(b.ids.end(), s.ids.begin() + start, s.ids.begin() + start + len);
  if (!s.prompt.empty()) b.prompt.insert(b.prompt.end(), s.prompt.begin() + start, s.prompt.begin() + start + len);
  b.starts.push_back(start);
  for (int64_t i = 0; i < len - 1; ++i) {
    const bool cut = (split > 0 && i + 1 == split) || (split_docs && s.ids[start + i] == eos);
    if (cut) b.cu_seqlens.push_back(base + static_cast<int32_t>(i + 1));
  }
  b.cu_seqlens.push_back(base + static_cast<int32_t>(len));
}

}  // namespace

LoaderBatch DataLoader::batch(int64_t step, int micro, int n_micro) const {
  ILLADA_CHECK(n_micro >= 1 && micro >= 0 && micro < n_micro && opts_.batch_size % n_micro == 0);
  const int64_t per = opts_.batch_size / n_micro;
  LoaderBatch b;
  b.cu_seqlens.push_back(0);
  for (int64_t w = 0; w < per; ++w) {
    const int64_t g = step * opts_.batch_size + micro * per + w;
    append_window(b, *stream_, window_start(g), opts_.seq_len, split_point(g), opts_.split_documents,
                  opts_.eos_token_id);
  }
  return b;
}

std::vector<LoaderBatch> heldout_batches(const TokenStream& stream, const LoaderOptions& o,
                                         int64_t max_batches) {
  std::vector<LoaderBatch> out;
  const int64_t end = o.end < 0 ? static_cast<int64_t>(stream.ids.size()) : o.end;
  int64_t pos = o.begin;
  while (static_cast<int64_t>(out.size()) < max_batches && pos + o.seq_len <= end) {
    LoaderBatch b;
    b.cu_seqlens.push_back(0);
    for (int64_t w = 0; w < o.batch_size && pos + o.seq_len <= end; ++w, pos += o.seq_len) {
      append_window(b, stream, pos, o.seq_len, 0, o.split_documents, o.eos_token_id);
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace illada::train
