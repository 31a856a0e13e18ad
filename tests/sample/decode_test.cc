// The per-step rules of the samplers: schedules, top-k order, Fast-dLLM's threshold and
// factor rules, and token picks (argmax, Gumbel-max determinism, confidences).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "sample/decode.h"

namespace illada {
namespace {

TEST(Schedule, SpreadsMasksWithExtrasFirst) {
  EXPECT_EQ(num_transfer_tokens(32, 8), (std::vector<int64_t>{4, 4, 4, 4, 4, 4, 4, 4}));
  EXPECT_EQ(num_transfer_tokens(10, 4), (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_EQ(num_transfer_tokens(3, 5), (std::vector<int64_t>{1, 1, 1, 0, 0}));
}

TEST(TopK, HighestFirstLowerIndexOnTies) {
  const std::vector<double> c{0.2, 0.9, 0.5, 0.9, -INFINITY};
  EXPECT_EQ(top_k(c, 3), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(top_k(c, 5).back(), 4);
  EXPECT_EQ(top_k(c, 0).size(), 0u);
}

TEST(Threshold, AboveTauAndAtLeastOne) {
  EXPECT_EQ(select_threshold(std::vector<double>{0.3, 0.95, 0.91, 0.2}, 0.9),
            (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(select_threshold(std::vector<double>{0.3, 0.5}, 0.9), (std::vector<int64_t>{1}));
}

TEST(Factor, FollowsFastDllmIncludingItsQuirks) {
  // factor 1: thresholds for sorted index i >= 1 are 1 - 1/(i+2): 0.667, 0.75, 0.8, ...
  // Sorted 0.99, 0.9, 0.7: index 2 fails (0.7 < 0.75) -> stop at 2 = n - 1 -> one more: all 3.
  EXPECT_EQ(select_factor(std::vector<double>{0.7, 0.99, 0.9}, 1.0).size(), 3u);
  // Sorted 0.99, 0.9, 0.7, 0.1: index 2 fails -> 2 tokens (2 is neither 0 nor n - 1).
  EXPECT_EQ(select_factor(std::vector<double>{0.1, 0.7, 0.99, 0.9}, 1.0),
            (std::vector<int64_t>{2, 3}));
  // Sorted 0.99, 0.2, 0.1, 0.05: index 1 fails -> 1 token.
  EXPECT_EQ(select_factor(std::vector<double>{0.05, 0.1, 0.2, 0.99}, 1.0),
            (std::vector<int64_t>{3}));
  EXPECT_EQ(select_factor(std::vector<double>{0.4}, 1.0).size(), 1u);
}

TEST(Pick, ArgmaxAndSoftmaxConfidence) {
  const std::vector<float> l{1.0f, 3.0f, 2.0f, 3.0f};
  const Pick p = pick_token(l.data(), 4, {}, 0, 0);
  EXPECT_EQ(p.token, 1);  // first of the tied maxima
  const double z = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(p.confidence, std::exp(3.0) / z, 1e-12);
}

TEST(Pick, SuppressedAndNoConfidenceTokens) {
  const std::vector<float> l{1.0f, 3.0f, 2.0f};
  PickOptions o{.suppress_token = 1};
  EXPECT_EQ(pick_token(l.data(), 3, o, 0, 0).token, 2);
  PickOptions o2{.no_confidence_token_a = 1};
  const Pick p = pick_token(l.data(), 3, o2, 0, 0);
  EXPECT_EQ(p.token, 1);
  EXPECT_EQ(p.confidence, 0.0);  // excluded from the confidence softmax
  PickOptions o3{.no_confidence_token_a = 2};
  EXPECT_NEAR(pick_token(l.data(), 3, o3, 0, 0).confidence,
              std::exp(3.0) / (std::exp(1.0) + std::exp(3.0)), 1e-12);
}

TEST(Pick, GumbelIsDeterministicPerKeyAndFollowsTheDistribution) {
  const std::vector<float> l{0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  PickOptions o{.temperature = 1.0};
  EXPECT_EQ(pick_token(l.data(), 2, o, 5, 77).token, pick_token(l.data(), 2, o, 5, 77).token);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += pick_token(l.data(), 2, o, 5, i).token;
  EXPECT_NEAR(ones / static_cast<double>(n), 0.75, 0.015);  // > 4 standard errors
}

TEST(Pick, MarginAndEntropyRankCertainRowsHigher) {
  const std::vector<float> sure{10.0f, 0.0f, 0.0f}, unsure{1.0f, 0.9f, 0.8f};
  for (Remasking r : {Remasking::kMargin, Remasking::kEntropy}) {
    PickOptions o{.remasking = r};
    EXPECT_GT(pick_token(sure.data(), 3, o, 0, 0).confidence,
              pick_token(unsure.data(), 3, o, 0, 0).confidence);
  }
}

TEST(Remasking, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_remasking("random"), Remasking::kRandom);
  EXPECT_THROW(parse_remasking("lowest"), std::exception);
}

}  // namespace
}  // namespace illada
