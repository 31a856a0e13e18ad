// A whole training run: data, model, the step loop, held-out evaluation, metrics, progress,
// checkpoints and resume. Run directory OUT:
//   OUT/metrics.jsonl             one line per step {"step","loss","lr","grad_norm","tokens",
//                                 "tokens_per_s","elapsed_s"} and per evaluation
//                                 {"step","eval_loss"} (step = steps completed)
//   OUT/run_config.json           the options of the run
//   OUT/plot.svg                  loss, held-out loss and LR vs step (rewritten at every
//                                 checkpoint and at the end)
//   OUT/checkpoints/step-NNNNNNNN Hugging Face style model dir (fp32 master weights, tokenizer
//                                 files) + training_state.json + optimizer.safetensors
//   OUT/final                     the trained model (save_dtype), with the tokenizer files
// A checkpoint directory is built under a temporary name, fsynced and renamed into place, so
// it is complete or absent. Resuming from it gives bit-identical following losses.
#pragma once

#include <cstdint>
#include <string>

#include "train/run_config.h"
#include "train/trainer.h"

namespace illada::train {

inline constexpr const char* kTrainStateFile = "training_state.json";
inline constexpr const char* kTrainStateFormat = "illada-train-state";
inline constexpr int kTrainStateVersion = 1;

struct RunResult {
  int64_t steps = 0;            // steps completed
  double first_eval_loss = -1;  // held-out loss at the first evaluation (-1: none)
  double last_eval_loss = -1;
  std::string final_dir;
};

// Runs (or resumes) the training described by `cfg`. Throws Error on bad input, a
// checkpoint that does not match the run, or a non-finite loss (naming the step; the
// checkpoints already written stay as they were).
RunResult run_training(RunConfig cfg);

// The newest complete checkpoint of a run directory ("" if none).
std::string latest_checkpoint(const std::string& out_dir);

}  // namespace illada::train
