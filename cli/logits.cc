// `illada logits`: one forward pass over given ids, logits written as little-endian float32.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/parse_util.h"
#include "model/transformer.h"
#include "util/check.h"

namespace illada::cli {

void register_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "Run one forward pass and write the logits [L, vocab]");
  struct Opts {
    std::string model, ids, out, dtype = "f32";
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--model", o->model, "Model directory (config.json + safetensors) or GGUF file")
      ->required();
  cmd->add_option("--ids", o->ids, "Comma-separated token ids, e.g. 1,2,3")->required();
  cmd->add_option("--dtype", o->dtype, "Compute precision: f32 or bf16")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--out", o->out, "Output file: little-endian float32 [L, vocab]")->required();
  cmd->callback([o] {
    const auto ids = parse_id_list(o->ids, "--ids");
    // One forward pass: repacking the weights would cost more than it saves.
    const Model model = Model::load(o->model, parse_compute_type(o->dtype), /*pack=*/false);
    ForwardState st;
    const int64_t vocab = model.config().embedding_size;
    std::vector<float> logits(ids.size() * vocab);
    model.forward({.ids = ids}, st, logits);
    const std::string tmp = o->out + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary);
      if (!f) fail("--out: cannot write ", o->out);
      f.write(reinterpret_cast<const char*>(logits.data()),
              static_cast<std::streamsize>(logits.size() * sizeof(float)));
      if (!f) fail("--out: write to ", o->out, " failed");
    }
    if (std::rename(tmp.c_str(), o->out.c_str()) != 0) fail("--out: cannot rename into ", o->out);
    std::printf("%s\n", nlohmann::json({{"shape", {ids.size(), vocab}}}).dump().c_str());
  });
}

}  // namespace illada::cli
