// Batch invariance of the packed forward pass in batch-invariant products (kernels/gemm.h), which
// step-level batching relies on: the logits of one sequence must be the same bits whatever
// other sequences share its forward call (their number, lengths and place in the pack), with
// and without KV caches, in fp32 and bf16. (Without the scope, oneDNN's bf16 products fail the
// one-row case and, for k > 512, rows of any count: see BatchInvariantScope.)
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/gemm.h"
#include "model/transformer.h"
#include "util/isa.h"
#include "util/rng.h"

namespace illada {
namespace {

std::string fixture(const std::string& name) {
  return std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/" + name;
}

// Models wider than the fixtures, so that the products take oneDNN's blocked paths, with random
// weights: "mid" (d 256, GQA) and "wide" (the small benchmark config's widths: d 512, mlp 1408,
// vocab 4096; one layer).
Model random_model(const std::string& name, ComputeType dt) {
  const bool wide = name == "wide";
  ModelConfig c;
  c.d_model = wide ? 512 : 256;
  c.n_layers = wide ? 1 : 2;
  c.n_heads = wide ? 8 : 4;
  c.n_kv_heads = wide ? 8 : 2;
  c.mlp_hidden_size = wide ? 1408 : 704;
  c.vocab_size = c.embedding_size = wide ? 4096 : 1024;
  c.max_sequence_length = 4096;
  c.rope_theta = 500000;
  c.weight_tying = true;
  c.mask_token_id = static_cast<int32_t>(c.vocab_size - 1);
  c.eos_token_id = static_cast<int32_t>(c.vocab_size - 2);
  c.validate(name);
  ModelWeights w = init_weights(c, dt, 7);
  pack_matrices(w);
  return Model(c, std::move(w));
}

std::vector<int32_t> tokens(int64_t n, uint64_t seed, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(random_bits(seed, 0, i) % (vocab - 2));
  return t;
}

// One sequence of a packed call: its ids, the rows whose logits are wanted (empty: all), and
// optionally a cache it writes at [first, first + len) while attending to cache rows
// [0, kv_len).
struct Seq {
  std::vector<int32_t> ids;
  std::vector<int32_t> rows;
  KVCache* cache = nullptr;
  int32_t first = 0, kv_len = 0;
};

// Logits of sequence `which` when `seqs` are packed into one forward call that also computes
// every other sequence's wanted rows (so the head's product grows with the batch too).
std::vector<float> logits_of(const Model& m, const std::vector<Seq>& seqs, size_t which) {
  std::vector<int32_t> ids, cu{0}, rows;
  std::vector<SeqCache> caches;
  size_t mine = 0, mine_n = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int32_t base = cu.back();
    ids.insert(ids.end(), seqs[s].ids.begin(), seqs[s].ids.end());
    cu.push_back(static_cast<int32_t>(ids.size()));
    if (s == which) mine = rows.size();
    if (seqs[s].rows.empty()) {
      for (int32_t i = base; i < cu.back(); ++i) rows.push_back(i);
    } else {
      for (int32_t r : seqs[s].rows) rows.push_back(base + r);
    }
    if (s == which) mine_n = rows.size() - mine;
    if (seqs[s].cache) caches.push_back({seqs[s].cache, seqs[s].first, seqs[s].kv_len});
  }
  ForwardState st;
  const int64_t v = m.config().embedding_size;
  const BatchInvariantScope invariant;  // as the sampler runs every forward pass
  std::vector<float> out(rows.size() * v);
  m.forward({.ids = ids, .cu_seqlens = cu, .logit_rows = rows, .caches = caches}, st, out);
  return std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(mine * v),
                            out.begin() + static_cast<std::ptrdiff_t>((mine + mine_n) * v));
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << a.size() << " logits differ";
}

class BatchInvariance : public ::testing::TestWithParam<std::tuple<std::string, ComputeType>> {
 protected:
  const Model& model() {
    const auto& [name, dt] = GetParam();
    static std::map<std::pair<std::string, ComputeType>, Model> models;
    auto it = models.find({name, dt});
    if (it == models.end()) {
      it = models.emplace(std::pair{name, dt}, name == "tiny_gqa" ? Model::load(fixture(name), dt) : random_model(name, dt)).first;
    }
    return it->second;
  }
};

TEST_P(BatchInvariance, WithoutCaches) {
  const Model& m = model();
  const int64_t v = m.config().embedding_size;
  const Seq a{tokens(40, 1, v)};
  const std::vector<float> alone = logits_of(m, {a}, 0);
  for (int64_t other : {1, 7, 33, 100, 180}) {
    const Seq b{tokens(other, 2 + other, v)};
    expect_same_bits(alone, logits_of(m, {a, b}, 0), "before one of " + std::to_string(other));
    expect_same_bits(alone, logits_of(m, {b, a}, 1), "after one of " + std::to_string(other));
    expect_same_bits(alone, logits_of(m, {b, a, b, b}, 1), "among three of " + std::to_string(other));
  }
  // One wanted row (a step with one masked position left) among many; a batch of 16 requests'
  // full canvases (about 2,600 rows).
  Seq one = a;
  one.rows = {17};
  const std::vector<float> one_alone = logits_of(m, {one}, 0);
  std::vector<Seq> many;
  for (int64_t i = 0; i < 16; ++i) many.push_back({tokens(100 + 8 * i, 50 + i, v)});
  many.insert(many.begin() + 5, one);
  expect_same_bits(one_alone, logits_of(m, many, 5), "one row among 16 sequences");
  many[5] = a;
  expect_same_bits(alone, logits_of(m, many, 5), "among 16 sequences");
}

TEST_P(BatchInvariance, WithCaches) {
  const Model& m = model();
  const ModelConfig& c = m.config();
  const int64_t v = c.embedding_size;
  // A block step of Fast-dLLM's dual cache: the whole canvas once (filling the cache), then the
  // block's 16 rows against every cached key.
  auto block_step = [&](const std::vector<int64_t>& others, size_t place) {
    const int64_t len = 72;
    std::vector<KVCache> caches(others.size() + 1);
    std::vector<Seq> full, step;
    size_t o = 0;
    for (size_t s = 0; s <= others.size(); ++s) {
      const bool mine = s == place;
      const int64_t n = mine ? len : others[o];
      Seq q{tokens(n, mine ? 9 : 100 + n, v)};
      caches[s].reset(c, n, m.dtype());
      q.cache = &caches[s];
      q.kv_len = static_cast<int32_t>(n);
      full.push_back(q);
      Seq blk = q;
      const int64_t b0 = std::min<int64_t>(mine ? 40 : n / 2, n - 1), bl = std::min<int64_t>(16, n - b0);
      blk.ids.assign(q.ids.begin() + b0, q.ids.begin() + b0 + bl);
      blk.first = static_cast<int32_t>(b0);
      step.push_back(blk);
      if (!mine) ++o;
    }
    logits_of(m, full, place);
    return logits_of(m, step, place);
  };
  const std::vector<float> alone = block_step({}, 0);
  expect_same_bits(alone, block_step({5}, 0), "before a short one");
  expect_same_bits(alone, block_step({130, 64}, 1), "between two");
  expect_same_bits(alone, block_step({30, 200, 90}, 3), "after three");
}

TEST_P(BatchInvariance, ACacheOverTheWholeSequenceChangesNothing) {
  // A request without a cache may share a pass with cached ones by writing a scratch cache of
  // its own canvas and attending to all of it: the same bits as no cache at all.
  const Model& m = model();
  const Seq a{tokens(50, 3, m.config().embedding_size)};
  KVCache scratch;
  scratch.reset(m.config(), 50, m.dtype());
  Seq cached = a;
  cached.cache = &scratch;
  cached.kv_len = 50;
  expect_same_bits(logits_of(m, {a}, 0), logits_of(m, {cached}, 0), "scratch cache");
}

INSTANTIATE_TEST_SUITE_P(Models, BatchInvariance,
                         ::testing::Combine(::testing::Values("tiny_gqa", "mid", "wide"),
                                            ::testing::Values(ComputeType::kF32, ComputeType::kBF16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) == ComputeType::kF32 ? "_f32" : "_bf16");
                         });

}  // namespace
}  // namespace illada
