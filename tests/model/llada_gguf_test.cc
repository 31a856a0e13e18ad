// LLaDA models in GGUF: names and the RoPE permutation, checkpoint -> GGUF -> Model with the
// same logits (f32 and bf16, tied and untied, GQA and MHA), llama.cpp's per-tensor type choice,
// quantised files (raw blocks exposed, kept as blocks by the model (quant_model_test.cc runs
// them), dequantised by quantize), and files whose metadata or tensors lie.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/quant.h"
#include "model/llada_gguf.h"
#include "model/quantize.h"
#include "model/transformer.h"
#include "util/bf16.h"
#include "util/check.h"
#include "../test_util.h"

namespace illada {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string fixture(const std::string& name) {
  return std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/" + name;
}

using test::error_of;

std::vector<float> logits(const Model& m, const std::vector<int32_t>& ids) {
  ForwardState st;
  std::vector<float> out(ids.size() * m.config().embedding_size);
  m.forward({.ids = ids}, st, out);
  return out;
}

const std::vector<int32_t> kIds = {0, 5, 7, 9, 5, 100, 3, 64, 127, 2, 5, 5};

class LladaGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("illada_llada_gguf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }

  std::string write(const std::string& model, FileType type, const std::string& name) {
    QuantizeOptions o;
    o.type = type;
    quantize_model(fixture(model), path(name), o);
    return path(name);
  }

  // Copies `src` into `dst` after `edit` changed its keys or tensors (to make files that lie).
  using Edit = std::function<void(GgufWriter&, const GgufFile&)>;
  std::string rewrite(const std::string& src, const std::string& dst, const Edit& kv_edit,
                      const std::function<bool(const GgufTensorInfo&)>& keep = {},
                      const std::function<std::vector<int64_t>(const GgufTensorInfo&)>& ne = {}) {
    auto f = GgufFile::open(src);
    GgufWriter w;
    for (const auto& [k, v] : f->header().kv) w.set(k, v);
    kv_edit(w, *f);
    for (const GgufTensorInfo& t : f->header().tensors) {
      if (keep && !keep(t)) continue;
      w.add_tensor(t.name, ne ? ne(t) : t.ne, t.type, f->bytes(t));
    }
    w.write(path(dst));
    return path(dst);
  }
  fs::path dir_;
};

TEST(LladaNames, MapBothWays) {
  EXPECT_EQ(llada_gguf_name("model.transformer.wte.weight"), "token_embd.weight");
  EXPECT_EQ(llada_gguf_name("model.transformer.ff_out.weight"), "output.weight");
  EXPECT_EQ(llada_gguf_name("model.transformer.ln_f.weight"), "output_norm.weight");
  EXPECT_EQ(llada_gguf_name("model.transformer.blocks.12.ff_out.weight"), "blk.12.ffn_down.weight");
  EXPECT_EQ(llada_gguf_name("model.transformer.blocks.0.ff_proj.weight"), "blk.0.ffn_gate.weight");
  EXPECT_EQ(llada_gguf_name("model.transformer.blocks.3.attn_out.weight"), "blk.3.attn_output.weight");
  EXPECT_EQ(llada_hf_name("blk.31.attn_q.weight"), "model.transformer.blocks.31.q_proj.weight");
  EXPECT_EQ(llada_hf_name("blk.2.ffn_up.weight"), "model.transformer.blocks.2.up_proj.weight");
  for (const char* bad : {"blk.01.attn_q.weight", "blk..attn_q.weight", "blk.1.attn_q.bias",
                          "blk.1.rope_freqs.weight", "rope_freqs.weight", "blk.-1.attn_q.weight"}) {
    EXPECT_EQ(llada_hf_name(bad), "") << bad;
  }
  EXPECT_TRUE(llada_rope_permuted("model.transformer.blocks.4.k_proj.weight"));
  EXPECT_FALSE(llada_rope_permuted("model.transformer.blocks.4.v_proj.weight"));
}

TEST(LladaNames, RopePermutationMatchesTheConverterAndInverts) {
  // Two heads of head_dim 8 (rows 0-7, 8-15), one byte per row: GGUF row 2i+s of a head holds
  // checkpoint row s*4 + i.
  std::vector<std::byte> in(16), out(16), back(16);
  for (int i = 0; i < 16; ++i) in[i] = static_cast<std::byte>(i);
  permute_rope_rows(in, out, 2, 16, 1, /*to_gguf=*/true);
  const int want[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(static_cast<int>(out[i]), want[i]) << i;
  permute_rope_rows(out, back, 2, 16, 1, /*to_gguf=*/false);
  EXPECT_EQ(back, in);
}

TEST_F(LladaGguf, CheckpointToGgufKeepsTheLogitsExactly) {
  for (const char* model : {"tiny_gqa", "tiny_mha"}) {
    const std::string g = write(model, FileType::kF32, std::string(model) + ".gguf");
    for (ComputeType ct : {ComputeType::kF32, ComputeType::kBF16}) {
      const Model hf = Model::load(fixture(model), ct);
      const Model gg = Model::load(g, ct);
      EXPECT_EQ(gg.config().to_json(), hf.config().to_json()) << model;
      EXPECT_EQ(logits(gg, kIds), logits(hf, kIds)) << model << " " << compute_type_name(ct);
    }
  }
}

TEST_F(LladaGguf, TheFileHasLlamaCppsKeysAndLayout) {
  const std::string g = write("tiny_mha", FileType::kBF16, "m.gguf");
  const ModelConfig c = ModelConfig::load(fixture("tiny_mha") + "/config.json");
  auto f = GgufFile::open(g);
  const GgufHeader& h = f->header();
  EXPECT_EQ(*h.find("general.architecture")->as_string(), "llada");
  EXPECT_EQ(*h.find("llada.block_count")->as_int(), c.n_layers);
  EXPECT_EQ(*h.find("llada.feed_forward_length")->as_int(), c.mlp_hidden_size);
  EXPECT_EQ(h.find("llada.rope.freq_base")->type, GgufType::F32);
  EXPECT_EQ(*h.find("llada.attention.causal")->as_int(), 0);
  EXPECT_EQ(*h.find("diffusion.shift_logits")->as_int(), 0);
  EXPECT_EQ(*h.find("tokenizer.ggml.mask_token_id")->as_int(), c.mask_token_id);
  EXPECT_EQ(*h.find("tokenizer.ggml.eos_token_id")->as_int(), c.eos_token_id);
  EXPECT_EQ(*h.find("general.file_type")->as_int(), 32);
  EXPECT_EQ(h.kv.back().first, "general.file_type");
  EXPECT_NE(f->find_tensor("output.weight"), nullptr);  // tiny_mha is untied
  EXPECT_EQ(h.tensors[0].name, "output.weight");         // globals first, then layer by layer
  EXPECT_EQ(h.tensors[3].name, "blk.0.attn_k.weight");
  EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->type, GgmlType::F32);  // norms stay f32
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type, GgmlType::BF16);
  EXPECT_EQ(f->find_tensor("token_embd.weight")->ne, (std::vector<int64_t>{64, 128}));

  // The q rows in the file are the checkpoint's, permuted within each head.
  const TensorStore hf = TensorStore::open_dir(fixture("tiny_mha"));
  std::vector<float> ckpt(64 * 64), file(64 * 64);
  hf.read_f32("model.transformer.blocks.1.q_proj.weight", ckpt);
  dequantize_rows(GgmlType::BF16, f->bytes(*f->find_tensor("blk.1.attn_q.weight")).data(), file.data(), 64, 64);
  const int64_t hd = c.head_dim();
  for (int64_t r = 0; r < 64; ++r) {
    const int64_t head = r / hd, j = r % hd, src = head * hd + (j % 2) * (hd / 2) + j / 2;
    for (int64_t k = 0; k < 64; ++k) {
      ASSERT_EQ(file[r * 64 + k], to_float(to_bf16(ckpt[src * 64 + k]))) << r << " " << k;
    }
  }
}

TEST_F(LladaGguf, TiedModelsHaveNoOutputTensor) {
  const std::string g = write("tiny_gqa", FileType::kF32, "m.gguf");
  auto f = GgufFile::open(g);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  EXPECT_TRUE(llada_config_from_gguf(*f).weight_tying);
  EXPECT_EQ(*f->find("llada.attention.head_count_kv")->as_int(), 2);
}

TEST_F(LladaGguf, QuantisedFilesExposeBlocksAndLoadAsBlocks) {
  const std::string g = write("tiny_gqa", FileType::kQ8_0, "q.gguf");
  auto f = GgufFile::open(g);
  const ModelConfig c = llada_config_from_gguf(*f);
  auto store = llada_tensor_store(f, c);
  const TensorStore::Blocks b = store->blocks("model.transformer.blocks.0.v_proj.weight");
  EXPECT_EQ(b.type, GgmlType::Q8_0);
  EXPECT_EQ(b.rows, 32);
  EXPECT_EQ(b.cols, 64);
  EXPECT_EQ(b.bytes.size(), 32u * 2 * 34);
  EXPECT_THAT(error_of([&] { store->blocks("model.transformer.ln_f.weight"); }), HasSubstr("not block-quantised"));
  EXPECT_EQ(Model::load(g, ComputeType::kF32).weights().layers[0].v_proj.quant, GgmlType::Q8_0);

  // Dequantised by `quantize --type f32`, it runs, and its logits stay near the original's.
  QuantizeOptions o;
  quantize_model(g, path("deq.gguf"), o);
  const Model deq = Model::load(path("deq.gguf"), ComputeType::kF32);
  const Model hf = Model::load(fixture("tiny_gqa"), ComputeType::kF32);
  const auto a = logits(deq, kIds), want = logits(hf, kIds);
  EXPECT_LT(test::max_abs_diff(a, want), 0.05f * test::max_abs(want));
  EXPECT_GT(test::max_abs_diff(a, want), 0.0f);

  // The dequantised q rows equal dequantize(blocks), un-permuted.
  auto fd = GgufFile::open(path("deq.gguf"));
  auto sd = llada_tensor_store(fd, llada_config_from_gguf(*fd));
  const TensorStore::Blocks q = store->blocks("model.transformer.blocks.2.q_proj.weight");
  std::vector<float> x(q.rows * q.cols), y(q.rows * q.cols);
  dequantize_rows(q.type, q.bytes.data(), x.data(), q.rows, q.cols);
  sd->read_f32("model.transformer.blocks.2.q_proj.weight", y);
  EXPECT_EQ(x, y);
}

TEST(QuantizePlan, Q4KMFollowsLlamaCppsLayerRule) {
  ModelConfig c;
  c.d_model = 4096;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.mlp_hidden_size = 14336;
  c.vocab_size = c.embedding_size = 1024;
  c.weight_tying = false;
  const auto plan = plan_quantization(c, FileType::kQ4_K_M, {}, [](const std::string&) { return GgmlType::BF16; }, true);
  // llama.cpp: the first and last 4 of 32 layers and every third from layer 6 get q6_K.
  auto more = [](int i) { return i < 4 || i >= 28 || (i - 4) % 3 == 2; };
  int checked = 0;
  for (const QuantizedTensor& t : plan) {
    int layer = -1;
    std::sscanf(t.name.c_str(), "blk.%d.", &layer);
    if (t.name.find("_norm") != std::string::npos) {
      EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    } else if (t.name == "output.weight") {
      EXPECT_EQ(t.type, GgmlType::Q6_K);
    } else if (t.name == "token_embd.weight") {
      EXPECT_EQ(t.type, GgmlType::Q4_K);  // untied: the embedding is not the head
    } else if (t.name.find("attn_v") != std::string::npos || t.name.find("ffn_down") != std::string::npos) {
      EXPECT_EQ(t.type, more(layer) ? GgmlType::Q6_K : GgmlType::Q4_K) << t.name;
      ++checked;
    } else {
      EXPECT_EQ(t.type, GgmlType::Q4_K) << t.name;
    }
  }
  EXPECT_EQ(checked, 64);
  EXPECT_EQ(plan.front().name, "output.weight");
  EXPECT_EQ(plan[3].name, "blk.0.attn_k.weight");
  EXPECT_EQ(plan.back().name, "blk.31.ffn_up.weight");
}

TEST(QuantizePlan, TiedHeadFallbacksAndOverrides) {
  ModelConfig c;
  c.d_model = 64;  // rows of 64: no whole q4_K / q6_K blocks
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.mlp_hidden_size = 80;
  c.vocab_size = c.embedding_size = 100;
  c.weight_tying = true;
  auto src = [](const std::string&) { return GgmlType::F32; };
  auto type_of = [](const std::vector<QuantizedTensor>& p, const std::string& n) {
    for (const auto& t : p) {
      if (t.name == n) return t.type;
    }
    ADD_FAILURE() << n;
    return GgmlType::F32;
  };
  const auto q4 = plan_quantization(c, FileType::kQ4_0, {}, src, true);
  EXPECT_EQ(type_of(q4, "token_embd.weight"), GgmlType::Q8_0);  // tied head: q6_K, row too short
  EXPECT_EQ(type_of(q4, "blk.0.attn_q.weight"), GgmlType::Q4_0);
  const auto k = plan_quantization(c, FileType::kQ4_K, {}, src, true);
  EXPECT_EQ(type_of(k, "blk.0.attn_q.weight"), GgmlType::Q5_0);   // q4_K -> q5_0
  EXPECT_EQ(type_of(k, "blk.1.ffn_down.weight"), GgmlType::F16);  // 80 values: not 32-blocks
  EXPECT_EQ(type_of(k, "blk.1.ffn_up.weight"), GgmlType::Q5_0);
  const auto o = plan_quantization(c, FileType::kF16, {parse_tensor_type_override("attn_V=q8_0"),
                                                       parse_tensor_type_override("blk\\.1\\..*=q6_K")},
                                   src, true);
  EXPECT_EQ(type_of(o, "blk.0.attn_v.weight"), GgmlType::Q8_0);
  EXPECT_EQ(type_of(o, "blk.1.attn_v.weight"), GgmlType::Q8_0);  // the first pattern wins
  EXPECT_EQ(type_of(o, "blk.1.attn_q.weight"), GgmlType::Q8_0);  // q6_K falls back to q8_0
  EXPECT_EQ(type_of(o, "blk.0.attn_q.weight"), GgmlType::F16);
  EXPECT_EQ(type_of(o, "blk.1.attn_norm.weight"), GgmlType::F32);  // norms are never overridden
  EXPECT_THAT(error_of([] { parse_tensor_type_override("attn_v"); }), HasSubstr("expected PATTERN=TYPE"));
  EXPECT_THAT(error_of([] { parse_tensor_type_override("attn_v=q3_K"); }), HasSubstr("not one illada writes"));
  EXPECT_THAT(error_of([] { parse_tensor_type_override("attn_v(=q8_0"); }), HasSubstr("not a valid regular expression"));
  EXPECT_EQ(parse_file_type("Q4_K_M"), FileType::kQ4_K_M);
  EXPECT_FALSE(parse_file_type("q5_k").has_value());
}

TEST_F(LladaGguf, QuantisingAGgufKeepsItsKeysInOrder) {
  const std::string g = write("tiny_mha", FileType::kF32, "f32.gguf");
  QuantizeOptions o;
  o.type = FileType::kQ8_0;
  quantize_model(g, path("q.gguf"), o);
  auto a = GgufFile::open(g), b = GgufFile::open(path("q.gguf"));
  ASSERT_EQ(a->header().kv.size(), b->header().kv.size());
  for (size_t i = 0; i + 2 < a->header().kv.size(); ++i) {
    EXPECT_EQ(a->header().kv[i], b->header().kv[i]) << a->header().kv[i].first;
  }
  EXPECT_EQ(*b->find("general.file_type")->as_int(), 7);
}

// ---- files that lie ----

TEST_F(LladaGguf, MetadataThatContradictsTheTensorsIsRefused) {
  const std::string g = write("tiny_gqa", FileType::kF32, "ok.gguf");
  auto expect = [&](const std::string& name, const Edit& edit, const std::string& msg) {
    const std::string p = rewrite(g, name, edit);
    EXPECT_THAT(error_of([&] { Model::load(p, ComputeType::kF32); }), HasSubstr(msg)) << name;
  };
  expect("arch.gguf", [](GgufWriter& w, const GgufFile&) { w.set("general.architecture", GgufValue::str("llama")); },
         "general.architecture is \"llama\"; illada runs LLaDA models");
  expect("noarch.gguf", [](GgufWriter& w, const GgufFile&) { w.remove("general.architecture"); },
         "missing key 'general.architecture'");
  expect("d.gguf",
         [](GgufWriter& w, const GgufFile&) {
           w.set("llada.embedding_length", GgufValue::u32(128));
           w.set("llada.rope.dimension_count", GgufValue::u32(32));
         },
         "tensor 'token_embd.weight' has shape [64, 128] but llada.embedding_length is 128");
  expect("ff.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.feed_forward_length", GgufValue::u32(128)); },
         "tensor 'blk.0.ffn_gate.weight' has shape [64, 160] but the hyper-parameters imply [64, 128]");
  expect("kv.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.attention.head_count_kv", GgufValue::u32(4)); },
         "tensor 'blk.0.attn_k.weight' has shape [64, 32] but the hyper-parameters imply [64, 64]");
  expect("kv3.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.attention.head_count_kv", GgufValue::u32(3)); },
         "n_heads (4) must be divisible by n_kv_heads (3)");
  expect("layers.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.block_count", GgufValue::u32(2)); },
         "unexpected tensor 'blk.2.attn_k.weight' for a model with 2 layers");
  expect("layers4.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.block_count", GgufValue::u32(4)); },
         "missing tensor 'blk.3.attn_norm.weight'");

  expect("vocab.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.vocab_size", GgufValue::u32(1000)); },
         "llada.vocab_size = 1000 but tensor 'token_embd.weight' has 128 rows");
  expect("rope.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.rope.dimension_count", GgufValue::u32(8)); },
         "llada.rope.dimension_count = 8 but embedding_length / head_count = 16");
  expect("causal.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.attention.causal", GgufValue::boolean(true)); },
         "llada.attention.causal is true");
  expect("shift.gguf", [](GgufWriter& w, const GgufFile&) { w.set("diffusion.shift_logits", GgufValue::boolean(true)); },
         "diffusion.shift_logits is true");
  expect("type.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.block_count", GgufValue::str("3")); },
         "key 'llada.block_count' must be an integer, got str \"3\"");
  expect("neg.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.block_count", GgufValue::i32(-3)); },
         "key 'llada.block_count' = -3 is outside");
  expect("eps.gguf", [](GgufWriter& w, const GgufFile&) { w.remove("llada.attention.layer_norm_rms_epsilon"); },
         "missing key 'llada.attention.layer_norm_rms_epsilon'");
  expect("mask.gguf", [](GgufWriter& w, const GgufFile&) { w.set("tokenizer.ggml.mask_token_id", GgufValue::u32(500)); },
         "key 'tokenizer.ggml.mask_token_id' = 500 is outside [0, 127]");
  expect("nomask.gguf", [](GgufWriter& w, const GgufFile&) { w.remove("tokenizer.ggml.mask_token_id"); },
         "no mask token");
  expect("scaling.gguf", [](GgufWriter& w, const GgufFile&) { w.set("llada.rope.scaling.type", GgufValue::str("yarn")); },
         "llada.rope.scaling.type = str \"yarn\" is not supported");
  expect("split.gguf", [](GgufWriter& w, const GgufFile&) { w.set("split.count", GgufValue::u32(3)); },
         "one of 3 split files (gguf-split)");
  expect("layers_differ.gguf",
         [](GgufWriter& w, const GgufFile&) { w.set("llada.attention.head_count_kv", GgufValue::i32_array({2, 2, 4})); },
         "differs between layers");
}

TEST_F(LladaGguf, TensorsThatDoNotFitTheLayoutAreRefused) {
  const std::string g = write("tiny_gqa", FileType::kF32, "ok.gguf");
  const std::string missing = rewrite(g, "missing.gguf", [](GgufWriter&, const GgufFile&) {},
                                      [](const GgufTensorInfo& t) { return t.name != "blk.1.ffn_up.weight"; });
  EXPECT_THAT(error_of([&] { Model::load(missing, ComputeType::kF32); }),
              HasSubstr("missing tensor 'blk.1.ffn_up.weight' (model.transformer.blocks.1.up_proj.weight)"));

  // A norm stored as q8_0, an unknown tensor name, a transposed matrix.
  auto f = GgufFile::open(g);
  GgufWriter w;
  for (const auto& [k, v] : f->header().kv) w.set(k, v);
  std::vector<std::byte> q8(34 * 2);
  for (const GgufTensorInfo& t : f->header().tensors) {
    if (t.name == "output_norm.weight") {
      w.add_tensor(t.name, t.ne, GgmlType::Q8_0, q8);
    } else {
      w.add_tensor(t.name, t.ne, t.type, f->bytes(t));
    }
  }
  w.write(path("qnorm.gguf"));
  EXPECT_THAT(error_of([&] { Model::load(path("qnorm.gguf"), ComputeType::kF32); }),
              HasSubstr("'output_norm.weight' is q8_0; norms must be f32"));

  const std::string extra = rewrite(g, "extra.gguf", [](GgufWriter&, const GgufFile&) {});
  {
    auto e = GgufFile::open(extra);
    GgufWriter w2;
    for (const auto& [k, v] : e->header().kv) w2.set(k, v);
    for (const GgufTensorInfo& t : e->header().tensors) w2.add_tensor(t.name, t.ne, t.type, e->bytes(t));
    std::vector<std::byte> four(16);
    w2.add_tensor("rope_freqs.weight", {4}, GgmlType::F32, four);
    w2.write(path("extra2.gguf"));
  }
  EXPECT_THAT(error_of([&] { Model::load(path("extra2.gguf"), ComputeType::kF32); }),
              HasSubstr("unexpected tensor 'rope_freqs.weight' (not part of the LLaDA layout)"));

  const std::string transposed = rewrite(g, "t.gguf", [](GgufWriter&, const GgufFile&) {}, {},
                                         [](const GgufTensorInfo& t) {
                                           if (t.name != "blk.0.ffn_up.weight") return t.ne;
                                           return std::vector<int64_t>{t.ne[1], t.ne[0]};
                                         });
  EXPECT_THAT(error_of([&] { Model::load(transposed, ComputeType::kF32); }),
              HasSubstr("tensor 'blk.0.ffn_up.weight' has shape [160, 64] but the hyper-parameters imply [64, 160]"));
}

TEST_F(LladaGguf, PathsThatAreNotModels) {
  EXPECT_THAT(error_of([&] { Model::load(path("nothing"), ComputeType::kF32); }), HasSubstr("no such model"));
  const std::string txt = path("notes.txt");
  std::ofstream(txt) << "hello\n";
  EXPECT_THAT(error_of([&] { Model::load(txt, ComputeType::kF32); }), HasSubstr("not a model directory and not a GGUF file"));
  const std::string g = write("tiny_gqa", FileType::kF32, "ok.gguf");
  fs::resize_file(g, fs::file_size(g) - 1000);
  EXPECT_THAT(error_of([&] { Model::load(g, ComputeType::kF32); }), HasSubstr("reaches past the end of the file"));
}

}  // namespace
}  // namespace illada
