// Writing a model as a Hugging Face style directory (config.json + safetensors with LLaDA
// tensor names) that illada and the official LLaDA PyTorch code both load.
#pragma once

#include <cstdint>
#include <string>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

namespace illada {

struct SaveOptions {
  DType dtype = DType::BF16;                 // F32 or BF16 for every tensor
  uint64_t max_shard_bytes = 5ull << 30;     // larger models are sharded with an index
};

// Writes dir/config.json and the weights; every file is written atomically (temp + rename).
void save_model(const std::string& dir, const ModelConfig& c, const ModelWeights& w,
                const SaveOptions& opts);

}  // namespace illada
