// Learning-rate schedules of the iLLaDA recipe (docs/numerics.md §2). Steps count from 0; lr(step) is the
// rate used by the update of that step.
#pragma once

#include <cstdint>

namespace illada::train {

// Pre-training: linear warm-up peak * (step + 1) / warmup_steps, constant until decay_start,
// cosine from peak to min_lr over decay_steps, min_lr afterwards. decay_start < 0: no decay
// yet (constant until someone sets it, e.g. when the loss has plateaued).
struct PretrainSchedule {
  double peak_lr = 2e-4;
  double min_lr = 5e-6;
  int64_t warmup_steps = 2000;
  int64_t decay_start = -1;
  int64_t decay_steps = 1;
  double lr(int64_t step) const;
};

// The plateau rule that starts the pre-training decay when no start step is given. After
// warm-up, the training losses are cut into consecutive blocks of `window` steps (the first
// block is steps first_step .. first_step + window - 1). When a block completes and its mean
// loss B has improved on the previous block's mean A by less than `threshold` relative to A,
// i.e. A - B < threshold * A, the loss has plateaued: the decay starts at the next step.
// Only block means are compared (never single steps), so the noise of the masked-diffusion
// loss (a fresh t per sequence) has to persist for a whole block to trigger it. Deterministic:
// a function of the losses alone; the state below is saved in checkpoints.
struct PlateauRule {
  int64_t window = 0;       // W steps per block (0: the rule is off)
  double threshold = 0.01;  // relative improvement below which the loss has plateaued
  int64_t first_step = 0;   // steps before this (the warm-up) are not counted
  // State.
  double prev_mean = 0.0;   // mean of the last complete block (valid when has_prev)
  bool has_prev = false;
  double block_sum = 0.0;   // losses of the current block so far, summed in step order
  int64_t block_n = 0;

  // Feeds the loss of `step` (called once per step, in order); returns true when this step
  // completes a block that has plateaued (the decay then starts at step + 1).
  bool observe(int64_t step, double loss);
};

// SFT: linear warm-up to peak, constant, then linear decay over the last decay_fraction of
// total_steps (round(decay_fraction * total_steps) steps, at least 1) reaching final_lr at the
// last step.
struct SftSchedule {
  double peak_lr = 5e-6;
  double final_lr = 5e-7;
  int64_t warmup_steps = 50;
  int64_t total_steps = 1;
  double decay_fraction = 0.1;
  double lr(int64_t step) const;
};

}  // namespace illada::train
