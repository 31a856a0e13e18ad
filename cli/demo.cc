// `illada demo`: the whole iLLaDA pipeline on built-in synthetic data (src/demo/demo.h).
#include <memory>

#include "cli/commands.h"
#include "demo/demo.h"

namespace illada::cli {

void register_demo(CLI::App& app) {
  auto o = std::make_shared<demo::DemoOptions>();
  auto no_progress = std::make_shared<bool>(false);
  auto masking = std::make_shared<std::string>("whole");
  CLI::App* cmd = app.add_subcommand(
      "demo", "Train a tokenizer and a small iLLaDA model on built-in data, run SFT, evaluate, write a report");
  cmd->add_option("--seed", o->seed, "Seed of the data, the weights and the training (1)");
  cmd->add_option("--out", o->out, "Report directory (demo_out)");
  cmd->add_flag("--quick", o->quick, "About a minute: tiny model, few steps, few questions (a smoke test)");
  cmd->add_option("--steps", o->steps, "Pre-training steps (default: the preset's)");
  cmd->add_option("--sft-epochs", o->sft_epochs, "SFT epochs (default: the preset's)");
  cmd->add_option("--pretrained", o->pretrained,
                  "Skip pre-training: start SFT from this model dir (OUT/pretrained of a demo run with the same seed)");
  cmd->add_option("--sft-masking", *masking, "SFT masking: whole (iLLaDA: prompt masked too) or prompt-clean (LLaDA)")
      ->check(CLI::IsMember({"whole", "prompt-clean"}));
  cmd->add_option("--split-prob", o->split_prob, "Pre-training: probability of the random split of a window (0.3)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--no-progress", *no_progress, "No progress bars (stage headers stay)");
  cmd->callback([o, no_progress, masking] {
    o->progress = !*no_progress;
    o->prompt_clean = *masking == "prompt-clean";
    demo::run_demo(*o);
  });
}

}  // namespace illada::cli
