// Scoring against the PyTorch references of tools/reference/score_ref.py (fixture cases of
// tools/reference/make_score_fixtures.py, float64 ground truth; with and without CFG and the
// released evaluation's padd_eos): iLLaDA confidence scores (= the released
// get_loglikelihood_confidence), the
// exact one-token likelihood, the official stratified mask counts, and the Monte-Carlo
// likelihood's mean against the enumerated expectation of the official get_log_likelihood.py
// estimator.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "score/score.h"

namespace illada {
namespace {

const std::string kFixtureDir = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/score/";

const nlohmann::json& cases() {
  static const nlohmann::json j = [] {
    std::ifstream f(kFixtureDir + "cases.json");
    return f ? nlohmann::json::parse(f) : nlohmann::json::array();
  }();
  return j;
}

const Model& model_named(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[name];
  if (!m) {
    m = std::make_unique<Model>(
        Model::load(std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/" + name, ComputeType::kF32));
  }
  return *m;
}

std::vector<int32_t> ids(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

// fp32 engine vs float64 reference (the fixtures' fp32-mode differences are <= 2e-5).
constexpr double kTol = 1e-4;

TEST(ScoreReference, FixturesExist) {
  ASSERT_GE(cases().size(), 10u) << kFixtureDir << "cases.json is missing or small";
}

TEST(ScoreReference, ConfidenceScoresMatch) {
  int checked = 0;
  double max_diff = 0;
  for (const auto& c : cases()) {
    const Model& m = model_named(c.at("model"));
    ASSERT_EQ(m.config().mask_token_id, c.at("mask_id").get<int32_t>()) << c.at("name");
    const auto prompt = ids(c.at("prompt_ids"));
    std::vector<std::vector<int32_t>> answers;
    std::vector<double> want_sum, want_norm;
    if (c.at("kind") == "single") {
      answers.push_back(ids(c.at("answer_ids")));
      want_sum.push_back(c.at("confidence_sum").get<double>());
      want_norm.push_back(c.at("confidence_normalized").get<double>());
    } else {
      for (const auto& a : c.at("choices")) answers.push_back(ids(a));
      want_sum = c.at("confidence_sum").get<std::vector<double>>();
      want_norm = c.at("confidence_normalized").get<std::vector<double>>();
    }
    const ConfidenceOptions co{.cfg_scale = c.value("cfg_scale", 0.0), .append_eos = c.value("append_eos", false)};
    const auto got = confidence_scores(m, prompt, answers, co);  // choices packed together
    ASSERT_EQ(got.size(), answers.size());
    size_t best = 0;
    for (size_t i = 0; i < answers.size(); ++i) {
      EXPECT_NEAR(got[i].sum, want_sum[i], kTol) << c.at("name") << " choice " << i;
      EXPECT_NEAR(got[i].normalized, want_norm[i], kTol) << c.at("name") << " choice " << i;
      EXPECT_EQ(got[i].forward_passes, static_cast<int64_t>(answers[i].size())) << c.at("name");
      max_diff = std::max(max_diff, std::fabs(got[i].sum - want_sum[i]));
      if (got[i].sum > got[best].sum) best = i;
      ++checked;
    }
    if (c.contains("best_choice_sum")) {
      EXPECT_EQ(static_cast<int64_t>(best), c["best_choice_sum"].get<int64_t>()) << c.at("name");
    }
  }
  EXPECT_GE(checked, 10);
  std::printf("[ score ] confidence: %d answers, max |sum - reference| %.2e\n", checked, max_diff);
}

TEST(ScoreReference, OneTokenLikelihoodIsExact) {
  int checked = 0;
  for (const auto& c : cases()) {
    if (c.at("kind") != "single" || c.at("exact_log_likelihood_one_token").is_null()) continue;
    const Model& m = model_named(c.at("model"));
    const auto prompt = ids(c.at("prompt_ids")), answer = ids(c.at("answer_ids"));
    const double exact = c["exact_log_likelihood_one_token"].get<double>();
    const bool eos = c.value("append_eos", false);
    const double est = log_likelihood(m, prompt, answer, {.mc_num = 1, .batch_size = 1, .append_eos = eos, .seed = 7});
    EXPECT_NEAR(est, exact, kTol) << c.at("name");
    std::printf("[ score ] %s: one-token log p %+.7f, reference %+.7f, diff %.2e\n",
                c.at("name").get<std::string>().c_str(), est, exact, est - exact);
    const int64_t b = c.at("batch_size").get<int64_t>();
    EXPECT_NEAR(log_likelihood(m, prompt, answer, {.mc_num = 2 * b, .batch_size = b, .append_eos = eos}), exact, kTol)
        << c.at("name");
    EXPECT_NEAR(c.at("exact_expectation").get<double>(), exact, 1e-12) << c.at("name");
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(ScoreReference, StratifiedCountsMatchTheOfficialExpression) {
  for (const auto& c : cases()) {
    if (c.at("kind") != "single") continue;
    const int64_t a = static_cast<int64_t>(c.at("answer_ids").size());
    const int64_t b = c.at("batch_size").get<int64_t>();
    const auto want = c.at("counts_by_k").get<std::vector<std::vector<int64_t>>>();
    ASSERT_EQ(static_cast<int64_t>(want.size()), a);
    for (int64_t k = 1; k <= a; ++k) {
      EXPECT_EQ(stratified_mask_counts(k, a, b), want[k - 1]) << c.at("name") << " k " << k;
    }
  }
}

// Many independent one-batch estimates (mc_num = batch_size, different seeds): their mean is
// within 4 standard errors (from the sample) of the exact expectation of the official estimator
// (plus kTol for the fp32 vs float64 difference).
TEST(ScoreReference, MonteCarloMeanMatchesTheExactExpectation) {
  int checked = 0;
  for (const auto& c : cases()) {
    if (c.at("kind") != "single" || c.at("answer_ids").size() < 2) continue;
    const Model& m = model_named(c.at("model"));
    const auto prompt = ids(c.at("prompt_ids")), answer = ids(c.at("answer_ids"));
    const int64_t b = c.at("batch_size").get<int64_t>();
    const double cfg = c.at("cfg_scale").get<double>(), want = c.at("exact_expectation").get<double>();
    const int n = 200;
    std::vector<double> e(n);
    for (int s = 0; s < n; ++s) {
      e[s] = log_likelihood(m, prompt, answer,
                            {.mc_num = b, .batch_size = b, .cfg_scale = cfg,
                             .append_eos = c.value("append_eos", false), .seed = 1000003ull * static_cast<uint64_t>(checked + 1) + s});
    }
    double mean = 0, var = 0;
    for (double v : e) mean += v;
    mean /= n;
    for (double v : e) var += (v - mean) * (v - mean);
    const double se = std::sqrt(var / (n - 1) / n);
    EXPECT_GT(se, 0.0) << c.at("name");
    EXPECT_LE(std::fabs(mean - want), 4 * se + kTol)
        << c.at("name") << ": mean " << mean << " expected " << want << " se " << se;
    std::printf("[ score ] %-18s b %2lld cfg %.1f: mean %+.5f exact %+.5f se %.5f z %+.2f\n",
                c.at("name").get<std::string>().c_str(), static_cast<long long>(b), cfg, mean, want,
                se, (mean - want) / se);
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

}  // namespace
}  // namespace illada
