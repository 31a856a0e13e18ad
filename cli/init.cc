// `illada init`: a model with random weights from a config.json, written as a Hugging Face
// style directory (for benchmarks, memory checks and training from scratch).
#include <cstdio>

#include "cli/commands.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/check.h"

namespace illada::cli {

void register_init(CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Create a model directory with random weights");
  struct Opts {
    std::string config, out, dtype = "bf16";
    uint64_t seed = 0;
    double shard_gb = 5.0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--config", o->config, "A LLaDA-style config.json")->required();
  cmd->add_option("--out", o->out, "Output model directory")->required();
  cmd->add_option("--dtype", o->dtype, "Stored precision")->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--seed", o->seed, "Random seed");
  cmd->add_option("--shard-gb", o->shard_gb, "Largest safetensors shard, in GB");
  cmd->callback([o] {
    const ModelConfig c = ModelConfig::load(o->config);
    const ComputeType ct = parse_compute_type(o->dtype);
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
