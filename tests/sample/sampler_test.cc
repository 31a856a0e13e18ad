// The step-wise engine: requests with different settings joining at different steps share
// forward passes and still produce the tokens they produce alone.
#include <gtest/gtest.h>

#include <algorithm>

#include "sample/sampler.h"
#include "util/check.h"

namespace illada {
namespace {

const Model& tiny() {
  static const Model m = Model::load(std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/tiny_gqa", ComputeType::kBF16);
  return m;
}

struct Case {
  std::vector<int32_t> prompt;
  GenerateOptions o;
};

std::vector<Case> mixed_cases() {
  std::vector<Case> c(5);
  c[0] = {{1, 2, 3}, {.gen_length = 16, .block_length = 4, .steps = 16}};
  c[1] = {{7, 8, 9, 10, 11, 12}, {.block_length = 8, .steps = 8, .variable_length = true, .max_length = 24,
                                  .stop_tokens = {-7}, .threshold = 0.9, .cache = CacheMode::kDual}};
  c[2] = {{20, 21}, {.gen_length = 24, .block_length = 8, .steps = 12, .threshold = 0.5, .cache = CacheMode::kPrefix}};
  c[3] = {{30, 31, 32, 33}, {.gen_length = 8, .block_length = 8, .steps = 8, .cfg_scale = 0.5}};
  c[4] = {{40, 41, 42}, {.gen_length = 16, .block_length = 8, .steps = 16, .temperature = 0.7, .seed = 3}};
  return c;
}

TEST(Sampler, MixedRequestsJoiningLateShareStepsAndMatchSingleRuns) {
  const auto cases = mixed_cases();
  std::vector<GenerateResult> alone;
  for (const Case& c : cases) alone.push_back(generate(tiny(), {c.prompt}, c.o)[0]);

  Sampler s(tiny());
  std::vector<int64_t> ids;
  int64_t largest = 0, passes = 0;
  // Two at the start, one after 3 steps, two more after 5.
  for (size_t i = 0; i < 2; ++i) ids.push_back(s.add(cases[i].prompt, cases[i].o));
  for (int step = 0;; ++step) {
    if (step == 3) ids.push_back(s.add(cases[2].prompt, cases[2].o));
    if (step == 5) {
      for (size_t i = 3; i < cases.size(); ++i) ids.push_back(s.add(cases[i].prompt, cases[i].o));
    }
    const StepReport r = s.step();
    if (r.requests == 0 && step > 5) break;
    largest = std::max(largest, r.requests);
    passes += r.requests > 0;
  }
  EXPECT_GE(largest, 4) << "requests with different settings shared a forward pass";
  int64_t nfe_sum = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(s.finished(ids[i]));
    const GenerateResult r = s.take(ids[i]);
    EXPECT_EQ(r.ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(r.nfe, alone[i].nfe) << "request " << i;
    nfe_sum += r.nfe;
  }
  EXPECT_LT(passes, nfe_sum) << "fewer forward passes than the requests' steps together";
  EXPECT_EQ(s.held(), 0);
}

TEST(Sampler, CancelTakeAndCheck) {
  Sampler s(tiny());
  const GenerateOptions o{.gen_length = 16, .block_length = 4, .steps = 16};
  const int64_t a = s.add({1, 2}, o), b = s.add({3, 4}, o);
  s.step();
  s.cancel(a);
  const StepReport r = s.step();
  EXPECT_NE(std::find(r.finished.begin(), r.finished.end(), a), r.finished.end());
  EXPECT_EQ(r.requests, 1);
  EXPECT_TRUE(s.take(a).cancelled);
  EXPECT_FALSE(s.finished(b));
  EXPECT_THROW(s.take(b), Error);   // still running
  EXPECT_THROW(s.take(a), Error);   // already taken
  EXPECT_EQ(s.unfinished(), 1);
  while (s.step().requests > 0) {
  }
  EXPECT_FALSE(s.take(b).cancelled);
  // check() refuses what add() refuses, without adding.
  EXPECT_THROW(Sampler::check(tiny(), std::vector<int32_t>{}, o), Error);
  EXPECT_THROW(Sampler::check(tiny(), std::vector<int32_t>(250, 1), o), Error);
  EXPECT_NO_THROW(Sampler::check(tiny(), std::vector<int32_t>{1}, o));
  EXPECT_EQ(s.held(), 0);
}

}  // namespace
}  // namespace illada
