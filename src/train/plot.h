// The loss/LR plot of a training run as a self-contained SVG image (no plotting
// library): two panels over a shared step axis, the training and held-out
// masked-diffusion losses on top (logarithmic axis when all are positive) and
// the learning rate below (linear from 0), each with grid, ticks, tick labels,
// axis titles and a legend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace illada::train {

struct PlotPoint {
  double step = 0.0;
  double value = 0.0;
};

struct TrainingCurves {
  std::vector<PlotPoint> train_loss; // one per step (step index, loss)
  std::vector<PlotPoint> lr;         // one per step (step index, learning rate)
  std::vector<PlotPoint>
      eval_loss;     // one per evaluation (steps completed, held-out loss)
  std::string title; // e.g. the run directory
};

// Series longer than this are averaged over consecutive buckets of equal size
// (so a million-step run still gives a small file); shorter ones are drawn
// point for point.
inline constexpr size_t kPlotMaxPoints = 2000;

// The SVG document (starts with "<svg"). Each non-empty series is one
// <polyline> with class "train-loss", "eval-loss" or "lr" and one "x,y" pair
// per (possibly averaged) point. Non-finite values are left out.
std::string training_plot_svg(const TrainingCurves &curves);

// Writes training_plot_svg(curves) to `path` atomically (temporary file +
// rename).
void write_training_plot(const std::string &path, const TrainingCurves &curves);

} // namespace illada::train
