// The parameters of a LLaDA/iLLaDA Transformer: one list of tensor specs (names and shapes
// as in the Hugging Face checkpoints) that loading, saving and later training all walk, and
// the weights themselves in the compute precision (fp32, or bf16 shared with a mmapped
// checkpoint when it is already bf16).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/ggml_types.h"
#include "kernels/gemm.h"
#include "model/config.h"
#include "util/bf16.h"

namespace illada {

class TensorStore;

enum class ComputeType { kF32, kBF16 };
ComputeType parse_compute_type(const std::string& s);  // "f32" | "bf16"; throws Error
const char* compute_type_name(ComputeType t);

// Where a tensor lives in the model: a matrix of a block, a norm, or a global tensor.
enum class TensorRole { kEmbedding, kNorm, kMatrix, kHead };

// The tensors of one block, named as in the checkpoints (".{name}.weight"), in checkpoint order.
enum class LayerTensor { kAttnNorm, kFfNorm, kQProj, kKProj, kVProj, kAttnOut, kFfProj, kUpProj, kFfOut };
inline constexpr LayerTensor kLayerTensors[] = {
    LayerTensor::kAttnNorm, LayerTensor::kFfNorm, LayerTensor::kQProj,
    LayerTensor::kKProj,    LayerTensor::kVProj,  LayerTensor::kAttnOut,
    LayerTensor::kFfProj,   LayerTensor::kUpProj, LayerTensor::kFfOut};
const char* layer_tensor_name(LayerTensor t);  // "attn_norm", "q_proj", ...

struct TensorSpec {
  std::string name;            // e.g. "model.transformer.blocks.3.q_proj.weight"
  std::vector<int64_t> shape;  // [out, in] for matrices, [d] for norms
  TensorRole role;
  int layer = -1;  // block index, -1 for global tensors
  LayerTensor tensor = LayerTensor::kAttnNorm;  // which one of the block (layer >= 0)
};

// Every tensor of a model with this config, in checkpoint order; the one walk that loading,
// saving, gradient zeroing and the optimiser share.
std::vector<TensorSpec> tensor_specs(const ModelConfig& c);

// A read-only row-major matrix in the compute precision, or in ggml blocks.
struct Matrix {
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;  // const float* (kF32) or const bf16* (kBF16); ggml rows if quantised
  bool mapped = false;         // data lies in a memory-mapped checkpoint file
  const PackedWeights* packed = nullptr;  // bf16 copy in oneDNN's blocked layout, if packed
  // A GGUF file's block-quantised matrix (q8_0, q4_0, q5_0, q4_K, q6_K: kernels/qgemm.h) kept
  // as its blocks, ggml_row_bytes(quant, cols) per row, whatever the compute precision: the
  // block multiplies it with int8 activations, the embedding dequantises the rows it looks up.
  // F32 for a matrix in the compute precision.
  GgmlType quant = GgmlType::F32;
  bool quantised() const { return quant != GgmlType::F32; }
  const float* f32() const { return static_cast<const float*>(data); }
  const bf16* b16() const { return static_cast<const bf16*>(data); }
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [d]
  const float* ff_norm = nullptr;    // [d]
  Matrix q_proj;                     // [n_heads*hd, d]
  Matrix k_proj;                     // [n_kv_heads*hd, d]
  Matrix v_proj;                     // [n_kv_heads*hd, d]
  Matrix attn_out;                   // [d, n_heads*hd]
  Matrix ff_proj;                    // [mlp, d] (gate, through silu)
  Matrix up_proj;                    // [mlp, d]
  Matrix ff_out;                     // [d, mlp]
  // bf16 only, optional: q/k/v as one matrix [(n_heads + 2*n_kv_heads)*hd, d] and gate/up as one
  // [2*mlp, d] (packed together at load, blocks of one type stacked, or adjacent rows of a
  // trainer's buffer), so that the
  // block runs one product for each; rows = 0 when absent (three / two products then).
  Matrix qkv, gate_up;

  const float* norm(LayerTensor t) const;         // kAttnNorm, kFfNorm
  Matrix& matrix(LayerTensor t);                  // the seven matrices
  const Matrix& matrix(LayerTensor t) const;
};

struct ModelWeights {
  ComputeType dtype = ComputeType::kF32;
  Matrix wte;                        // [embedding_size, d]
  std::vector<LayerWeights> layers;  // [n_layers]
  const float* ln_f = nullptr;       // [d]
  Matrix head;                       // [embedding_size, d]: ff_out, or wte when tied
  // Owners of the memory the views above point into (buffers, mmapped checkpoint files).
  std::vector<std::shared_ptr<const void>> storage;
  int64_t owned_bytes = 0;  // bytes allocated (not counting zero-copy mmapped tensors)
};

// Where a model's config and tensors come from: a Hugging Face style directory (config.json +
// safetensors) or a LLaDA GGUF file (model/llada_gguf.h), told apart by the path.
struct ModelSource {
  ModelConfig config;
  std::shared_ptr<const TensorStore> store;  // tensors under their checkpoint names
};
// Throws Error naming the path when it is neither, or what it holds is malformed.
ModelSource open_model_source(const std::string& path);

// Loads every tensor named by tensor_specs(); throws Error naming the tensor on a missing
// tensor, an extra one, a wrong shape or a non-float dtype. Block-quantised GGUF matrices:
// with keep_blocks (inference), the matrices and the embedding of a type qgemm multiplies
// stay blocks of the mapped file (Matrix::quant; q_proj/k_proj: the un-permuted copy of the
// blocks), other quantised types are refused naming the tensor; without keep_blocks (training,
// which needs float weights) every quantised tensor is refused.
ModelWeights load_weights(std::shared_ptr<const TensorStore> store, const ModelConfig& c, ComputeType dtype,
                          const std::string& source, bool keep_blocks = false);

// Fresh weights drawn by the official model code's rules for the config's init_fn, init_std and
// init_cutoff_factor (model/init.h), for training from scratch and benchmarks. Deterministic
// in `seed`, whatever the thread count.
ModelWeights init_weights(const ModelConfig& c, ComputeType dtype, uint64_t seed);

// Repacks every bf16 matrix of the blocks and the head into oneDNN's blocked layout (the
// forward then reads the packed copy; 1.3-1.6x faster products), q/k/v stacked into one packed
// LayerWeights::qkv and gate/up into one gate_up (one product each). Block-quantised q/k/v
// (gate/up) of one type are stacked the same way, as their blocks (ggml rows one after
// another), so their activations are quantised once; mixed types stay separate. Mapped source
// pages are released to the page cache afterwards, so an mmapped checkpoint is not held twice
// in memory; the plain views stay valid (they fault back in if read). No-op for fp32.
// `layout`: kChunks for a model that runs batch-invariant products (generate and serve by
// default; the plain pages are then never read again), kWhole otherwise (kernels/gemm.h).
void pack_matrices(ModelWeights& w, WeightsLayout layout = WeightsLayout::kWhole);

// Visits every tensor in tensor_specs() order with its data in the weights' precision
// (norms are always fp32): the walk used for saving and comparing models. Throws Error on
// quantised weights (Matrix::quant), which have no data in that precision.
void for_each_tensor(const ModelWeights& w, const ModelConfig& c,
                     const std::function<void(const TensorSpec&, const void* data)>& fn);

}  // namespace illada
