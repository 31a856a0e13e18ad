// Initialisation rules of the official LLaDA model code and a truncated-normal sampler.
#include "model/init.h"

#include <cmath>

#include "util/check.h"
#include "util/rng.h"

namespace illada {
namespace {

// Standard normal CDF.
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

}  // namespace

InitRule init_rule(const ModelConfig& c, const TensorSpec& spec) {
  if (spec.role == TensorRole::kNorm) return {.ones = true};
  ILLADA_CHECK(spec.shape.size() == 2, spec.name);
  const double d_in = static_cast<double>(spec.shape[1]);
  // Which module the official code sees: the block's output projections carry a layer id.
  const bool block_out = spec.role == TensorRole::kMatrix && (spec.name.ends_with(".attn_out.weight") ||
                                                              spec.name.ends_with(".ff_out.weight"));
  const bool residual = spec.role == TensorRole::kMatrix && spec.name.ends_with(".ff_out.weight");
  const double two_layers = std::sqrt(2.0 * static_cast<double>(c.n_layers));
  switch (c.init_fn) {
    case InitFn::kNormal: {
      const double std = c.init_std / (residual ? two_layers : 1.0);
      return {.std = std, .cutoff = c.init_cutoff_factor.value_or(0.0)};
    }
    case InitFn::kMitchell: {
      double std = 1.0 / std::sqrt(d_in);
      if (block_out) std /= std::sqrt(2.0 * (spec.layer + 1));
      return {.std = std, .cutoff = 3.0};
    }
    case InitFn::kFanIn:
      return {.std = 1.0 / std::sqrt(d_in)};
    case InitFn::kKaimingNormal:
      return {.std = std::sqrt(2.0 / d_in)};
    case InitFn::kFullMegatron: {
      double std = c.init_std;
      if (block_out) std = c.init_std / two_layers;
      if (spec.role == TensorRole::kHead) std = 1.0 / std::sqrt(static_cast<double>(c.d_model));
      return {.std = std, .cutoff = c.init_cutoff_factor.value_or(3.0)};
    }
  }
  ILLADA_CHECK(false, "unknown init_fn");
  return {};
}

double normal_quantile(double p) {
  // P. J. Acklam's rational approximations (central region and tails).
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p < kLow) {
    const double q = std::sqrt(-2.0 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  if (p > 1.0 - kLow) return -normal_quantile(1.0 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

void draw_init(float* out, int64_t n, const InitRule& rule, uint64_t seed, uint64_t stream) {
  // Inverse transform: u uniform on (F(-cutoff), F(cutoff)) (or (0, 1)), x = std * F^-1(u).
  const double lo = rule.cutoff > 0 ? normal_cdf(-rule.cutoff) : 0.0;
  const double width = rule.cutoff > 0 ? 1.0 - 2.0 * lo : 1.0;
  Rng rng(seed, stream);
  for (int64_t i = 0; i < n; ++i) {
    double u = lo + width * rng.uniform();
    if (u <= 0.0) u = 0x1.0p-60;  // uniform() may return 0
    out[i] = static_cast<float>(rule.std * normal_quantile(u));
  }
}

}  // namespace illada
