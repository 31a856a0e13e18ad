// `illada quantize`'s library side: llama.cpp's per-tensor type choice and the GGUF writer
// that converts one tensor at a time (a model never sits in memory twice).
#include "model/quantize.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>

#include "io/safetensors.h"
#include "kernels/quant.h"
#include "model/llada_gguf.h"
#include "model/tensor_check.h"
#include "tokenizer/gguf_vocab.h"
#include "util/check.h"

namespace illada {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION

constexpr FileTypeInfo kFileTypes[] = {
    {FileType::kF32, "f32", 0, GgmlType::F32, false},
    {FileType::kF16, "f16", 1, GgmlType::F16, false},
    {FileType::kBF16, "bf16", 32, GgmlType::BF16, false},
    {FileType::kQ8_0, "q8_0", 7, GgmlType::Q8_0, false},
    {FileType::kQ4_0, "q4_0", 2, GgmlType::Q4_0, false},
    // A q4_K file: every matrix q4_K (llama.cpp's --pure over Q4_K_S, whose label it keeps).
    {FileType::kQ4_K, "q4_k", 14, GgmlType::Q4_K, true},
    {FileType::kQ6_K, "q6_k", 18, GgmlType::Q6_K, false},
    {FileType::kQ4_K_M, "q4_k_m", 15, GgmlType::Q4_K, false},
};

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The block index in "blk.N....", -1 for global tensors (llama.cpp orders files by it).
int layer_of(const std::string& gguf_name) {
  int layer = -1;
  if (std::sscanf(gguf_name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

// llama.cpp's layers that get more bits in mixed files: the first and last eighth, and every
// third layer in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// A type whose blocks do not fit the row: llama.cpp's fallback.
GgmlType fit_row(GgmlType t, int64_t cols) {
  const auto fits = [cols](GgmlType x) { return cols % ggml_traits(x).block_size == 0; };
  if (fits(t)) return t;
  GgmlType r = t;
  if (t == GgmlType::Q4_K) r = GgmlType::Q5_0;
  if (t == GgmlType::Q6_K) r = GgmlType::Q8_0;
  return fits(r) ? r : GgmlType::F16;
}

GgmlType source_ggml_type(const TensorInfo& t) {
  if (t.block_type) return *t.block_type;
  switch (t.dtype) {
    case DType::F16: return GgmlType::F16;
    case DType::BF16: return GgmlType::BF16;
    default: return GgmlType::F32;
  }
}

}  // namespace

const FileTypeInfo& file_type_info(FileType t) {
  for (const FileTypeInfo& i : kFileTypes) {
    if (i.type == t) return i;
  }
  ILLADA_CHECK(false, "bad FileType");
}

std::optional<FileType> parse_file_type(const std::string& s) {
  const std::string l = lower(s);
  for (const FileTypeInfo& i : kFileTypes) {
    if (l == i.name) return i.type;
  }
  return std::nullopt;
}

std::string file_type_names() {
  std::string s;
  for (const FileTypeInfo& i : kFileTypes) s += (s.empty() ? "" : ", ") + std::string(i.name);
  return s;
}

TensorTypeOverride parse_tensor_type_override(const std::string& arg) {
  const size_t eq = arg.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
    fail("--tensor-type '", arg, "': expected PATTERN=TYPE, e.g. attn_v=q6_K or 'ffn_down'=q8_0");
  }
  TensorTypeOverride o;
  o.pattern = lower(arg.substr(0, eq));
  const std::string type = arg.substr(eq + 1);
  const auto t = ggml_type_from_name(type);
  if (!t || !quant_supported(*t)) {
    fail("--tensor-type '", arg, "': type '", type,
         "' is not one illada writes (f32, f16, bf16, q8_0, q4_0, q5_0, q4_K, q6_K)");
  }
  o.type = *t;
  try {
    std::regex re(o.pattern);
  } catch (const std::regex_error& e) {
    fail("--tensor-type '", arg, "': '", o.pattern, "' is not a valid regular expression: ", e.what());
  }
  return o;
}

std::vector<QuantizedTensor> plan_quantization(
    const ModelConfig& c, FileType type, const std::vector<TensorTypeOverride>& overrides,
    const std::function<GgmlType(const std::string&)>& source_type, bool checkpoint_source) {
  const FileTypeInfo& ft = file_type_info(type);
  std::vector<std::pair<std::regex, GgmlType>> patterns;
  for (const auto& o : overrides) patterns.emplace_back(std::regex(o.pattern), o.type);

  std::vector<QuantizedTensor> out;
  for (const TensorSpec& spec : tensor_specs(c)) {
    QuantizedTensor t;
    t.source_name = spec.name;
    t.name = llada_gguf_name(spec.name);
    t.ne.assign(spec.shape.rbegin(), spec.shape.rend());
    const GgmlType src = source_type(spec.name);
    t.source_type = std::string(ggml_type_name(src));
    t.type = src;
    out.push_back(std::move(t));
  }
  // llama.cpp's file order: global tensors first, then each layer; names sorted within.
  std::stable_sort(out.begin(), out.end(), [](const QuantizedTensor& a, const QuantizedTensor& b) {
    const int la = layer_of(a.name), lb = layer_of(b.name);
    return la != lb ? la < lb : a.name < b.name;
  });

  const bool tied = std::none_of(out.begin(), out.end(), [](const QuantizedTensor& t) { return t.name == "output.weight"; });
  const int n_attn_v = static_cast<int>(std::count_if(out.begin(), out.end(), [](const QuantizedTensor& t) {
    return t.name.find("attn_v.weight") != std::string::npos;
  }));
  const int n_layers = static_cast<int>(c.n_layers);
  int i_attn_v = 0, i_ffn_down = 0;
  const bool quantized_base = ggml_traits(ft.base).quantized;
  for (QuantizedTensor& t : out) {
    // Norms (1-d) and anything not named *weight stay as they are.
    if (t.ne.size() < 2 || !ends_with(t.name, "weight") || t.name.find("_norm.weight") != std::string::npos) {
      if (checkpoint_source) t.type = GgmlType::F32;
      continue;
    }
    const int64_t cols = t.ne[0];
    GgmlType nt = ft.base;
    bool manual = false;
    const std::string lname = lower(t.name);
    for (const auto& [re, ty] : patterns) {
      if (std::regex_search(lname, re)) {
        nt = ty;
        manual = true;
        break;
      }
    }
    if (!manual && !ft.pure && quantized_base) {
      const bool head = t.name == "output.weight" || (tied && t.name == "token_embd.weight");
      if (head) {
        if (cols % ggml_traits(nt).block_size != 0) {
          nt = GgmlType::Q8_0;
        } else if (nt != GgmlType::Q8_0) {
          nt = GgmlType::Q6_K;
        }
      } else if (t.name.find("attn_v.weight") != std::string::npos) {
        if (type == FileType::kQ4_K_M && use_more_bits(i_attn_v, n_attn_v)) nt = GgmlType::Q6_K;
        ++i_attn_v;
      } else if (t.name.find("ffn_down") != std::string::npos) {
        if (type == FileType::kQ4_K_M && use_more_bits(i_ffn_down, n_layers)) nt = GgmlType::Q6_K;
        ++i_ffn_down;
      }
    }
    if (quantized_base || manual) nt = fit_row(nt, cols);
    t.type = nt;
  }
  return out;
}

void check_quantize_arguments(const std::string& source_path, const std::string& out_path,
                              const std::string& out_label, const std::string& name,
                              const std::string& name_label) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::equivalent(source_path, out_path, ec)) {
    fail(out_label, " ", out_path, " is the input model; choose another file");
  }
  if (!name.empty() && fs::exists(source_path, ec) && !fs::is_directory(source_path, ec)) {
    fail(name_label, ": a GGUF input keeps its general.name (its keys are copied as they are)");
  }
}

QuantizeOptions quantize_options(const std::string& source_path, const std::string& out_path,
                                 const std::string& out_label, FileType type,
                                 std::vector<TensorTypeOverride> overrides, const std::string& name,
                                 const std::string& name_label, std::vector<std::string>& warnings) {
  check_quantize_arguments(source_path, out_path, out_label, name, name_label);
  namespace fs = std::filesystem;
  std::error_code ec;
  QuantizeOptions opts;
  opts.type = type;
  opts.overrides = std::move(overrides);
  if (fs::is_directory(source_path, ec)) {
    const ModelConfig c = ModelConfig::load(source_path + "/config.json");
    tokenizer::GgufVocab vocab = tokenizer::gguf_vocab_from_dir(source_path, {.n_rows = c.embedding_size});
    warnings.insert(warnings.end(), vocab.warnings.begin(), vocab.warnings.end());
    opts.extra_kv = std::move(vocab.kv);
    const fs::path dir = fs::absolute(source_path).lexically_normal();
    opts.name = !name.empty() ? name : dir.filename().string();
    if (opts.name.empty()) opts.name = dir.parent_path().filename().string();  // "dir/"
  }
  return opts;
}

QuantizeResult quantize_model(const std::string& source_path, const std::string& out_path,
                              const QuantizeOptions& options) {
  const ModelSource src = open_model_source(source_path);
  const ModelConfig& c = src.config;
  const TensorStore& store = *src.store;
  QuantizeResult result;
  result.n_params = c.n_params();
  std::error_code ec;
  const bool checkpoint = std::filesystem::is_directory(source_path, ec);
  result.tensors = plan_quantization(
      c, options.type, options.overrides,
      [&](const std::string& name) {
        const TensorInfo* info = store.find(name);
        ILLADA_CHECK(info, "open_model_source returned no ", name);
        return source_ggml_type(*info);
      },
      checkpoint);

  GgufWriter w;
  if (!checkpoint) {
    // A GGUF source: its keys, in its order, as llama.cpp's quantiser copies them.
    const auto f = GgufFile::open(source_path);
    for (const auto& [k, v] : f->header().kv) w.set(k, v);
    for (const char* k : {"split.no", "split.count", "split.tensors.count"}) w.remove(k);
  } else {
    w.set("general.architecture", GgufValue::str("llada"));
    if (!options.name.empty()) w.set("general.name", GgufValue::str(options.name));
    set_llada_hparams(w, c);
    for (const auto& [k, v] : options.extra_kv) w.set(k, v);
  }
  w.set("general.quantization_version", GgufValue::u32(kQuantizationVersion));
  w.set("general.file_type", GgufValue::u32(file_type_info(options.type).llama_ftype));

  const size_t n = result.tensors.size();
  std::unique_ptr<float[]> scratch;  // the values of the tensor being written (fills run one at a time)
  size_t scratch_size = 0;
  for (size_t i = 0; i < n; ++i) {
    const QuantizedTensor& t = result.tensors[i];
    const TensorSpec spec = [&] {
      for (const TensorSpec& s : tensor_specs(c)) {
        if (s.name == t.source_name) return s;
      }
      ILLADA_CHECK(false, "no spec for ", t.source_name);
    }();
    w.add_tensor(t.name, t.ne, t.type, [&, i, spec](std::span<std::byte> out) {
      const QuantizedTensor& q = result.tensors[i];
      if (options.progress) options.progress(i, n, q);
      const TensorInfo& info = *store.find(q.source_name);
      const int64_t rows = spec.shape[0];
      const int64_t cols = spec.shape.size() > 1 ? spec.shape[1] : spec.shape[0];
      const int64_t rows_eff = spec.shape.size() > 1 ? rows : 1;
      const uint64_t row_bytes = ggml_row_bytes(q.type, cols);
      std::vector<std::byte> plain;  // checkpoint row order; permuted into `out` for q/k
      const bool permuted = llada_rope_permuted(q.source_name);
      std::span<std::byte> dst = out;
      if (permuted) {
        plain.resize(out.size());
        dst = plain;
      }
      const GgmlType src_type = source_ggml_type(info);
      if (src_type == q.type && info.block_type) {
        const auto bytes = store.bytes(q.source_name);
        std::memcpy(dst.data(), bytes.data(), bytes.size());  // already in the target blocks
        store.release(q.source_name);
      } else {
        const auto need = static_cast<size_t>(rows_eff * cols);
        if (scratch_size < need) {  // one buffer for every tensor: no zeroing, no new pages
          scratch.reset(new float[need]);
          scratch_size = need;
        }
        const std::span<float> x(scratch.get(), need);
        if (info.block_type) {
          const TensorStore::Blocks b = store.blocks(q.source_name);
          if (!quant_supported(b.type)) {
            fail(source_path, ": tensor '", q.name, "' is ", ggml_type_name(b.type),
                 ", which illada cannot convert (it reads f32, f16, bf16, q8_0, q4_0, q5_0, q4_K "
                 "and q6_K)");
          }
          dequantize_rows(b.type, b.bytes.data(), x.data(), b.rows, b.cols);
        } else {
          store.read_f32(q.source_name, x);
        }
        if (const int64_t k = first_non_finite(x); k >= 0) {
          fail(source_path, ": tensor '", q.source_name, "' holds a non-finite value (", x[k],
               ") at row ", k / cols, ", column ", k % cols);
        }
        store.release(q.source_name);  // read once: do not keep the checkpoint resident
        quantize_rows(q.type, x.data(), dst.data(), rows_eff, cols);
        if (!quant_scales_finite(q.type, dst.data(), rows_eff, cols)) {
          fail(source_path, ": tensor '", q.source_name, "' has values too large for ",
               ggml_type_name(q.type), " (a block scale overflows half precision); keep it in f32 "
               "with --tensor-type '", q.name, "=f32'");
        }
      }
      if (permuted) {
        const int64_t heads = spec.tensor == LayerTensor::kQProj ? c.n_heads : c.n_kv_heads;
        permute_rope_rows(plain, out, heads, rows, row_bytes, /*to_gguf=*/true);
      }
    });
  }
  w.write(out_path);
  result.bytes = std::filesystem::file_size(out_path, ec);
  return result;
}

}  // namespace illada
