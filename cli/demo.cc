// `illada demo`: the whole iLLaDA pipeline on built-in synthetic data (src/demo/demo.h).
#include <memory>

#include "cli/commands.h"
#include "cli/flags.h"
#include "demo/demo.h"

namespace illada::cli {

void register_demo(CLI::App& app) {
  auto o = std::make_shared<demo::DemoOptions>();
  auto quiet = std::make_shared<bool>(false);
  auto masking = std::make_shared<std::string>("whole");
  auto steps = std::make_shared<std::optional<int64_t>>();
  auto epochs = std::make_shared<std::optional<double>>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Train a tokenizer and a small iLLaDA model on built-in data, run SFT, evaluate, write a report");
  num(cmd, "--seed", o->seed, Range<uint64_t>{}, "Seed of the data, the weights and the training");
  text(cmd, "--out", o->out, "Report directory");
  flag(cmd, "--quick", o->quick, "A few seconds: tiny model, few questions (checks the pipeline, answers nothing right)");
  num(cmd, "--steps", *steps, Range<int64_t>{1, int64_t{1} << 30}, "Pre-training steps", "the preset's (6000; --quick 1500)");
  num(cmd, "--sft-epochs", *epochs, Range<double>{0, 1e6, true}, "SFT epochs", "the preset's (20; --quick 12)");
  text(cmd, "--pretrained", o->pretrained,
       "Skip pre-training: start SFT from this model dir (OUT/pretrained of a demo run with the same seed)");
  choice(cmd, "--sft-masking", *masking, {"whole", "prompt-clean"},
         "SFT masking: whole (iLLaDA: prompt masked too) or prompt-clean (LLaDA)");
  num(cmd, "--split-prob", o->split_prob, Range<double>{0, 1}, "Pre-training: probability of the random split of a window");
  add_quiet_flag(cmd, *quiet);
  add_threads_flag(cmd);
  cmd->callback([o, quiet, masking, steps, epochs] {
    o->progress = !*quiet;
    o->prompt_clean = *masking == "prompt-clean";
    if (*steps) o->steps = **steps;
    if (*epochs) o->sft_epochs = **epochs;
    demo::run_demo(*o);
  });
}

}  // namespace illada::cli
