// The forward pass against the PyTorch reference fixtures (tools/reference/make_fixtures.py):
// fp32 and bf16 logits, packing, sharding, tied/untied heads and bad checkpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/tensor_check.h"
#include "model/transformer.h"
#include "util/check.h"
#include "../test_util.h"

namespace illada {
namespace {

using test::max_abs;
using test::max_abs_diff;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string fixture(const std::string& name) {
  return std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/" + name;
}

struct Reference {
  std::vector<int32_t> ids, cu;
  std::vector<float> logits, logits_bf16, single_logits;
};

std::vector<int32_t> read_i32(const TensorStore& s, const std::string& name) {
  auto b = s.bytes(name);
  std::vector<int32_t> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<float> read_f32(const TensorStore& s, const std::string& name) {
  std::vector<float> v(static_cast<size_t>(s.find(name)->numel()));
  s.read_f32(name, v);
  return v;
}

Reference load_reference(const std::string& model) {
  const TensorStore s = TensorStore::open_file(fixture(model) + "/ref.safetensors");
  return {read_i32(s, "ids"), read_i32(s, "cu_seqlens"), read_f32(s, "logits"),
          read_f32(s, "logits_bf16"), read_f32(s, "single_logits")};
}

std::vector<float> run(const Model& m, const std::vector<int32_t>& ids,
                       const std::vector<int32_t>& cu, const std::vector<int32_t>& rows = {}) {
  ForwardState st;
  ForwardInput in{.ids = ids, .cu_seqlens = cu, .logit_rows = rows};
  std::vector<float> out(Model::logit_row_count(in) * m.config().embedding_size);
  m.forward(in, st, out);
  return out;
}

class Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Fixture, Fp32LogitsMatchReference) {
  const Reference ref = load_reference(GetParam());
  const Model m = Model::load(fixture(GetParam()), ComputeType::kF32);
  const auto out = run(m, ref.ids, ref.cu);
  const float scale = max_abs(ref.logits);
  EXPECT_GT(scale, 1.0f);
  EXPECT_LE(max_abs_diff(out, ref.logits), 1e-4f * scale);
}

TEST_P(Fixture, Bf16LogitsMatchBf16Reference) {
  const Reference ref = load_reference(GetParam());
  const Model m = Model::load(fixture(GetParam()), ComputeType::kBF16);
  const auto out = run(m, ref.ids, ref.cu);
  const float scale = max_abs(ref.logits);
  // Same roundings as the bf16 reference; differing summation order can flip a bf16 rounding.
  EXPECT_LE(max_abs_diff(out, ref.logits_bf16), 1e-3f * scale);
  // And still close to the exact fp64 result.
  EXPECT_LE(max_abs_diff(out, ref.logits), 2e-2f * scale);
  EXPECT_GT(max_abs_diff(out, ref.logits), 1e-4f * scale);  // it really computed in bf16
}

TEST_P(Fixture, PackedSequencesAreIndependent) {
  const Reference ref = load_reference(GetParam());
  const Model m = Model::load(fixture(GetParam()), ComputeType::kF32);
  const std::vector<int32_t> first(ref.ids.begin(), ref.ids.begin() + ref.cu[1]);
  const auto alone = run(m, first, {});
  EXPECT_LE(max_abs_diff(alone, ref.single_logits), 1e-4f * max_abs(ref.single_logits));
  const auto packed = run(m, ref.ids, ref.cu);
  const std::vector<float> head(packed.begin(), packed.begin() + alone.size());
  EXPECT_LE(max_abs_diff(alone, head), 1e-5f * max_abs(alone));
}

TEST_P(Fixture, LogitRowsSelectRows) {
  const Reference ref = load_reference(GetParam());
  const Model m = Model::load(fixture(GetParam()), ComputeType::kF32);
  const auto all = run(m, ref.ids, ref.cu);
  const std::vector<int32_t> rows{20, 3, 3};
  const auto some = run(m, ref.ids, ref.cu, rows);
  const int64_t v = m.config().embedding_size;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t j = 0; j < v; ++j) {
      ASSERT_FLOAT_EQ(some[i * v + j], all[rows[i] * v + j]) << i << "," << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Fixture, ::testing::Values("tiny_mha", "tiny_gqa"));

TEST(Model, ShardedAndSingleFileGiveIdenticalLogits) {
  const Reference ref = load_reference("tiny_gqa");
  for (ComputeType dt : {ComputeType::kF32, ComputeType::kBF16}) {
    const auto a = run(Model::load(fixture("tiny_gqa"), dt), ref.ids, ref.cu);
    const auto b = run(Model::load(fixture("tiny_gqa_sharded"), dt), ref.ids, ref.cu);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
  }
}

TEST(Model, Bf16LoadPacksEveryMatrixAndPackedMatchesPlain) {
  const Reference ref = load_reference("tiny_mha");
  const Model packed = Model::load(fixture("tiny_mha"), ComputeType::kBF16);
  const auto& cfg = packed.config();
  for (const auto& l : packed.weights().layers) {
    // q/k/v and gate/up are packed stacked, one product each.
    for (const Matrix* m : {&l.qkv, &l.gate_up, &l.attn_out, &l.ff_out}) EXPECT_NE(m->packed, nullptr);
    EXPECT_EQ(l.qkv.rows, (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim());
    EXPECT_EQ(l.gate_up.rows, 2 * cfg.mlp_hidden_size);
  }
  EXPECT_NE(packed.weights().head.packed, nullptr);
  const auto c = ModelConfig::load(fixture("tiny_mha") + "/config.json");
  auto store = std::make_shared<const TensorStore>(TensorStore::open_dir(fixture("tiny_mha")));
  const Model plain(c, load_weights(store, c, ComputeType::kBF16, "tiny_mha"));
  EXPECT_EQ(plain.weights().layers[0].q_proj.packed, nullptr);
  const auto a = run(packed, ref.ids, ref.cu), b = run(plain, ref.ids, ref.cu);
  EXPECT_LE(max_abs_diff(a, b), 1e-3f * max_abs(b));
}

TEST(Model, TiedHeadIsTheEmbedding) {
  const Model m = Model::load(fixture("tiny_gqa"), ComputeType::kF32);
  EXPECT_TRUE(m.config().weight_tying);
  EXPECT_EQ(m.weights().head.data, m.weights().wte.data);
  const Model u = Model::load(fixture("tiny_mha"), ComputeType::kF32);
  EXPECT_NE(u.weights().head.data, u.weights().wte.data);
}

TEST(Model, DeterministicAcrossCalls) {
  const Reference ref = load_reference("tiny_gqa");
  const Model m = Model::load(fixture("tiny_gqa"), ComputeType::kBF16);
  const auto a = run(m, ref.ids, ref.cu), b = run(m, ref.ids, ref.cu);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

// ---- Bad input -------------------------------------------------------------------------

class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("illada_model_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy(fixture("tiny_mha"), dir_, fs::copy_options::recursive);
    fs::remove(dir_ / "ref.safetensors");
    std::ifstream f(dir_ / "config.json");
    config_ = nlohmann::json::parse(f);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write_config(const nlohmann::json& j) { std::ofstream(dir_ / "config.json") << j.dump(); }

  // Rewrites model.safetensors after `edit` changes the tensor list (all F32).
  void rewrite(const std::function<void(std::vector<TensorToWrite>&)>& edit) {
    const TensorStore s = TensorStore::open_dir(dir_.string());
    std::vector<std::vector<std::byte>> keep;
    std::vector<TensorToWrite> ts;
    for (const auto& name : s.names()) {
      auto b = s.bytes(name);
      keep.emplace_back(b.begin(), b.end());
      ts.push_back({name, s.find(name)->dtype, s.find(name)->shape, {}});
    }
    for (size_t i = 0; i < ts.size(); ++i) ts[i].data = keep[i];
    edit(ts);
    write_safetensors((dir_ / "model.safetensors").string(), ts);
  }

  std::string load_error() {
    try {
      Model::load(dir_.string(), ComputeType::kF32);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }

  fs::path dir_;
  nlohmann::json config_;
};

TEST_F(BadCheckpoint, MissingConfigKey) {
  config_.erase("n_heads");
  write_config(config_);
  EXPECT_THAT(load_error(), HasSubstr("missing required key 'n_heads'"));
}

TEST_F(BadCheckpoint, HeadsNotDivisibleByKvHeads) {
  config_["n_kv_heads"] = 3;
  write_config(config_);
  EXPECT_THAT(load_error(), HasSubstr("n_heads (4) must be divisible by n_kv_heads (3)"));
}

TEST_F(BadCheckpoint, UnsupportedVariant) {
  config_["include_bias"] = true;
  write_config(config_);
  EXPECT_THAT(load_error(), HasSubstr("'include_bias'"));
}

TEST_F(BadCheckpoint, MissingTensor) {
  rewrite([](auto& ts) {
    std::erase_if(ts, [](auto& t) { return t.name == "model.transformer.blocks.1.up_proj.weight"; });
  });
  EXPECT_THAT(load_error(), HasSubstr("missing tensor 'model.transformer.blocks.1.up_proj.weight'"));
}

TEST_F(BadCheckpoint, ExtraTensor) {
  static const float extra[2] = {1, 2};
  rewrite([](auto& ts) {
    ts.push_back({"model.transformer.blocks.0.q_proj.bias", DType::F32, {2},
                  std::as_bytes(std::span<const float>(extra, 2))});
  });
  EXPECT_THAT(load_error(), HasSubstr("unexpected tensor 'model.transformer.blocks.0.q_proj.bias'"));
}

TEST_F(BadCheckpoint, WrongShape) {
  config_["mlp_hidden_size"] = 128;
  write_config(config_);
  EXPECT_THAT(load_error(), HasSubstr("model.transformer.blocks.0.ff_proj.weight' has shape [96, 64]"));
}

TEST_F(BadCheckpoint, NoWeightsFile) {
  fs::remove(dir_ / "model.safetensors");
  EXPECT_THAT(load_error(), HasSubstr(dir_.string()));
}

TEST(Model, OutOfVocabularyIdIsAnError) {
  const Model m = Model::load(fixture("tiny_mha"), ComputeType::kF32);
  ForwardState st;
  const std::vector<int32_t> ids{1, 2, 128};
  std::vector<float> out(3 * 128);
  try {
    m.forward({.ids = ids}, st, out);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("token id 128 at position 2"));
  }
}

TEST_F(BadCheckpoint, SizesThatWouldOverflowAreErrors) {
  config_["d_model"] = int64_t{1000000000000};
  write_config(config_);
  EXPECT_THAT(load_error(), HasSubstr("'d_model' = 1000000000000 is larger than illada supports"));
  config_["d_model"] = 64;
  config_["eos_token_id"] = int64_t{4294967297};  // would wrap to 1 in an int32
  write_config(config_);
  EXPECT_THAT(load_error(), HasSubstr("'eos_token_id' = 4294967297 is not a token id"));
}

TEST_F(BadCheckpoint, NonFiniteWeightsFailTheForwardAndCheckTensorsNamesThem) {
  rewrite([](auto& ts) {
    for (auto& t : ts) {
      if (t.name != "model.transformer.blocks.1.up_proj.weight") continue;
      static std::vector<float> poisoned;
      poisoned.assign(reinterpret_cast<const float*>(t.data.data()),
                      reinterpret_cast<const float*>(t.data.data() + t.data.size()));
      poisoned[5] = NAN;
      t.data = std::as_bytes(std::span<const float>(poisoned));
    }
  });
  for (ComputeType ct : {ComputeType::kF32, ComputeType::kBF16}) {
    const Model m = Model::load(dir_.string(), ct);  // no scan by default
    ForwardState st;
    const std::vector<int32_t> ids{1, 2, 3};
    std::vector<float> out(3 * m.config().embedding_size);
    try {
      m.forward({.ids = ids}, st, out);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("non-finite logit"));
      EXPECT_THAT(e.what(), HasSubstr("--check-tensors"));
    }
  }
  try {
    Model::load(dir_.string(), ComputeType::kBF16, true, /*check_tensors=*/true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'model.transformer.blocks.1.up_proj.weight' holds NaN at element 5"));
  }
}

TEST(TensorCheck, FindsTheFirstNonFiniteValueInAnyChunk) {
  std::vector<float> v(3 << 20, 1.0f);  // large enough for the parallel path
  EXPECT_EQ(first_non_finite(v), -1);
  for (int64_t at : {int64_t{0}, int64_t{70000}, int64_t{(3 << 20) - 1}}) {
    std::vector<float> w = v;
    w[at] = INFINITY;
    w[(3 << 20) - 1] = NAN;  // a later one must not win
    EXPECT_EQ(first_non_finite(w), at);
  }
  v[123] = -INFINITY;
  EXPECT_EQ(first_non_finite(std::span<const float>(v).subspan(0, 100)), -1);
  EXPECT_EQ(first_non_finite(v), 123);
}

TEST(Model, OverlongSequenceIsAnError) {
  const Model m = Model::load(fixture("tiny_mha"), ComputeType::kF32);
  ForwardState st;
  const std::vector<int32_t> ids(300, 1);  // max_sequence_length is 256
  std::vector<float> out(300 * 128);
  EXPECT_THROW(m.forward({.ids = ids}, st, out), Error);
}

}  // namespace
}  // namespace illada

namespace illada {
namespace {

// With an unchanged canvas, recomputing only some positions against cached keys/values must
// reproduce the full forward for those positions (prefix cache: block + suffix; dual: block).
TEST(KVCache, PartialForwardsMatchFullForward) {
  for (const char* name : {"tiny_mha", "tiny_gqa"}) {
    for (ComputeType dt : {ComputeType::kF32, ComputeType::kBF16}) {
      const Model m = Model::load(fixture(name), dt);
      const int64_t v = m.config().embedding_size;
      std::vector<int32_t> ids(20);
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 5) % 120);
      const auto full = run(m, ids, {});
      KVCache cache;
      cache.reset(m.config(), 32, dt);
      ForwardState st;
      std::vector<float> out(full.size());
      const SeqCache fill{&cache, 0, 20};
      m.forward({.ids = ids, .caches = {&fill, 1}}, st, out);
      EXPECT_EQ(std::memcmp(out.data(), full.data(), full.size() * 4), 0) << name;

      for (auto [first, len, kv_len] : {std::tuple{8, 12, 20}, std::tuple{8, 4, 20}}) {
        const std::vector<int32_t> part(ids.begin() + first, ids.begin() + first + len);
        const SeqCache sc{&cache, first, kv_len};
        std::vector<float> pout(len * v);
        m.forward({.ids = part, .caches = {&sc, 1}}, st, pout);
        const std::vector<float> want(full.begin() + first * v, full.begin() + (first + len) * v);
        EXPECT_LE(max_abs_diff(pout, want), 1e-5f * max_abs(want)) << name << " " << first << "+" << len;
      }
    }
  }
}

TEST(KVCache, StaleCacheChangesTheResult) {
  // The cache really is read: a changed prefix token that is not recomputed leaves the
  // cached (stale) keys in place, so the result differs from a full forward of the new canvas.
  const Model m = Model::load(fixture("tiny_mha"), ComputeType::kF32);
  std::vector<int32_t> ids(12, 7);
  KVCache cache;
  cache.reset(m.config(), 12, ComputeType::kF32);
  ForwardState st;
  std::vector<float> out(12 * 128);
  const SeqCache fill{&cache, 0, 12};
  m.forward({.ids = ids, .caches = {&fill, 1}}, st, out);
  ids[0] = 9;
  const auto full = run(m, ids, {});
  const std::vector<int32_t> part(ids.begin() + 8, ids.end());
  const SeqCache sc{&cache, 8, 12};
  std::vector<float> pout(4 * 128);
  m.forward({.ids = part, .caches = {&sc, 1}}, st, pout);
  const std::vector<float> want(full.begin() + 8 * 128, full.end());
  EXPECT_GT(max_abs_diff(pout, want), 1e-3f);
}

}  // namespace
}  // namespace illada
