// The OpenMP wait policy chosen at start-up from what else runs.
#include "util/wait_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace illada {
namespace {

TEST(WaitPolicy, SpinsOnlyWhenNothingElseRuns) {
  EXPECT_EQ(std::string(choose_wait_policy(0).variable), "GOMP_SPINCOUNT");
  EXPECT_EQ(std::string(choose_wait_policy(0).value), "10000");
  for (int others : {1, 2, 7}) {
    EXPECT_EQ(std::string(choose_wait_policy(others).variable), "OMP_WAIT_POLICY");
    EXPECT_EQ(std::string(choose_wait_policy(others).value), "passive");
  }
  EXPECT_EQ(std::string(choose_wait_policy(-1).value), "passive");  // unknown: the safe choice
}

TEST(WaitPolicy, ParsesTheRunningCount) {
  EXPECT_EQ(parse_running("0.52 0.58 0.59 1/467 12345\n"), 1);
  EXPECT_EQ(parse_running("7.50 6.00 4.00 12/800 99"), 12);
  EXPECT_EQ(parse_running("garbage"), -1);
  EXPECT_EQ(parse_running("1 2 3 x/5 6"), -1);
  EXPECT_EQ(parse_running(""), -1);
  EXPECT_GE(others_running(), 0);  // this machine has /proc/loadavg
}

}  // namespace
}  // namespace illada
