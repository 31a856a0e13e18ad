// Model directories: config.json and safetensors, converting to the requested dtype.
#include "model/checkpoint.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/check.h"
#include "util/file.h"

namespace illada {
void save_model(const std::string& dir, const ModelConfig& c, const ModelWeights& w,
                const SaveOptions& opts) {
  if (opts.dtype != DType::F32 && opts.dtype != DType::BF16) {
    fail("save_model: dtype must be F32 or BF16");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the model directory: ", ec.message());
  std::vector<std::vector<std::byte>> converted;  // owned copies where the dtype changes
  std::vector<TensorToWrite> tensors;
  converted.reserve(tensor_specs(c).size());
  for_each_tensor(w, c, [&](const TensorSpec& spec, const void* data) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    const bool is_f32 = spec.role == TensorRole::kNorm || w.dtype == ComputeType::kF32;
    const DType src = is_f32 ? DType::F32 : DType::BF16;
    std::span<const std::byte> bytes;
    if (src == opts.dtype) {
      bytes = {static_cast<const std::byte*>(data), static_cast<size_t>(n) * dtype_size(src)};
    } else {
      auto& buf = converted.emplace_back(static_cast<size_t>(n) * dtype_size(opts.dtype));
      if (opts.dtype == DType::BF16) {
        to_bf16(reinterpret_cast<bf16*>(buf.data()), static_cast<const float*>(data), n);
      } else {
        to_float(reinterpret_cast<float*>(buf.data()), static_cast<const bf16*>(data), n);
      }
      bytes = buf;
    }
    tensors.push_back({spec.name, opts.dtype, spec.shape, bytes});
  });
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.data.size();
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  if (total <= opts.max_shard_bytes) {
    write_safetensors(single, tensors, {{"format", "pt"}});
    std::filesystem::remove(index, ec);
  } else {
    write_safetensors_sharded(dir, tensors, opts.max_shard_bytes, {{"format", "pt"}});
    std::filesystem::remove(single, ec);
  }
  write_file_atomic(dir + "/config.json", c.to_json().dump(2) + "\n");
}

}  // namespace illada
