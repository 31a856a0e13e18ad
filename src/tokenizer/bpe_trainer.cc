// BPE training in the classic incremental form: unique words with counts, a count per
// adjacent pair, the words each pair occurs in, and a max-heap of (count, pair) whose stale
// entries are skipped when popped.
#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <queue>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/regex.h"
#include "util/check.h"
#include "util/file.h"

namespace illada::tokenizer {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

uint64_t pack(int32_t a, int32_t b) { return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b); }
int32_t first(uint64_t p) { return static_cast<int32_t>(p >> 32); }
int32_t second(uint64_t p) { return static_cast<int32_t>(p & 0xFFFFFFFFu); }

struct PairHash {
  size_t operator()(uint64_t k) const noexcept { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 17); }
};

}  // namespace

struct BpeTrainer::Counter {
  Regex split;
  AddedTokenMatcher specials;
  std::vector<AddedToken> special_tokens;
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> counts;
  std::vector<AddedSplit> sections;
  std::vector<std::pair<uint32_t, uint32_t>> matches;
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : opt_(std::move(options)) {
  specials_ = opt_.special_tokens;
  for (int i = 0; i < opt_.reserved_tokens; ++i) specials_.push_back("<|reserved_token_" + std::to_string(i) + "|>");
  for (size_t i = 0; i < specials_.size(); ++i) {
    if (specials_[i].empty()) fail("tokenizer train: special token ", i, " is empty");
    for (size_t j = 0; j < i; ++j) {
      if (specials_[i] == specials_[j]) fail("tokenizer train: special token '", specials_[i], "' is listed twice");
    }
  }
  const int64_t min_vocab = 256 + static_cast<int64_t>(specials_.size());
  if (opt_.vocab_size < min_vocab) {
    fail("tokenizer train: --vocab-size ", opt_.vocab_size, " is too small: the 256 bytes and ", specials_.size(),
         " special tokens alone need ", min_vocab);
  }
  counter_ = std::make_shared<Counter>();
  counter_->split = Regex::compile(opt_.split_pattern, "tokenizer train: split pattern");
  counter_->special_tokens.resize(specials_.size());
  std::vector<const AddedToken*> ptrs;
  for (size_t i = 0; i < specials_.size(); ++i) {
    counter_->special_tokens[i].content = specials_[i];
    counter_->special_tokens[i].id = static_cast<int32_t>(i);
    ptrs.push_back(&counter_->special_tokens[i]);
  }
  counter_->specials.build(specials_, ptrs);
}

void BpeTrainer::add_text(std::string_view text) {
  ILLADA_CHECK(counter_, "add_text after train()");
  const auto t0 = Clock::now();
  Counter& c = *counter_;
  c.specials.split(text, c.sections);
  for (const AddedSplit& s : c.sections) {
    if (s.id >= 0) continue;
    const std::string_view part = text.substr(s.begin, s.end - s.begin);
    c.matches.clear();
    c.split.find_all(part, c.matches);
    // Isolated split: the gaps between matches are words too (only invalid UTF-8 leaves gaps).
    uint32_t prev = 0;
    auto count = [&](uint32_t b, uint32_t e) {
      if (e <= b) return;
      const std::string_view w = part.substr(b, e - b);
      auto it = c.counts.find(w);
      if (it == c.counts.end()) {
        c.counts.emplace(std::string(w), 1);
      } else {
        ++it->second;
      }
      ++stats_.words;
    };
    for (auto [b, e] : c.matches) {
      count(prev, b);
      count(b, e);
      prev = e;
    }
    count(prev, static_cast<uint32_t>(part.size()));
  }
  stats_.bytes += static_cast<int64_t>(text.size());
  stats_.count_seconds += seconds_since(t0);
}

void BpeTrainer::add_file(const std::string& path) {
  // Read in chunks, so any size is fine; a pipe is read to its end, a device refused.
  check_readable(path, {.max_bytes = UINT64_MAX, .allow_stream = true, .what = "text file to learn from"});
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("tokenizer train: cannot read input file '", path, "'");
  // Read in chunks that end at a newline so memory stays bounded for large files.
  constexpr size_t kChunk = 64 << 20;
  std::string buf, carry;
  std::vector<char> block(kChunk);
  int64_t line = 1;     // of the chunk's first byte, for the text check's messages
  uint64_t offset = 0;
  auto take = [&](const std::string& text) {
    check_text(text, path, line, offset);
    line += std::count(text.begin(), text.end(), '\n');
    offset += text.size();
    add_text(text);
  };
  while (f) {
    f.read(block.data(), static_cast<std::streamsize>(block.size()));
    const auto n = static_cast<size_t>(f.gcount());
    if (n == 0) break;
    buf = std::move(carry);
    carry.clear();
    buf.append(block.data(), n);
    if (f) {
      size_t cut = buf.rfind('\n');
      if (cut == std::string::npos) {  // no newline: keep a UTF-8 sequence the chunk split
        cut = buf.size();
        for (int k = 1; k <= 3 && k <= static_cast<int>(buf.size()); ++k) {
          const auto c = static_cast<unsigned char>(buf[buf.size() - k]);
          if ((c & 0xC0) != 0x80) {
            if (c >= 0xC0) cut = buf.size() - k;
            break;
          }
        }
        cut -= 1;
      }
      carry = buf.substr(cut + 1);
      buf.resize(cut + 1);
    }
    take(buf);
  }
  if (!carry.empty()) take(carry);
  if (f.bad()) fail("tokenizer train: error reading '", path, "'");
}

void BpeTrainer::train() {
  ILLADA_CHECK(counter_, "train() called twice");
  const auto t0 = Clock::now();
  // Unique words as symbol sequences (byte ids 0..255), in a deterministic order.
  std::vector<std::pair<std::string, int64_t>> words(counter_->counts.begin(), counter_->counts.end());
  counter_.reset();
  std::sort(words.begin(), words.end());
  stats_.unique_words = static_cast<int64_t>(words.size());

  std::vector<std::vector<int32_t>> syms(words.size());
  std::vector<int64_t> freq(words.size());
  std::unordered_map<uint64_t, int64_t, PairHash> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>, PairHash> pair_words;
  for (size_t w = 0; w < words.size(); ++w) {
    const std::string& s = words[w].first;
    freq[w] = words[w].second;
    syms[w].assign(s.begin(), s.end());
    for (int32_t& x : syms[w]) x &= 0xFF;
    for (size_t i = 0; i + 1 < syms[w].size(); ++i) {
      const uint64_t p = pack(syms[w][i], syms[w][i + 1]);
      pair_count[p] += freq[w];
      auto& ws = pair_words[p];
      if (ws.empty() || ws.back() != static_cast<int32_t>(w)) ws.push_back(static_cast<int32_t>(w));
    }
  }
  words.clear();
  words.shrink_to_fit();

  vocab_.clear();
  for (int b = 0; b < 256; ++b) vocab_.push_back(std::string(1, static_cast<char>(b)));
  merges_.clear();

  // Max-heap on count; ties go to the pair whose token bytes sort first (deterministic).
  struct Entry {
    int64_t count;
    uint64_t pair;
  };
  auto less = [this](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    const int c = vocab_[first(x.pair)].compare(vocab_[first(y.pair)]);
    if (c != 0) return c > 0;
    return vocab_[second(x.pair)] > vocab_[second(y.pair)];
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(less)> heap(less);
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  const int64_t n_merges = opt_.vocab_size - 256 - static_cast<int64_t>(specials_.size());
  std::vector<int32_t> stamp(syms.size(), -1);
  std::unordered_map<uint64_t, int64_t, PairHash> delta;
  std::vector<int32_t> merged;
  while (static_cast<int64_t>(merges_.size()) < n_merges) {
    if (heap.empty()) {
      fail("tokenizer train: the input yields only ", merges_.size(), " merges (pairs seen at least ",
           opt_.min_frequency, " times); --vocab-size can be at most ", 256 + merges_.size() + specials_.size(),
           " for it: give more text or a smaller vocabulary");
    }
    const Entry top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.pair);
    if (it == pair_count.end() || it->second != top.count) continue;  // stale
    if (top.count < opt_.min_frequency) {
      while (!heap.empty()) heap.pop();
      continue;  // reported as "too few merges" above
    }
    const int32_t a = first(top.pair), b = second(top.pair);
    const auto id = static_cast<int32_t>(vocab_.size());
    vocab_.push_back(vocab_[a] + vocab_[b]);
    merges_.emplace_back(a, b);
    const auto merge_no = static_cast<int32_t>(merges_.size());

    std::vector<int32_t> where = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    delta.clear();
    for (const int32_t w : where) {
      if (stamp[w] == merge_no) continue;
      stamp[w] = merge_no;
      std::vector<int32_t>& s = syms[w];
      bool found = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i] == a && s[i + 1] == b) {
          found = true;
          break;
        }
      }
      if (!found) continue;
      const int64_t f = freq[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pack(s[i], s[i + 1])] -= f;
      merged.clear();
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged.push_back(id);
          i += 2;
        } else {
          merged.push_back(s[i++]);
        }
      }
      s.assign(merged.begin(), merged.end());
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t p = pack(s[i], s[i + 1]);
        delta[p] += f;
        if (s[i] == id || s[i + 1] == id) {
          auto& ws = pair_words[p];
          if (ws.empty() || ws.back() != w) ws.push_back(w);
        }
      }
    }
    for (const auto& [p, d] : delta) {
      if (d == 0) continue;
      int64_t& c = pair_count[p];
      c += d;
      if (c <= 0) {
        pair_count.erase(p);
      } else {
        heap.push({c, p});
      }
    }
    pair_count.erase(top.pair);
    if (opt_.verbose && merges_.size() % 1000 == 0) {
      std::fprintf(stderr, "tokenizer train: %zu / %lld merges\n", merges_.size(), static_cast<long long>(n_merges));
    }
  }
  stats_.merge_seconds = seconds_since(t0);
}

std::string BpeTrainer::tokenizer_json() const {
  ILLADA_CHECK(!vocab_.empty(), "tokenizer_json() before train()");
  using ojson = nlohmann::ordered_json;
  const auto n_model = static_cast<int32_t>(vocab_.size());
  ojson added = ojson::array();
  for (size_t i = 0; i < specials_.size(); ++i) {
    added.push_back({{"id", n_model + static_cast<int32_t>(i)},
                     {"content", specials_[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  // The vocabulary is written by hand, in id order (ordered_json's inserts are linear).
  std::string vocab = "{";
  auto add_entry = [&](const std::string& token, int32_t id) {
    vocab += vocab.size() > 1 ? ",\n      " : "\n      ";
    vocab += nlohmann::json(token).dump();
    vocab += ": ";
    vocab += std::to_string(id);
  };
  for (int32_t i = 0; i < n_model; ++i) add_entry(bytes_to_byte_level(vocab_[i]), i);
  for (size_t i = 0; i < specials_.size(); ++i) add_entry(specials_[i], n_model + static_cast<int32_t>(i));
  vocab += "\n    }";
  ojson merges = ojson::array();
  for (const auto& [a, b] : merges_) merges.push_back(bytes_to_byte_level(vocab_[a]) + " " + bytes_to_byte_level(vocab_[b]));
  const ojson byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  ojson t = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", opt_.split_pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", "@VOCAB@"},
        {"merges", merges}}}};
  std::string text = t.dump(2) + "\n";
  const size_t at = text.find("\"@VOCAB@\"");
  ILLADA_CHECK(at != std::string::npos);
  text.replace(at, 9, vocab);
  return text;
}

std::string BpeTrainer::tokenizer_config_json() const {
  using ojson = nlohmann::ordered_json;
  const auto n_model = static_cast<int32_t>(vocab_.size());
  ojson decoder = ojson::object();
  for (size_t i = 0; i < specials_.size(); ++i) {
    decoder[std::to_string(n_model + static_cast<int32_t>(i))] = {{"content", specials_[i]},
                                                                  {"lstrip", false},
                                                                  {"normalized", false},
                                                                  {"rstrip", false},
                                                                  {"single_word", false},
                                                                  {"special", true}};
  }
  auto pick = [&](std::string_view name, size_t fallback) -> std::string {
    for (const auto& s : specials_) {
      if (s == name) return s;
    }
    return fallback < specials_.size() ? specials_[fallback] : std::string();
  };
  ojson c = {{"add_bos_token", false},
             {"add_eos_token", false},
             {"added_tokens_decoder", decoder},
             {"bos_token", pick("<|startoftext|>", 0)},
             {"eos_token", pick("<|endoftext|>", 1)},
             {"pad_token", pick("<|endoftext|>", 1)},
             {"mask_token", pick("<|mdm_mask|>", 2)},
             {"chat_template", std::string(llada_chat_template_jinja())},
             {"clean_up_tokenization_spaces", false},
             {"model_max_length", 8192},
             {"tokenizer_class", "PreTrainedTokenizerFast"}};
  return c.dump(2) + "\n";
}

void BpeTrainer::save(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("tokenizer train: cannot create output directory '", dir, "': ", ec.message());
  auto write = [&](const std::string& name, const std::string& text) {
    write_file_atomic((fs::path(dir) / name).string(), text);
  };
  write("tokenizer.json", tokenizer_json());
  write("tokenizer_config.json", tokenizer_config_json());
}

}  // namespace illada::tokenizer
