// The learning-rate schedules (see lr_schedule.h).
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace illada::train {

namespace {
double warmup(double peak, int64_t step, int64_t warmup_steps) {
  return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
}
}  // namespace

double PretrainSchedule::lr(int64_t step) const {
  if (step < warmup_steps) return warmup(peak_lr, step, warmup_steps);
  if (decay_start < 0 || step < decay_start) return peak_lr;
  const int64_t k = step - decay_start;
  if (k >= decay_steps) return min_lr;
  return min_lr + 0.5 * (peak_lr - min_lr) *
                      (1.0 + std::cos(M_PI * static_cast<double>(k) / static_cast<double>(decay_steps)));
}

bool PlateauRule::observe(int64_t step, double loss) {
  if (window <= 0 || step < first_step) return false;
  block_sum += loss;
  if (++block_n < window) return false;
  const double mean = block_sum / static_cast<double>(block_n);
  const bool plateau = has_prev && prev_mean - mean < threshold * prev_mean;
  prev_mean = mean;
  has_prev = true;
  block_sum = 0.0;
  block_n = 0;
  return plateau;
}

double SftSchedule::lr(int64_t step) const {
  const int64_t decay_steps =
      std::max<int64_t>(1, static_cast<int64_t>(std::floor(decay_fraction * total_steps + 0.5)));
  const int64_t decay_start = total_steps - decay_steps;
  if (step < warmup_steps) return warmup(peak_lr, step, warmup_steps);
  if (step < decay_start) return peak_lr;
  const int64_t k = std::min(step - decay_start + 1, decay_steps);
  return peak_lr + (final_lr - peak_lr) * static_cast<double>(k) / static_cast<double>(decay_steps);
}

}  // namespace illada::train
