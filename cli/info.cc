// `illada info`: a model's config, parameter count and memory estimate.
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/tensor_check.h"
#include "model/weights.h"
#include "util/check.h"

namespace illada::cli {
namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) b /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show a model's configuration, size and memory needs");
  struct Opts {
    std::string model, format = "text";
    bool check_tensors = false;
  };
  auto o = std::make_shared<Opts>();
  required_text(cmd, "--model", o->model, "Model directory (config.json + safetensors) or GGUF file");
  choice(cmd, "--format", o->format, {"text", "json"}, "Output format (json keys: config, n_params, ...)");
  flag(cmd, "--check-tensors", o->check_tensors, "Scan every weight for NaN/Inf (reads the whole checkpoint)");
  add_threads_flag(cmd);
  cmd->callback([o] {
    const ModelSource src = open_model_source(o->model);
    const ModelConfig& c = src.config;
    const TensorStore& store = *src.store;
    if (o->check_tensors) check_tensors_finite(store, o->model);
    int64_t file_params = 0;
    std::map<std::string, int> tensor_types;  // element type -> tensor count
    for (const auto& name : store.names()) {
      const TensorInfo* t = store.find(name);
      file_params += t->numel();
      ++tensor_types[t->block_type ? std::string(ggml_type_name(*t->block_type))
                                   : lower(std::string(dtype_name(t->dtype)))];
    }
    const int64_t n = c.n_params();
    // Activation memory for one 512-token forward with full logits, fp32.
    const int64_t t = 512;
    const int64_t act = t * (4 * c.d_model + 4 * c.n_heads * c.head_dim() +
                             2 * c.mlp_hidden_size + c.embedding_size) * 4;
    nlohmann::json j = {{"config", c.to_json()},
                        {"n_params", n},
                        {"checkpoint_params", file_params},
                        {"weights_bytes_bf16", n * 2},
                        {"weights_bytes_f32", n * 4},
                        {"activation_bytes_512_tokens", act},
                        {"tensor_types", tensor_types}};
    if (o->format == "json") {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("model        %s\n", o->model.c_str());
    std::printf("layers       %lld, d_model %lld, heads %lld (kv %lld, head_dim %lld), mlp %lld\n",
                (long long)c.n_layers, (long long)c.d_model, (long long)c.n_heads,
                (long long)c.n_kv_heads, (long long)c.head_dim(), (long long)c.mlp_hidden_size);
    std::printf("vocab        %lld (embedding %lld), %s head\n", (long long)c.vocab_size,
                (long long)c.embedding_size, c.weight_tying ? "tied" : "untied");
    std::printf("tokens       mask %d, eos %d, pad %d, bos %d\n", c.mask_token_id, c.eos_token_id,
                c.pad_token_id, c.bos_token_id);
    std::printf("rope_theta   %g, rms_norm_eps %g, max_sequence_length %lld\n", c.rope_theta,
                c.rms_norm_eps, (long long)c.max_sequence_length);
    std::printf("parameters   %lld (%.3g billion)\n", (long long)n, n / 1e9);
    std::string types;
    for (const auto& [name, count] : tensor_types) types += str_cat(types.empty() ? "" : ", ", count, " ", name);
    std::printf("tensors      %s\n", types.c_str());
    std::printf("memory       weights %s in bf16, %s in f32; +%s activations for a 512-token "
                "forward\n",
                human_bytes(n * 2.0).c_str(), human_bytes(n * 4.0).c_str(),
                human_bytes(static_cast<double>(act)).c_str());
  });
}

}  // namespace illada::cli
