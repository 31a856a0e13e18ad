// BPE merge loop with the same tie-breaking as Hugging Face tokenizers: repeatedly merge the
// adjacent pair of lowest rank, leftmost first.
#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <queue>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_util.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::tokenizer {

using nlohmann::json;
using namespace json_util;

size_t StringHash::operator()(std::string_view s) const noexcept {
  // FNV-1a on 8-byte words; words are short, so this beats a general-purpose hash.
  uint64_t h = 0xcbf29ce484222325ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  __builtin_memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0x9E3779B97F4A7C15ull;
  return static_cast<size_t>(h ^ (h >> 32));
}

void MergeMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) {
      insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.value);
    }
  }
}

void MergeMap::insert(int32_t a, int32_t b, Value v) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(size_ + 1 > 8 ? size_ * 2 : 16);
  const uint64_t key = pack(a, b);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.value = v;
      return;
    }
    if (s.key == kEmpty) {
      s.key = key;
      s.value = v;
      ++size_;
      return;
    }
  }
}

namespace {

std::atomic<uint64_t> g_next_uid{1};

// Per-thread cache of word -> ids, for each live model (keyed by uid, not address, so a new
// model at a recycled address never sees stale entries). Open addressing over flat arrays:
// words and ids live in two arenas, a slot holds the hash and offsets.
class WordCache {
 public:
  static constexpr size_t kSlots = size_t{1} << 18;  // at most half of them used
  WordCache() : slots_(kSlots) {}

  // Appends the cached ids of `word` to `out`; false if absent.
  bool lookup(std::string_view word, uint64_t h, std::vector<int32_t>& out) const {
    for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& s = slots_[i];
      if (s.key_len == kEmpty) return false;
      if (s.hash == h && s.key_len == word.size() && std::memcmp(keys_.data() + s.key_off, word.data(), word.size()) == 0) {
        out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.n_ids);
        return true;
      }
    }
  }
  void insert(std::string_view word, uint64_t h, const int32_t* ids, size_t n) {
    if (used_ * 2 >= kSlots || keys_.size() > (64u << 20)) clear();
    size_t i = h & (kSlots - 1);
    while (slots_[i].key_len != kEmpty) i = (i + 1) & (kSlots - 1);
    slots_[i] = {h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
                 static_cast<uint32_t>(word.size()), static_cast<uint32_t>(n)};
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + n);
    ++used_;
  }

 private:
  static constexpr uint32_t kEmpty = ~uint32_t{0};
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, ids_off = 0, key_len = kEmpty, n_ids = 0;
  };
  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    used_ = 0;
  }
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t used_ = 0;
};
constexpr size_t kCacheMaxWordBytes = 256;

WordCache& cache_for(uint64_t uid) {
  thread_local uint64_t last_uid = 0;
  thread_local WordCache* last = nullptr;
  if (uid == last_uid) return *last;
  thread_local std::unordered_map<uint64_t, std::unique_ptr<WordCache>> caches;
  auto it = caches.find(uid);
  if (it == caches.end()) {
    if (caches.size() >= 4) caches.clear();
    it = caches.emplace(uid, std::make_unique<WordCache>()).first;
  }
  last_uid = uid;
  last = it->second.get();
  return *last;
}

}  // namespace

BpeModel BpeModel::from_json(const json& model) {
  constexpr const char* kWhere = "tokenizer.json: model";
  if (!model.is_object()) fail(kWhere, ": expected an object");
  if (const auto t = model.find("type"); t != model.end() && !t->is_null()) {
    if (!t->is_string() || t->get<std::string>() != "BPE") {
      fail(kWhere, ".type '", t->is_string() ? t->get<std::string>() : t->dump(),
           "' is not supported (illada supports BPE models)");
    }
  }
  const auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object()) fail(kWhere, ".vocab: expected an object");
  StringIdMap vocab;
  vocab.reserve(vit->size());
  for (const auto& [tok, id] : vit->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      fail(kWhere, ".vocab['", tok, "']: expected a non-negative integer id");
    }
    vocab[tok] = static_cast<int32_t>(id.get<int64_t>());
  }

  const auto mit = model.find("merges");
  std::vector<std::pair<std::string, std::string>> merges;
  if (mit != model.end() && !mit->is_null()) {
    if (!mit->is_array()) fail(kWhere, ".merges: expected an array");
    merges.reserve(mit->size());
    size_t i = 0;
    for (const json& m : *mit) {
      if (m.is_string()) {
        // Legacy "a b" form: exactly one separating space, as HF requires.
        const std::string& s = m.get_ref<const std::string&>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          fail(kWhere, ".merges[", i, "] '", s, "': expected two tokens separated by one space");
        }
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail(kWhere, ".merges[", i, "]: expected \"a b\" or [\"a\", \"b\"]");
      }
      ++i;
    }
  }

  if (const auto d = model.find("dropout"); d != model.end() && !d->is_null()) {
    if (!d->is_number()) fail(kWhere, ".dropout: expected a number or null");
    if (d->get<double>() > 0.0) fail(kWhere, ".dropout ", d->get<double>(), " is not supported (only deterministic BPE)");
  }

  const std::string prefix = get_opt_string(model, "continuing_subword_prefix", kWhere).value_or("");
  BpeModel m = from_parts(std::move(vocab), merges, prefix);
  m.unk_token_ = get_opt_string(model, "unk_token", kWhere);
  m.unk_id_ = m.unk_token_ ? m.token_to_id(*m.unk_token_) : -1;
  m.continuing_subword_prefix_ = prefix;
  m.end_of_word_suffix_ = get_opt_string(model, "end_of_word_suffix", kWhere).value_or("");
  m.fuse_unk_ = get_bool(model, "fuse_unk", false, kWhere);
  m.byte_fallback_ = get_bool(model, "byte_fallback", false, kWhere);
  m.ignore_merges_ = get_bool(model, "ignore_merges", false, kWhere);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m.byte_fallback_ids_[b] = m.token_to_id(name);
  }
  return m;
}

BpeModel BpeModel::from_parts(StringIdMap vocab,
                              const std::vector<std::pair<std::string, std::string>>& merges,
                              std::string_view continuing_subword_prefix) {
  BpeModel m;
  m.vocab_ = std::move(vocab);
  m.build_reverse();
  m.merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const int32_t ia = m.token_to_id(a), ib = m.token_to_id(b);
    // With a continuing-subword prefix (WordPiece-style BPE) the right part loses it.
    std::string_view b_rest = b;
    if (!continuing_subword_prefix.empty() && b_rest.starts_with(continuing_subword_prefix)) {
      b_rest.remove_prefix(continuing_subword_prefix.size());
    }
    const int32_t im = m.token_to_id(a + std::string(b_rest));
    if (ia < 0 || ib < 0 || im < 0) {
      const std::string missing = ia < 0 ? a : ib < 0 ? b : a + std::string(b_rest);
      fail("tokenizer.json: model.merges[", r, "] '", a, " ", b, "': token '", missing,
           "' is not in model.vocab");
    }
    m.merges_.insert(ia, ib, {static_cast<int32_t>(r), im});
  }
  m.byte_fallback_ids_.fill(-1);
  m.byte_ids_.fill(-1);
  m.uid_ = g_next_uid.fetch_add(1);
  return m;
}

void BpeModel::build_reverse() {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab_) max_id = std::max(max_id, id);
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    has_id_[id] = true;
  }
}

void BpeModel::set_raw_byte_input(bool on) {
  raw_bytes_ = on;
  uid_ = g_next_uid.fetch_add(1);
  raw_vocab_.clear();
  byte_ids_.fill(-1);
  if (!on) return;
  for (int b = 0; b < 256; ++b) byte_ids_[b] = token_to_id(byte_to_utf8(static_cast<uint8_t>(b)));
  if (ignore_merges_) {
    raw_vocab_.reserve(vocab_.size());
    std::string raw;
    for (const auto& [tok, id] : vocab_) {
      raw.clear();
      if (byte_level_to_bytes(tok, raw)) raw_vocab_.emplace(raw, id);
    }
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() > kCacheMaxWordBytes) {
    encode_uncached(word, out);
    return;
  }
  WordCache& cache = cache_for(uid_);
  const uint64_t h = StringHash{}(word);
  if (cache.lookup(word, h, out)) return;
  const size_t before = out.size();
  encode_uncached(word, out);
  cache.insert(word, h, out.data() + before, out.size() - before);
}

void BpeModel::encode_uncached(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const StringIdMap& whole = raw_bytes_ ? raw_vocab_ : vocab_;
    if (const auto it = whole.find(word); it != whole.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  syms.clear();

  // Unknown characters become unk (fused if fuse_unk) or are dropped when there is no unk.
  bool pending_unk = false;
  auto flush_unk = [&] {
    if (pending_unk) syms.push_back(unk_id_);
    pending_unk = false;
  };
  auto add_unknown = [&] {
    if (unk_id_ < 0) return;
    if (pending_unk && !fuse_unk_) syms.push_back(unk_id_);
    pending_unk = true;
  };

  if (raw_bytes_) {
    for (unsigned char b : word) {
      const int32_t id = byte_ids_[b];
      if (id >= 0) {
        flush_unk();
        syms.push_back(id);
      } else {
        add_unknown();
      }
    }
  } else {
    std::string piece;
    for (size_t i = 0; i < word.size();) {
      const int len = utf8_len(word, i);
      const bool first = i == 0, last = i + len == word.size();
      piece.clear();
      if (!first) piece += continuing_subword_prefix_;
      piece.append(word.substr(i, len));
      if (last) piece += end_of_word_suffix_;
      const int32_t id = token_to_id(piece);
      if (id >= 0) {
        flush_unk();
        syms.push_back(id);
      } else {
        bool done = false;
        if (byte_fallback_) {
          const bool all = std::all_of(piece.begin(), piece.end(), [&](char c) {
            return byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
          });
          if (all) {
            flush_unk();
            for (char c : piece) syms.push_back(byte_fallback_ids_[static_cast<unsigned char>(c)]);
            done = true;
          }
        }
        if (!done) add_unknown();
      }
      i += len;
    }
  }
  flush_unk();
  merge_symbols(syms);
  out.insert(out.end(), syms.begin(), syms.end());
}

void BpeModel::merge_symbols(std::vector<int32_t>& syms) const {
  size_t n = syms.size();
  if (n < 2 || merges_.size() == 0) return;
  if (n <= 48) {
    // Short words: keep the rank of each adjacent pair and scan for the minimum.
    thread_local std::vector<MergeMap::Value> pair;
    pair.resize(n - 1);
    for (size_t i = 0; i + 1 < n; ++i) {
      const MergeMap::Value* v = merges_.find(syms[i], syms[i + 1]);
      pair[i] = v ? *v : MergeMap::Value{INT32_MAX, -1};
    }
    while (n > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < n; ++i) {
        if (pair[i].rank < pair[best].rank) best = i;
      }
      if (pair[best].rank == INT32_MAX) break;
      syms[best] = pair[best].id;
      syms.erase(syms.begin() + static_cast<ptrdiff_t>(best) + 1);
      pair.erase(pair.begin() + static_cast<ptrdiff_t>(best));
      --n;
      auto refresh = [&](size_t i) {
        const MergeMap::Value* v = merges_.find(syms[i], syms[i + 1]);
        pair[i] = v ? *v : MergeMap::Value{INT32_MAX, -1};
      };
      if (best > 0) refresh(best - 1);
      if (best + 1 < n) refresh(best);
    }
    return;
  }

  // Long words: linked list of symbols and a min-heap of candidate merges (rank, position).
  struct Sym {
    int32_t id, prev, next;
    bool alive;
  };
  struct Cand {
    int32_t rank, pos, id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Sym> s(n);
  for (size_t i = 0; i < n; ++i) {
    s[i] = {syms[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  }
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const MergeMap::Value* v = merges_.find(syms[i], syms[i + 1])) {
      heap.push({v->rank, static_cast<int32_t>(i), v->id});
    }
  }
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& left = s[c.pos];
    if (!left.alive || left.next < 0) continue;
    Sym& right = s[left.next];
    const MergeMap::Value* v = merges_.find(left.id, right.id);
    if (!v || v->id != c.id) continue;  // stale candidate
    left.id = c.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) s[right.next].prev = c.pos;
    if (left.prev >= 0) {
      if (const MergeMap::Value* pv = merges_.find(s[left.prev].id, left.id)) {
        heap.push({pv->rank, left.prev, pv->id});
      }
    }
    if (left.next >= 0) {
      if (const MergeMap::Value* nv = merges_.find(left.id, s[left.next].id)) {
        heap.push({nv->rank, c.pos, nv->id});
      }
    }
  }
  syms.clear();
  for (int32_t i = 0; i >= 0; i = s[i].next) syms.push_back(s[i].id);
}

}  // namespace illada::tokenizer
