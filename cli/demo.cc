// `illada demo`: the whole iLLaDA pipeline on built-in synthetic data (src/demo/demo.h).
#include <memory>

#include "cli/commands.h"
#include "demo/demo.h"

namespace illada::cli {

void register_demo(CLI::App& app) {
  auto o = std::make_shared<demo::DemoOptions>();
  auto no_progress = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "demo", "Train a tokenizer and a small iLLaDA model on built-in data, run SFT, evaluate, write a report");
  cmd->add_option("--seed", o->seed, "Seed of the data, the weights and the training (1)");
  cmd->add_option("--out", o->out, "Report directory (demo_out)");
  cmd->add_flag("--quick", o->quick, "About a minute: tiny model, few steps, few questions (a smoke test)");
  cmd->add_option("--steps", o->steps, "Pre-training steps (default: the preset's)");
  cmd->add_option("--sft-epochs", o->sft_epochs, "SFT epochs (default: the preset's)");
  cmd->add_flag("--no-progress", *no_progress, "No progress bars (stage headers stay)");
  cmd->callback([o, no_progress] {
    o->progress = !*no_progress;
    demo::run_demo(*o);
  });
}

}  // namespace illada::cli
