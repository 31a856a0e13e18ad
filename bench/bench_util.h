// Shared by the benchmark programs: the model shapes of docs/benchmarks.md, read from
// bench/configs/<name>.json so that the C++ benchmarks, the shell scripts and the PyTorch
// comparisons all use one definition.
#pragma once

#include <string>

#include "model/config.h"

namespace illada {

inline ModelConfig bench_config(const std::string& name) {
  return ModelConfig::load(std::string(ILLADA_SOURCE_DIR) + "/bench/configs/" + name + ".json");
}

}  // namespace illada
