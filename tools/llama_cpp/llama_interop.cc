// A small command-line harness over the real llama.cpp (the prebuilt libllama / libggml of npm
// @node-llama-cpp/linux-x64@3.22.1, llama.cpp commit de3ff815) that the interop tests compare
// illada against. Not part of illada; built by CMake only when scripts/fetch_test_assets.sh has
// installed the libraries and headers.
//
//   llama_interop quantize IN.gguf OUT.gguf FTYPE [--pure]
//       llama_model_quantize (FTYPE: f32 f16 bf16 q8_0 q4_0 q4_k_s q4_k_m q6_k)
//   llama_interop logits MODEL.gguf IDS OUT.f32
//       one non-causal forward pass over the comma-separated ids, as llama.cpp's diffusion
//       example runs LLaDA (whole sequence in one micro-batch, every position's logits);
//       writes little-endian float32 [n_ids, n_vocab] and prints "n_ids n_vocab"
//   llama_interop tokenize MODEL.gguf TEXT
//       llama_tokenize without special-token parsing or BOS; prints comma-separated ids
//   llama_interop golden OUT.gguf
//       seeded rows quantised by ggml_quantize_chunk into every format illada reproduces, and
//       ggml's expansion of each back to f32 ("<type>.dequantized"), written with ggml's own
//       GGUF writer (the fixture tests/fixtures/quant/ggml_golden.gguf)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "tools/llama_cpp/harness.h"

namespace {

using llama_harness::init_backends;
using llama_harness::parse_ids;

llama_model* load_model(const char* path) { return llama_harness::load_model(path, "llama_interop"); }

int usage() {
  std::fprintf(stderr,
               "usage: llama_interop quantize IN OUT FTYPE [--pure] | logits MODEL IDS OUT | "
               "tokenize MODEL TEXT | golden OUT\n");
  return 2;
}

bool parse_ftype(const std::string& s, llama_ftype* out) {
  struct Name {
    const char* name;
    llama_ftype type;
  };
  static const Name kNames[] = {
      {"f32", LLAMA_FTYPE_ALL_F32},         {"f16", LLAMA_FTYPE_MOSTLY_F16},
      {"bf16", LLAMA_FTYPE_MOSTLY_BF16},    {"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
      {"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},    {"q4_k_s", LLAMA_FTYPE_MOSTLY_Q4_K_S},
      {"q4_k_m", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"q6_k", LLAMA_FTYPE_MOSTLY_Q6_K},
  };
  for (const Name& n : kNames) {
    if (s == n.name) {
      *out = n.type;
      return true;
    }
  }
  return false;
}

int cmd_quantize(int argc, char** argv) {
  if (argc < 5) return usage();
  llama_model_quantize_params p = llama_model_quantize_default_params();
  if (!parse_ftype(argv[4], &p.ftype)) {
    std::fprintf(stderr, "llama_interop: unknown FTYPE '%s'\n", argv[4]);
    return 2;
  }
  p.pure = argc > 5 && std::string(argv[5]) == "--pure";
  p.nthread = 2;
  init_backends();
  const uint32_t rc = llama_model_quantize(argv[2], argv[3], &p);
  if (rc != 0) std::fprintf(stderr, "llama_interop: llama_model_quantize failed (%u)\n", rc);
  return rc == 0 ? 0 : 1;
}

int cmd_logits(int argc, char** argv) {
  if (argc < 5) return usage();
  const std::vector<llama_token> ids = parse_ids(argv[3]);
  if (ids.empty()) return usage();
  init_backends();
  llama_model* model = load_model(argv[2]);
  if (!model) return 1;
  const auto n = static_cast<uint32_t>(ids.size());
  // The whole sequence in one micro-batch (a context of at least 64 tokens).
  llama_context* ctx = llama_harness::one_batch_context(model, n < 64 ? 64 : n, 2, "llama_interop", argv[2]);
  if (!ctx) {
    llama_model_free(model);
    return 1;
  }
  llama_set_causal_attn(ctx, false);
  llama_batch batch = llama_batch_init(static_cast<int32_t>(n), 0, 1);
  batch.n_tokens = static_cast<int32_t>(n);
  for (uint32_t i = 0; i < n; ++i) {
    batch.token[i] = ids[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  int rc = llama_decode(ctx, batch);
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  if (rc == 0) {
    const float* logits = llama_get_logits(ctx);
    FILE* out = std::fopen(argv[4], "wb");
    if (!out || std::fwrite(logits, sizeof(float), static_cast<size_t>(n) * n_vocab, out) !=
                    static_cast<size_t>(n) * n_vocab) {
      std::fprintf(stderr, "llama_interop: cannot write %s\n", argv[4]);
      rc = 1;
    }
    if (out) std::fclose(out);
    std::printf("%u %d\n", n, n_vocab);
  } else {
    std::fprintf(stderr, "llama_interop: llama_decode failed (%d)\n", rc);
  }
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return rc == 0 ? 0 : 1;
}

int cmd_tokenize(int argc, char** argv) {
  if (argc < 4) return usage();
  init_backends();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[2], mp);
  if (!model) return 1;
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const std::string text = argv[3];
  std::vector<llama_token> ids(text.size() + 8);
  int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                             static_cast<int32_t>(ids.size()), /*add_special=*/false,
                             /*parse_special=*/false);
  if (n < 0) {
    ids.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                       static_cast<int32_t>(ids.size()), false, false);
  }
  for (int32_t i = 0; i < n; ++i) std::printf(i ? ",%d" : "%d", ids[i]);
  std::printf("\n");
  llama_model_free(model);
  return n < 0 ? 1 : 0;
}

// splitmix64: a fixed, platform-independent source for the golden rows.
uint64_t next_u64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
double next_normal(uint64_t& s) {
  const double u1 = (static_cast<double>(next_u64(s) >> 11) + 1.0) / 9007199254740993.0;
  const double u2 = static_cast<double>(next_u64(s) >> 11) / 9007199254740992.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

int cmd_golden(int argc, char** argv) {
  if (argc < 3) return usage();
  const int64_t rows = 16, cols = 512;
  std::vector<float> x(rows * cols);
  uint64_t seed = 20240607;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * cols;
    const float scale = std::pow(10.0f, static_cast<float>(r % 8) - 4);  // 1e-4 .. 1e3
    for (int64_t i = 0; i < cols; ++i) row[i] = static_cast<float>(next_normal(seed)) * scale;
    if (r == 1) for (int64_t i = 0; i < cols; ++i) row[i] = 0.0f;
    if (r == 2) for (int64_t i = 0; i < cols; ++i) row[i] = -0.25f;
    if (r == 3) for (int64_t i = 0; i < cols; ++i) row[i] = i % 37 == 0 ? 50.0f : 0.0f;
    if (r == 4) for (int64_t i = 0; i < cols; ++i) row[i] = std::round(row[i] * 1000.0f);
    if (r == 5) for (int64_t i = 0; i < cols; ++i) row[i] = (i % 2 ? 1.0f : -1.0f) * 1e-20f;
    if (r == 6) for (int64_t i = 0; i < cols; ++i) row[i] = i < 256 ? 0.0f : row[i];
    if (r == 7) for (int64_t i = 0; i < cols; ++i) row[i] = static_cast<float>(i % 16) - 7.5f;
  }
  const ggml_type types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q4_K,
                             GGML_TYPE_Q6_K, GGML_TYPE_F16, GGML_TYPE_BF16};
  ggml_init_params ip = {64 * 1024 * 1024, nullptr, false};
  ggml_context* ctx = ggml_init(ip);
  gguf_context* g = gguf_init_empty();
  gguf_set_val_str(g, "general.description",
                   "illada test fixture: ggml_quantize_chunk output of llama.cpp de3ff815");
  ggml_tensor* in = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, cols, rows);
  ggml_set_name(in, "input");
  std::memcpy(in->data, x.data(), x.size() * sizeof(float));
  gguf_add_tensor(g, in);
  for (ggml_type t : types) {
    ggml_tensor* q = ggml_new_tensor_2d(ctx, t, cols, rows);
    ggml_set_name(q, ggml_type_name(t));
    ggml_quantize_chunk(t, x.data(), q->data, 0, rows, cols, nullptr);
    gguf_add_tensor(g, q);
    // ...and ggml's expansion of those bytes back to f32.
    ggml_tensor* y = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, cols, rows);
    ggml_set_name(y, (std::string(ggml_type_name(t)) + ".dequantized").c_str());
    ggml_get_type_traits(t)->to_float(q->data, static_cast<float*>(y->data), rows * cols);
    gguf_add_tensor(g, y);
  }
  const bool ok = gguf_write_to_file(g, argv[2], false);
  gguf_free(g);
  ggml_free(ctx);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  if (cmd == "quantize") return cmd_quantize(argc, argv);
  if (cmd == "logits") return cmd_logits(argc, argv);
  if (cmd == "tokenize") return cmd_tokenize(argc, argv);
  if (cmd == "golden") return cmd_golden(argc, argv);
  return usage();
}
