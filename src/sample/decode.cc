// Token picks, confidences and commit rules, written to follow the official LLaDA and
// Fast-dLLM code step for step (see decode.h for the rules).
#include "sample/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "util/check.h"
#include "util/rng.h"

namespace illada {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

}  // namespace

Remasking parse_remasking(const std::string& s) {
  if (s == "low_confidence") return Remasking::kLowConfidence;
  if (s == "random") return Remasking::kRandom;
  if (s == "margin") return Remasking::kMargin;
  if (s == "entropy") return Remasking::kEntropy;
  fail("`remasking`: unknown strategy '", s, "' (expected low_confidence, random, margin or entropy)");
}

const char* remasking_name(Remasking r) {
  switch (r) {
    case Remasking::kLowConfidence: return "low_confidence";
    case Remasking::kRandom: return "random";
    case Remasking::kMargin: return "margin";
    case Remasking::kEntropy: return "entropy";
  }
  return "?";
}

Pick pick_token(const float* logits, int64_t vocab, const PickOptions& opts, uint64_t seed,
                uint64_t noise_key) {
  auto logit = [&](int64_t v) -> double {
    return v == opts.suppress_token || v == opts.suppress_token_b ? kNegInf
                                                                   : static_cast<double>(logits[v]);
  };
  // x0: argmax of the logits, or of exp(l) / (-log r)^T (Gumbel-max, float64), compared in
  // the log domain (l - T log(-log r)) so exp() cannot overflow; first index wins ties.
  int64_t best = 0;
  double best_score = kNegInf;
  double mx = kNegInf;
  for (int64_t v = 0; v < vocab; ++v) {
    const double l = logit(v);
    mx = std::max(mx, l);
    double score = l;
    if (opts.temperature > 0) {
      double r = random_uniform(seed, noise_key, static_cast<uint64_t>(v));
      if (r <= 0.0) r = 0x1.0p-60;
      score = l - opts.temperature * std::log(-std::log(r));
    }
    if (score > best_score || (v == 0 && best_score == kNegInf)) {
      best_score = score;
      best = v;
    }
  }
  Pick p{static_cast<int32_t>(best), 0.0};
  const bool excluding = opts.no_confidence_token_a >= 0 || opts.no_confidence_token_b >= 0;
  if (excluding) {
    mx = kNegInf;
    for (int64_t v = 0; v < vocab; ++v) {
      if (v != opts.no_confidence_token_a && v != opts.no_confidence_token_b) mx = std::max(mx, logit(v));
    }
  }
  // The logits the confidence is computed from.
  auto clogit = [&](int64_t v) -> double {
    return v == opts.no_confidence_token_a || v == opts.no_confidence_token_b ? kNegInf : logit(v);
  };
  switch (opts.remasking) {
    case Remasking::kRandom:
      // A stream apart from the Gumbel draws of the same key.
      p.confidence = random_uniform(seed ^ 0x5bd1e995ull, noise_key, 0);
      break;
    case Remasking::kLowConfidence: {
      double sum = 0.0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(clogit(v) - mx);
      p.confidence = std::exp(clogit(best) - mx) / sum;
      break;
    }
    case Remasking::kMargin:
    case Remasking::kEntropy: {
      double sum = 0.0, top1 = kNegInf, top2 = kNegInf;
      for (int64_t v = 0; v < vocab; ++v) {
        const double l = clogit(v);
        sum += std::exp(l - mx);
        if (l > top1) {
          top2 = top1;
          top1 = l;
        } else if (l > top2) {
          top2 = l;
        }
      }
      if (opts.remasking == Remasking::kMargin) {
        p.confidence = (std::exp(top1 - mx) - std::exp(top2 - mx)) / sum;
      } else {
        double neg_entropy = 0.0;  // sum p log p: higher means more certain
        const double log_sum = std::log(sum);
        for (int64_t v = 0; v < vocab; ++v) {
          const double lp = clogit(v) - mx - log_sum;
          if (std::isfinite(lp)) neg_entropy += std::exp(lp) * lp;
        }
        p.confidence = neg_entropy;
      }
      break;
    }
  }
  return p;
}

std::vector<int64_t> num_transfer_tokens(int64_t masks, int64_t steps) {
  ILLADA_CHECK(steps > 0);
  std::vector<int64_t> n(static_cast<size_t>(steps), masks / steps);
  for (int64_t i = 0; i < masks % steps; ++i) ++n[i];
  return n;
}

std::vector<int64_t> top_k(std::span<const double> confidence, int64_t k) {
  std::vector<int64_t> idx(confidence.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int64_t>(k, static_cast<int64_t>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    return confidence[a] > confidence[b] || (confidence[a] == confidence[b] && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

std::vector<int64_t> select_threshold(std::span<const double> confidence, double threshold) {
  if (confidence.empty()) return {};
  std::vector<int64_t> order = top_k(confidence, static_cast<int64_t>(confidence.size()));
  std::vector<int64_t> out{order[0]};
  for (size_t i = 1; i < order.size() && confidence[order[i]] >= threshold; ++i) {
    out.push_back(order[i]);
  }
  return out;
}

std::vector<int64_t> select_factor(std::span<const double> confidence, double factor) {
  const int64_t n = static_cast<int64_t>(confidence.size());
  if (n == 0) return {};
  std::vector<int64_t> order = top_k(confidence, n);
  // Fast-dLLM: thresholds 1 - factor/(i+2) for sorted index i >= 1 (index 0 always passes);
  // stop at the first failure; a stop at 0 or at the last index takes one more.
  int64_t top = 0;
  for (top = 0; top < n; ++top) {
    const double thresh = top == 0 ? -1.0 : 1.0 - factor / static_cast<double>(top + 2);
    if (confidence[order[top]] < thresh) break;
  }
  if (top == n) top = n - 1;  // the loop ran out: Python's loop variable stays at the end
  if (top == 0 || top == n - 1) ++top;
  order.resize(static_cast<size_t>(top));
  return order;
}

}  // namespace illada
