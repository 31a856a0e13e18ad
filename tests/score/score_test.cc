// Likelihood and confidence scoring on the tiny fixture model: the estimator's expectation
// against exact enumeration, exactness for one-token answers, and confidence scores against
// a direct step-by-step computation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "score/score.h"
#include "util/check.h"

namespace illada {
namespace {

const Model& tiny() {
  static const Model m =
      Model::load(std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/tiny_gqa", ComputeType::kF32);
  return m;
}

// log softmax of one row of a full forward over `ids`.
double log_prob_at(const std::vector<int32_t>& ids, int64_t pos, int32_t target) {
  const int64_t v = tiny().config().embedding_size;
  ForwardState st;
  std::vector<float> logits(ids.size() * v);
  tiny().forward({.ids = ids}, st, logits);
  const float* row = logits.data() + pos * v;
  double mx = -INFINITY, sum = 0;
  for (int64_t i = 0; i < v; ++i) mx = std::max(mx, (double)row[i]);
  for (int64_t i = 0; i < v; ++i) sum += std::exp(row[i] - mx);
  return row[target] - mx - std::log(sum);
}

TEST(Likelihood, StratifiedCountsFollowTheOfficialFormula) {
  // k = 3, A = 4, b = 8: 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5 -> round half to even -> 3, 4, 4, 4, 5,
  // 6, 6, 6 -> wrapped into 1..4: 3, 4, 4, 4, 1, 2, 2, 2.
  EXPECT_EQ(stratified_mask_counts(3, 4, 8), (std::vector<int64_t>{3, 4, 4, 4, 1, 2, 2, 2}));
  EXPECT_EQ(stratified_mask_counts(1, 1, 4), (std::vector<int64_t>{1, 1, 1, 1}));
}

TEST(Likelihood, OneTokenAnswerIsExactWithOneSample) {
  const std::vector<int32_t> prompt{10, 20, 30}, answer{40};
  const double est = log_likelihood(tiny(), prompt, answer, {.mc_num = 1, .batch_size = 1});
  const double exact = log_prob_at({10, 20, 30, tiny().config().mask_token_id}, 3, 40);
  EXPECT_NEAR(est, exact, 1e-9);
}

TEST(Likelihood, MeanMatchesTheExactExpectation) {
  const std::vector<int32_t> prompt{7, 8, 9, 11}, answer{12, 13, 14};
  const int64_t a = 3, b = 4;
  const int32_t mask = tiny().config().mask_token_id;
  // L(x): mean over all subsets S of size x of the summed cross-entropy on S given S masked.
  std::map<int64_t, std::pair<double, int>> lx;
  for (int s = 1; s < (1 << a); ++s) {
    std::vector<int32_t> ids(prompt);
    for (int i = 0; i < a; ++i) ids.push_back((s >> i & 1) ? mask : answer[i]);
    double loss = 0;
    for (int i = 0; i < a; ++i) {
      if (s >> i & 1) loss -= log_prob_at(ids, 4 + i, answer[i]);
    }
    auto& e = lx[__builtin_popcount(s)];
    e.first += loss;
    e.second += 1;
  }
  double expect = 0;
  for (int64_t k = 1; k <= a; ++k) {
    double batch = 0;
    for (int64_t x : stratified_mask_counts(k, a, b)) {
      batch += static_cast<double>(a) / x * lx[x].first / lx[x].second;
    }
    expect += -batch / b / a;
  }
  // Many independent one-batch estimates: their mean within 4 standard errors.
  const int n = 400;
  double sum = 0, sum2 = 0;
  for (int s = 0; s < n; ++s) {
    const double e = log_likelihood(tiny(), prompt, answer,
                                    {.mc_num = b, .batch_size = b, .seed = static_cast<uint64_t>(s)});
    sum += e;
    sum2 += e * e;
  }
  const double mean = sum / n, se = std::sqrt((sum2 / n - mean * mean) / n);
  EXPECT_GT(se, 0.0);
  EXPECT_LT(std::fabs(mean - expect), 4 * se) << "mean " << mean << " expected " << expect;
}

TEST(Likelihood, CfgChangesTheEstimateAndBadInputIsAnError) {
  const std::vector<int32_t> prompt{7, 8}, answer{12, 13};
  const double plain = log_likelihood(tiny(), prompt, answer, {.mc_num = 4, .batch_size = 2});
  const double guided =
      log_likelihood(tiny(), prompt, answer, {.mc_num = 4, .batch_size = 2, .cfg_scale = 1.0});
  EXPECT_NE(plain, guided);
  EXPECT_THROW(log_likelihood(tiny(), prompt, {}, {}), Error);
  EXPECT_THROW(log_likelihood(tiny(), prompt, answer, {.mc_num = 5, .batch_size = 2}), Error);
  EXPECT_THROW(log_likelihood(tiny(), prompt, std::vector<int32_t>{999}, {}), Error);
}

TEST(Confidence, EqualsADirectStepByStepComputation) {
  const std::vector<int32_t> prompt{3, 4, 6};
  const std::vector<std::vector<int32_t>> answers{{20, 21, 22}, {30}, {40, 41}};
  const auto got = confidence_scores(tiny(), prompt, answers);
  const int32_t mask = tiny().config().mask_token_id;
  for (size_t c = 0; c < answers.size(); ++c) {
    std::vector<int32_t> canvas(prompt);
    canvas.resize(prompt.size() + answers[c].size(), mask);
    double total = 0;
    for (size_t step = 0; step < answers[c].size(); ++step) {
      double best = -INFINITY;
      size_t at = 0;
      for (size_t i = 0; i < answers[c].size(); ++i) {
        if (canvas[prompt.size() + i] != mask) continue;
        const double lp = log_prob_at(canvas, prompt.size() + i, answers[c][i]);
        if (lp > best) best = lp, at = i;
      }
      total += best;
      canvas[prompt.size() + at] = answers[c][at];
    }
    EXPECT_NEAR(got[c].sum, total, 1e-6) << c;
    EXPECT_NEAR(got[c].normalized, total / answers[c].size(), 1e-6);
    EXPECT_EQ(got[c].forward_passes, static_cast<int64_t>(answers[c].size()));
  }
}

}  // namespace
}  // namespace illada
