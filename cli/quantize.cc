// `illada quantize`: a model directory or GGUF file written as a LLaDA GGUF file of a chosen
// element type, readable by llama.cpp (see docs/gguf.md).
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/quantize.h"
#include "util/check.h"

namespace illada::cli {
namespace {

std::string shape_text(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = ne.size(); i-- > 0;) s += str_cat(ne[i], i ? ", " : "");
  return s + "]";
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize", "Write a model as a GGUF file (f32, f16, bf16 or ggml's quantised formats)");
  struct Opts {
    std::string model, type, out, name, format = "text";
    std::vector<std::string> tensor_types;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--model", o->model, "Model directory (config.json + safetensors) or GGUF file")
      ->required();
  cmd->add_option("--type", o->type,
                  "Element type: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, or q4_k_m (q4_K with "
                  "q6_K where llama.cpp puts it)")
      ->required();
  cmd->add_option("--out", o->out, "Output .gguf file (written atomically)")->required();
  cmd->add_option("--tensor-type", o->tensor_types,
                  "PATTERN=TYPE: tensors whose GGUF name matches the regular expression get TYPE "
                  "(f32, f16, bf16, q8_0, q4_0, q5_0, q4_K, q6_K); repeatable, first match wins")
      ->take_all();
  cmd->add_option("--name", o->name, "general.name (default: the model directory's name)");
  cmd->add_option("--format", o->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--quiet", o->quiet, "No per-tensor progress on stderr");
  cmd->callback([o] {
    const auto type = parse_file_type(o->type);
    if (!type) fail("--type '", o->type, "': expected one of ", file_type_names());
    std::vector<TensorTypeOverride> overrides;
    for (const std::string& t : o->tensor_types) overrides.push_back(parse_tensor_type_override(t));
    std::vector<std::string> warnings;
    QuantizeOptions opts =
        quantize_options(o->model, o->out, "--out", *type, std::move(overrides), o->name, "--name", warnings);
    for (const std::string& w : warnings) std::fprintf(stderr, "illada quantize: warning: %s\n", w.c_str());
    if (!o->quiet) {
      opts.progress = [](size_t i, size_t n, const QuantizedTensor& t) {
        std::fprintf(stderr, "[%3zu/%3zu] %-28s %-14s %5s -> %s\n", i + 1, n, t.name.c_str(),
                     shape_text(t.ne).c_str(), t.source_type.c_str(),
                     std::string(ggml_type_name(t.type)).c_str());
      };
    }
    const auto t0 = std::chrono::steady_clock::now();
    const QuantizeResult r = quantize_model(o->model, o->out, opts);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::map<std::string, int> counts;
    for (const QuantizedTensor& t : r.tensors) ++counts[std::string(ggml_type_name(t.type))];
    const double bpw = r.n_params ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.n_params) : 0.0;
    if (o->format == "json") {
      nlohmann::json tensors = nlohmann::json::array();
      for (const QuantizedTensor& t : r.tensors) {
        tensors.push_back({{"name", t.name}, {"type", ggml_type_name(t.type)}, {"ne", t.ne}});
      }
      const nlohmann::json j = {{"out", o->out}, {"type", file_type_info(*type).name},
                                {"bytes", r.bytes}, {"n_params", r.n_params},
                                {"bits_per_weight", bpw}, {"seconds", seconds}, {"tensor_types", counts},
                                {"tensors", tensors}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::string mix;
    for (const auto& [name, n] : counts) mix += str_cat(mix.empty() ? "" : ", ", n, " ", name);
    std::printf("wrote %s: %s, %.2f MB, %.2f bits per weight (%s) in %.1f s\n", o->out.c_str(),
                file_type_info(*type).name, static_cast<double>(r.bytes) / 1e6, bpw, mix.c_str(), seconds);
  });
}

}  // namespace illada::cli
