// `illada init`: a model with random weights from a config.json, written as a Hugging Face
// style directory (for benchmarks, memory checks and training from scratch).
#include <cstdio>

#include <filesystem>

#include "cli/commands.h"
#include "cli/flags.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/check.h"
#include "util/memory.h"

namespace illada::cli {

void register_init(CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Create a model directory with random weights");
  struct Opts {
    std::string config, out, dtype = "bf16";
    uint64_t seed = 0;
    double shard_gb = 5.0;
  };
  auto o = std::make_shared<Opts>();
  required_text(cmd, "--config", o->config, "A LLaDA-style config.json");
  required_text(cmd, "--out", o->out, "Output model directory");
  choice(cmd, "--dtype", o->dtype, {"f32", "bf16"}, "Stored precision");
  num(cmd, "--seed", o->seed, Range<uint64_t>{}, "Random seed");
  num(cmd, "--shard-gb", o->shard_gb, Range<double>{1e-6, 1e6}, "Largest safetensors shard, in GB");
  add_threads_flag(cmd);
  cmd->callback([o] {
    const ModelConfig c = ModelConfig::load(o->config);
    const ComputeType ct = parse_compute_type(o->dtype);
    if (std::filesystem::exists(o->out) && !std::filesystem::is_directory(o->out)) {
      fail("--out ", o->out, ": exists and is not a directory");
    }
    // The weights live in memory until written (f32 per tensor while they are drawn).
    require_memory(static_cast<double>(c.n_params()) * (ct == ComputeType::kF32 ? 4 : 2), o->config + ": the model");
    std::fprintf(stderr, "illada init: %lld parameters, %s\n", (long long)c.n_params(),
                 o->dtype.c_str());
    const ModelWeights w = init_weights(c, ct, o->seed);
    save_model(o->out, c, w,
               {.dtype = ct == ComputeType::kF32 ? DType::F32 : DType::BF16,
                .max_shard_bytes = static_cast<uint64_t>(o->shard_gb * 1e9)});
    std::printf("{\"model\": \"%s\", \"n_params\": %lld}\n", o->out.c_str(), (long long)c.n_params());
  });
}

}  // namespace illada::cli
