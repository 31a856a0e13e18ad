// `illada logits`: one forward pass over given ids, logits written as little-endian float32.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/parse_util.h"
#include "model/transformer.h"
#include "util/check.h"
#include "util/file.h"

namespace illada::cli {

void register_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "Run one forward pass and write the logits [L, vocab]");
  struct Opts {
    ModelFlags model{.dtype = "f32"};
    std::string ids, out;
  };
  auto o = std::make_shared<Opts>();
  add_model_flags(cmd, o->model, /*with_tokenizer=*/false);
  // --ids: the old spelling; generate and score call the same thing --prompt-ids.
  required_text(cmd, "--prompt-ids,--ids", o->ids, "Comma-separated token ids, e.g. 1,2,3");
  required_text(cmd, "--out", o->out, "Output file: little-endian float32 [L, vocab] ('-': standard output)");
  cmd->callback([o] {
    const auto ids = parse_id_list(o->ids, "--prompt-ids");
    // One forward pass: repacking the weights would cost more than it saves.
    const Model model = Model::load(o->model.model, parse_compute_type(o->model.dtype), /*pack=*/false,
                                    o->model.check_tensors);
    ForwardState st;
    const int64_t vocab = model.config().embedding_size;
    std::vector<float> logits(ids.size() * vocab);
    model.forward({.ids = ids}, st, logits);
    OutputFile out(o->out, "--out");
    out.write(std::as_bytes(std::span<const float>(logits)));
    out.commit();
    // The shape line goes to stdout, unless the logits themselves do.
    std::fprintf(o->out == "-" ? stderr : stdout, "%s\n",
                 nlohmann::json({{"shape", {ids.size(), vocab}}}).dump().c_str());
  });
}

}  // namespace illada::cli
