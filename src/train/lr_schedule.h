// Learning-rate schedules of the iLLaDA recipe (SPEC §2). Steps count from 0; lr(step) is the
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
