// Loading and creating model weights; the tensor list lives in tensor_specs() only.
#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/gemm.h"
#include "kernels/qgemm.h"
#include "model/init.h"
#include "model/llada_gguf.h"
#include "util/check.h"
#include "util/memory.h"
#include "util/rng.h"

namespace illada {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}


template <class T>
std::shared_ptr<T[]> alloc(int64_t n) {
  try {
    return std::shared_ptr<T[]>(new T[static_cast<size_t>(n)]);
  } catch (const std::bad_alloc&) {
    fail("out of memory: cannot allocate ", format_bytes(static_cast<double>(n) * sizeof(T)),
         " for a weight tensor (the model is too large for this machine)");
  }
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Places a tensor's data into `w`: fills the view named by the spec.
void assign(ModelWeights& w, const TensorSpec& spec, const void* data) {
  const auto* f = static_cast<const float*>(data);
  switch (spec.role) {
    case TensorRole::kEmbedding:
      w.wte = Matrix{spec.shape[0], spec.shape[1], data};
      break;
    case TensorRole::kHead:
      w.head = Matrix{spec.shape[0], spec.shape[1], data};
      break;
    case TensorRole::kNorm:
      if (spec.layer < 0) {
        w.ln_f = f;
      } else if (spec.tensor == LayerTensor::kAttnNorm) {
        w.layers[spec.layer].attn_norm = f;
      } else {
        w.layers[spec.layer].ff_norm = f;
      }
      break;
    case TensorRole::kMatrix:
      w.layers[spec.layer].matrix(spec.tensor) = Matrix{spec.shape[0], spec.shape[1], data};
      break;
  }
}

// The matrix a (non-norm) spec names.
Matrix& matrix_of(ModelWeights& w, const TensorSpec& spec) {
  ILLADA_CHECK(spec.role != TensorRole::kNorm, spec.name, " is no matrix");
  if (spec.role == TensorRole::kEmbedding) return w.wte;
  if (spec.role == TensorRole::kHead) return w.head;
  return w.layers[spec.layer].matrix(spec.tensor);
}

}  // namespace

ComputeType parse_compute_type(const std::string& s) {
  if (s == "f32" || s == "fp32" || s == "float32") return ComputeType::kF32;
  if (s == "bf16" || s == "bfloat16") return ComputeType::kBF16;
  fail("unknown dtype '", s, "' (expected f32 or bf16)");
}

const char* compute_type_name(ComputeType t) { return t == ComputeType::kF32 ? "f32" : "bf16"; }

const char* layer_tensor_name(LayerTensor t) {
  switch (t) {
    case LayerTensor::kAttnNorm: return "attn_norm";
    case LayerTensor::kFfNorm: return "ff_norm";
    case LayerTensor::kQProj: return "q_proj";
    case LayerTensor::kKProj: return "k_proj";
    case LayerTensor::kVProj: return "v_proj";
    case LayerTensor::kAttnOut: return "attn_out";
    case LayerTensor::kFfProj: return "ff_proj";
    case LayerTensor::kUpProj: return "up_proj";
    case LayerTensor::kFfOut: return "ff_out";
  }
  return "?";
}

const float* LayerWeights::norm(LayerTensor t) const {
  ILLADA_CHECK(t == LayerTensor::kAttnNorm || t == LayerTensor::kFfNorm, layer_tensor_name(t), " is no norm");
  return t == LayerTensor::kAttnNorm ? attn_norm : ff_norm;
}

Matrix& LayerWeights::matrix(LayerTensor t) {
  switch (t) {
    case LayerTensor::kQProj: return q_proj;
    case LayerTensor::kKProj: return k_proj;
    case LayerTensor::kVProj: return v_proj;
    case LayerTensor::kAttnOut: return attn_out;
    case LayerTensor::kFfProj: return ff_proj;
    case LayerTensor::kUpProj: return up_proj;
    case LayerTensor::kFfOut: return ff_out;
    default: break;
  }
  ILLADA_CHECK(false, layer_tensor_name(t), " is no matrix");
  return q_proj;
}

const Matrix& LayerWeights::matrix(LayerTensor t) const { return const_cast<LayerWeights*>(this)->matrix(t); }

std::vector<TensorSpec> tensor_specs(const ModelConfig& c) {
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size;
  std::vector<TensorSpec> specs;
  specs.push_back({"model.transformer.wte.weight", {c.embedding_size, d}, TensorRole::kEmbedding});
  auto shape = [&](LayerTensor t) -> std::vector<int64_t> {
    switch (t) {
      case LayerTensor::kAttnNorm:
      case LayerTensor::kFfNorm: return {d};
      case LayerTensor::kQProj: return {qd, d};
      case LayerTensor::kKProj:
      case LayerTensor::kVProj: return {kvd, d};
      case LayerTensor::kAttnOut: return {d, qd};
      case LayerTensor::kFfProj:
      case LayerTensor::kUpProj: return {mlp, d};
      case LayerTensor::kFfOut: return {d, mlp};
    }
    return {};
  };
  for (int i = 0; i < c.n_layers; ++i) {
    for (LayerTensor t : kLayerTensors) {
      const bool norm = t == LayerTensor::kAttnNorm || t == LayerTensor::kFfNorm;
      specs.push_back({"model.transformer.blocks." + std::to_string(i) + "." + layer_tensor_name(t) + ".weight",
                       shape(t), norm ? TensorRole::kNorm : TensorRole::kMatrix, i, t});
    }
  }
  specs.push_back({"model.transformer.ln_f.weight", {d}, TensorRole::kNorm});
  if (!c.weight_tying) {
    specs.push_back({"model.transformer.ff_out.weight", {c.embedding_size, d}, TensorRole::kHead});
  }
  return specs;
}

ModelSource open_model_source(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return {ModelConfig::load(path + "/config.json"),
            std::make_shared<const TensorStore>(TensorStore::open_dir(path))};
  }
  if (!std::filesystem::exists(path, ec)) {
    fail(path, ": no such model (expected a model directory with config.json and safetensors, "
         "or a .gguf file)");
  }
  if (!is_gguf_file(path)) {
    fail(path, ": not a model directory and not a GGUF file (its first bytes are not \"GGUF\")");
  }
  auto file = GgufFile::open(path);
  ModelConfig config = llada_config_from_gguf(*file);
  auto store = llada_tensor_store(file, config);
  return {std::move(config), std::move(store)};
}

ModelWeights load_weights(std::shared_ptr<const TensorStore> store, const ModelConfig& c,
                          ComputeType dtype, const std::string& source, bool keep_blocks) {
  ModelWeights w;
  w.dtype = dtype;
  w.layers.resize(static_cast<size_t>(c.n_layers));
  w.storage.push_back(store);
  const auto specs = tensor_specs(c);
  std::set<std::string> expected;
  for (const auto& spec : specs) {
    expected.insert(spec.name);
    const TensorInfo* info = store->find(spec.name);
    if (!info) {
      fail(source, ": missing tensor '", spec.name, "' (expected shape ", shape_str(spec.shape),
           c.weight_tying ? "" : "; config says weight_tying=false", ")");
    }
    if (info->shape != spec.shape) {
      fail(source, ": tensor '", spec.name, "' has shape ", shape_str(info->shape),
           " but the config implies ", shape_str(spec.shape));
    }
    if (info->block_type) {
      const GgmlType bt = *info->block_type;
      if (!keep_blocks) {
        fail(source, ": tensor '", spec.name, "' is quantised (", ggml_type_name(bt),
             "); training needs float weights. Convert the file first: illada quantize --model ", source,
             " --type f32 --out OUT.gguf (or --type bf16)");
      }
      if (!qgemm_supports(bt) || spec.role == TensorRole::kNorm) {
        fail(source, ": tensor '", spec.name, "' is quantised as ", ggml_type_name(bt),
             "; illada runs q8_0, q4_0, q5_0, q4_K and q6_K matrices. Convert the file first: illada "
             "quantize --model ", source, " --type q8_0 --out OUT.gguf (or q4_k_m, bf16, ...)");
      }
      // The blocks as they lie in the mapped file (q_proj / k_proj: the un-permuted copy).
      assign(w, spec, store->blocks(spec.name).bytes.data());
      Matrix& m = matrix_of(w, spec);
      m.quant = bt;
      m.mapped = !llada_rope_permuted(spec.name);
      continue;
    }
    if (info->dtype != DType::F32 && info->dtype != DType::BF16 && info->dtype != DType::F16) {
      fail(source, ": tensor '", spec.name, "' has dtype ", dtype_name(info->dtype),
           " (expected F32, BF16 or F16)");
    }
    const int64_t n = numel(spec.shape);
    if (spec.role == TensorRole::kNorm || dtype == ComputeType::kF32) {
      auto buf = alloc<float>(n);
      store->read_f32(spec.name, {buf.get(), static_cast<size_t>(n)});
      assign(w, spec, buf.get());
      w.storage.push_back(buf);
      w.owned_bytes += n * 4;
    } else if (info->dtype == DType::BF16) {
      assign(w, spec, store->bytes(spec.name).data());  // zero-copy from the mapped file
      if (spec.role == TensorRole::kEmbedding) w.wte.mapped = true;
      if (spec.role == TensorRole::kHead) w.head.mapped = true;
      if (spec.role == TensorRole::kMatrix) w.layers[spec.layer].matrix(spec.tensor).mapped = true;
    } else {
      auto buf = alloc<bf16>(n);
      store->read_bf16(spec.name, {buf.get(), static_cast<size_t>(n)});
      assign(w, spec, buf.get());
      w.storage.push_back(buf);
      w.owned_bytes += n * 2;
    }
  }
  for (const auto& name : store->names()) {
    if (!expected.count(name)) {
      fail(source, ": unexpected tensor '", name, "' (not part of a LLaDA model with this config",
           c.weight_tying && name == "model.transformer.ff_out.weight"
               ? "; config says weight_tying=true, so there is no separate head"
               : "",
           ")");
    }
  }
  if (c.weight_tying) w.head = w.wte;
  return w;
}

ModelWeights init_weights(const ModelConfig& c, ComputeType dtype, uint64_t seed) {
  ModelWeights w;
  w.dtype = dtype;
  w.layers.resize(static_cast<size_t>(c.n_layers));
  const auto specs = tensor_specs(c);
  for (size_t t = 0; t < specs.size(); ++t) {
    const auto& spec = specs[t];
    const int64_t n = numel(spec.shape);
    auto vals = alloc<float>(n);
    const InitRule rule = init_rule(c, spec);
    if (rule.ones) {
      std::fill(vals.get(), vals.get() + n, 1.0f);
    } else {
      // One stream per tensor row, rows in parallel: deterministic whatever the thread count.
      const int64_t cols = n / spec.shape[0];
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < spec.shape[0]; ++r) {
        draw_init(vals.get() + r * cols, cols, rule, seed, (static_cast<uint64_t>(t) << 32) | static_cast<uint64_t>(r));
      }
    }
    if (spec.role == TensorRole::kNorm || dtype == ComputeType::kF32) {
      assign(w, spec, vals.get());
      w.storage.push_back(vals);
      w.owned_bytes += n * 4;
    } else {
      auto buf = alloc<bf16>(n);
      to_bf16(buf.get(), vals.get(), n);
      assign(w, spec, buf.get());
      w.storage.push_back(buf);
      w.owned_bytes += n * 2;
    }
  }
  if (c.weight_tying) w.head = w.wte;
  return w;
}

void pack_matrices(ModelWeights& w, WeightsLayout layout) {
  if (w.dtype != ComputeType::kBF16) return;
  auto bytes_of = [](const Matrix& m) -> uint64_t {
    return m.quantised() ? ggml_row_bytes(m.quant, m.cols) * static_cast<uint64_t>(m.rows)
                         : static_cast<uint64_t>(m.rows * m.cols * 2);
  };
  auto release = [&](const Matrix& m) {  // give mapped file pages back; reads fault them in again
    if (m.mapped) release_mapped_pages(m.data, bytes_of(m));
  };
  auto keep = [&](std::shared_ptr<const PackedWeights> p) {
    w.storage.push_back(p);
    w.owned_bytes += static_cast<int64_t>(p->bytes());
    return p.get();
  };
  auto pack = [&](Matrix& m) {
    if (m.packed || !m.data || m.quantised()) return;  // blocks: multiplied as they are
    // The plain rows stay readable (released pages fault back in) for the batch-invariant
    // products of a kWhole matrix.
    m.packed = keep(std::make_shared<const PackedWeights>(m.b16(), m.rows, m.cols,
                                                          std::vector<PlainRows>{{m.b16(), m.rows}}, layout));
    release(m);
  };
  // Several matrices with the same input as one packed matrix (their rows stacked), so that the
  // block runs one product for them.
  auto fuse = [&](Matrix& fused, std::initializer_list<const Matrix*> parts) {
    const Matrix& first = **parts.begin();
    int64_t rows = 0;
    const int64_t cols = first.cols;
    for (const Matrix* m : parts) rows += m->rows;
    if (first.quantised()) {
      // Blocks of one type: their rows one after another (ggml's row layout), so the
      // activations are quantised once and one integer product runs for all. Mixed types
      // (q4_k_m's q6_K v_proj beside q4_K q/k) stay separate products.
      for (const Matrix* m : parts) {
        if (m->quant != first.quant) return;
      }
      auto buf = std::shared_ptr<std::byte[]>(new std::byte[ggml_row_bytes(first.quant, cols) * static_cast<uint64_t>(rows)]);
      std::byte* at = buf.get();
      for (const Matrix* m : parts) {
        std::memcpy(at, m->data, bytes_of(*m));
        at += bytes_of(*m);
        release(*m);
      }
      fused = Matrix{rows, cols, buf.get()};
      fused.quant = first.quant;
      w.owned_bytes += at - buf.get();
      w.storage.push_back(std::move(buf));
      return;
    }
    for (const Matrix* m : parts) {
      if (m->quantised()) return;  // separate products on the blocks
    }
    std::vector<bf16> stacked(static_cast<size_t>(rows * cols));
    std::vector<PlainRows> plain;
    int64_t r = 0;
    for (const Matrix* m : parts) {
      std::copy(m->b16(), m->b16() + m->rows * cols, stacked.begin() + r * cols);
      plain.push_back({m->b16(), m->rows});
      r += m->rows;
      release(*m);
    }
    fused = Matrix{rows, cols, nullptr};
    fused.packed = keep(std::make_shared<const PackedWeights>(stacked.data(), rows, cols, std::move(plain), layout));
  };
  for (LayerWeights& l : w.layers) {
    fuse(l.qkv, {&l.q_proj, &l.k_proj, &l.v_proj});
    fuse(l.gate_up, {&l.ff_proj, &l.up_proj});
    if (l.qkv.rows == 0) {  // not fused (some are quantised): pack the bf16 ones alone
      for (Matrix* m : {&l.q_proj, &l.k_proj, &l.v_proj}) pack(*m);
    }
    if (l.gate_up.rows == 0) {
      for (Matrix* m : {&l.ff_proj, &l.up_proj}) pack(*m);
    }
    pack(l.attn_out);
    pack(l.ff_out);
  }
  pack(w.head);
  if (w.wte.data == w.head.data) w.wte.packed = nullptr;  // lookups read the plain rows
}

void for_each_tensor(const ModelWeights& w, const ModelConfig& c,
                     const std::function<void(const TensorSpec&, const void* data)>& fn) {
  for (const auto& spec : tensor_specs(c)) {
    const void* data = nullptr;
    switch (spec.role) {
      case TensorRole::kEmbedding: data = w.wte.data; break;
      case TensorRole::kHead: data = w.head.data; break;
      case TensorRole::kNorm:
        data = spec.layer < 0 ? w.ln_f : w.layers[spec.layer].norm(spec.tensor);
        break;
      case TensorRole::kMatrix: data = w.layers[spec.layer].matrix(spec.tensor).data; break;
    }
    if (spec.role != TensorRole::kNorm && matrix_of(const_cast<ModelWeights&>(w), spec).quantised()) {
      fail("tensor '", spec.name, "' is quantised (",
           ggml_type_name(matrix_of(const_cast<ModelWeights&>(w), spec).quant),
           "): it has no float data to save or compare; load the model from float weights");
    }
    fn(spec, data);
  }
}

}  // namespace illada
