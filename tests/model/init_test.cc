// Weight initialisation: the per-tensor rules against the port of the official code
// (tools/reference/init_ref.py, which records what modeling_llada.py asks torch.nn.init for),
// the drawn values against those rules, and the sampler's quantile function.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/init.h"
#include "util/check.h"

namespace illada {
namespace {

const std::string kFixtures = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/";

nlohmann::json rule_cases() {
  std::ifstream f(kFixtures + "model/init_rules.json");
  return f ? nlohmann::json::parse(f) : nlohmann::json::array();
}

TEST(Init, RulesMatchTheOfficialCode) {
  int checked = 0;
  for (const auto& c : rule_cases()) {
    const ModelConfig cfg = ModelConfig::from_json(c.at("config"), c.at("name"));
    const auto& want = c.at("rules");
    const auto specs = tensor_specs(cfg);
    ASSERT_EQ(specs.size(), want.size()) << c.at("name");
    for (const auto& spec : specs) {
      const auto& w = want.at(spec.name);
      const InitRule r = init_rule(cfg, spec);
      if (w.contains("ones")) {
        EXPECT_TRUE(r.ones) << c.at("name") << " " << spec.name;
        continue;
      }
      EXPECT_FALSE(r.ones) << spec.name;
      EXPECT_NEAR(r.std, w.at("std").get<double>(), 1e-12 * w.at("std").get<double>())
          << c.at("name") << " " << spec.name;
      EXPECT_EQ(r.cutoff, w.at("cutoff").get<double>()) << c.at("name") << " " << spec.name;
      ++checked;
    }
  }
  EXPECT_GE(checked, 200);
}

// Variance of a standard normal cut at +-c, as a fraction of 1.
double truncated_variance(double c) {
  if (c <= 0) return 1.0;
  const double phi = std::exp(-0.5 * c * c) / std::sqrt(2 * M_PI);
  const double mass = std::erf(c / std::sqrt(2.0));
  return 1.0 - 2.0 * c * phi / mass;
}

// The drawn tensors have the rule's spread and respect its cut, for every init_fn.
TEST(Init, DrawnWeightsFollowTheirRules) {
  for (const char* fn : {"normal", "mitchell", "kaiming_normal", "fan_in", "full_megatron"}) {
    nlohmann::json j = nlohmann::json::parse(std::ifstream(kFixtures + "tiny_mha/config.json"));
    j["init_fn"] = fn;
    j["init_cutoff_factor"] = std::string(fn) == "normal" ? nlohmann::json(2.0) : nlohmann::json(nullptr);
    const ModelConfig c = ModelConfig::from_json(j, fn);
    const ModelWeights w = init_weights(c, ComputeType::kF32, 11);
    int t = 0;
    for_each_tensor(w, c, [&](const TensorSpec& spec, const void* data) {
      const auto* x = static_cast<const float*>(data);
      int64_t n = 1;
      for (int64_t d : spec.shape) n *= d;
      const InitRule r = init_rule(c, spec);
      if (r.ones) {
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], 1.0f) << spec.name;
        return;
      }
      double sum = 0, sq = 0, most = 0;
      for (int64_t i = 0; i < n; ++i) {
        sum += x[i];
        sq += static_cast<double>(x[i]) * x[i];
        most = std::max(most, std::fabs(static_cast<double>(x[i])));
      }
      const double want_std = r.std * std::sqrt(truncated_variance(r.cutoff));
      const double got_std = std::sqrt(sq / n);
      // The sample standard deviation's own spread is about std / sqrt(2n): allow 5 of those.
      EXPECT_NEAR(got_std, want_std, 5 * want_std / std::sqrt(2.0 * n)) << fn << " " << spec.name;
      EXPECT_NEAR(sum / n, 0.0, 5 * want_std / std::sqrt(static_cast<double>(n))) << fn << " " << spec.name;
      if (r.cutoff > 0) {
        EXPECT_LE(most, r.cutoff * r.std * (1 + 1e-6)) << fn << " " << spec.name;
      } else {
        EXPECT_GT(most, 2.5 * r.std) << fn << " " << spec.name << ": the tails are missing";
      }
      ++t;
    });
    EXPECT_GE(t, 10) << fn;
  }
}

TEST(Init, DeterministicInTheSeedWhateverTheThreadCount) {
  nlohmann::json j = nlohmann::json::parse(std::ifstream(kFixtures + "tiny_gqa/config.json"));
  const ModelConfig c = ModelConfig::from_json(j, "tiny_gqa");
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const ModelWeights one = init_weights(c, ComputeType::kF32, 3);
  omp_set_num_threads(2);
  const ModelWeights two = init_weights(c, ComputeType::kF32, 3);
  const ModelWeights other = init_weights(c, ComputeType::kF32, 4);
  omp_set_num_threads(saved);
  const int64_t n = c.embedding_size * c.d_model;
  EXPECT_TRUE(std::equal(one.wte.f32(), one.wte.f32() + n, two.wte.f32()));
  EXPECT_FALSE(std::equal(one.wte.f32(), one.wte.f32() + n, other.wte.f32()));
}

TEST(Init, NormalQuantileIsAccurate) {
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-15);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 3e-9);
  EXPECT_NEAR(normal_quantile(0.025), -1.959963984540054, 3e-9);
  EXPECT_NEAR(normal_quantile(1e-10), -6.361340902404056, 1e-8);
  EXPECT_NEAR(normal_quantile(0.8413447460685429), 1.0, 3e-9);
}

TEST(Init, ConfigKeysAreValidatedAndRoundTrip) {
  nlohmann::json j = nlohmann::json::parse(std::ifstream(kFixtures + "tiny_gqa/config.json"));
  EXPECT_EQ(ModelConfig::from_json(j, "x").init_fn, InitFn::kNormal);  // configuration_llada default
  j["init_fn"] = "mitchell";
  j["init_std"] = 0.03;
  j["init_cutoff_factor"] = 2.5;
  const ModelConfig c = ModelConfig::from_json(j, "x");
  const ModelConfig back = ModelConfig::from_json(c.to_json(), "y");
  EXPECT_EQ(back.init_fn, InitFn::kMitchell);
  EXPECT_EQ(back.init_std, 0.03);
  EXPECT_EQ(back.init_cutoff_factor, 2.5);
  auto err = [&](const char* key, const nlohmann::json& v) {
    nlohmann::json k = j;
    k[key] = v;
    try {
      ModelConfig::from_json(k, "config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err("init_fn", "xavier").find("init_fn"), std::string::npos);
  EXPECT_NE(err("init_fn", 3).find("init_fn"), std::string::npos);
  EXPECT_NE(err("init_std", -1.0).find("init_std"), std::string::npos);
  EXPECT_NE(err("init_cutoff_factor", 0.0).find("init_cutoff_factor"), std::string::npos);
}

}  // namespace
}  // namespace illada
