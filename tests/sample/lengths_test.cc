// The derived answer lengths (sample/lengths.h): the defaults, the shortening to fit the
// prompt, and errors that name the options.
#include "sample/lengths.h"

#include <gtest/gtest.h>

#include "../test_util.h"
#include "util/check.h"

namespace illada {
namespace {

using test::error_of;

AnswerLengths derive(const LengthRequest& r, int64_t prompt = 10, int64_t context = 256) {
  return derive_lengths(r, kDefaultGenLength, prompt, context);
}

TEST(Lengths, DefaultsFollowTheGivenValues) {
  AnswerLengths l = derive({});
  EXPECT_EQ(l.length, 128);
  EXPECT_EQ(l.block_length, 32);
  EXPECT_EQ(l.steps, 128);
  l = derive({.length = 96});  // 32 divides 96: blocks of 32, one token per step
  EXPECT_EQ(l.block_length, 32);
  EXPECT_EQ(l.steps, 96);
  l = derive({.length = 40});  // 32 does not divide 40: one block of 40
  EXPECT_EQ(l.block_length, 40);
  EXPECT_EQ(l.steps, 40);
  l = derive({.length = 64, .block_length = 16, .steps = 8});
  EXPECT_EQ(l.length, 64);
  EXPECT_EQ(l.block_length, 16);
  EXPECT_EQ(l.steps, 8);
  l = derive({.block_length = 8, .variable_length = true});  // steps per block
  EXPECT_EQ(l.steps, 8);
}

TEST(Lengths, TheDefaultLengthShrinksToFitThePrompt) {
  AnswerLengths l = derive({}, 200, 256);  // 56 tokens left: one block of 32
  EXPECT_EQ(l.length, 32);
  l = derive({.block_length = 8}, 200, 256);
  EXPECT_EQ(l.length, 56);
  l = derive({}, 240, 256);  // less than a block left: the room itself
  EXPECT_EQ(l.length, 16);
  EXPECT_EQ(l.block_length, 16);
  // Unknown prompt (eval checks each example later): the default as it is.
  EXPECT_EQ(derive_lengths({}, 64, -1, 0).length, 64);
}

TEST(Lengths, ErrorsNameTheOptions) {
  EXPECT_CONTAINS(error_of([] { derive({.length = 40, .block_length = 16}); }),
                  "`gen_length` (40) must be a multiple of `block_length` (16)");
  EXPECT_CONTAINS(error_of([] { derive({.length = 16, .block_length = 32, .variable_length = true, .length_option = "max_length"}); }),
                  "`max_length` (16) is shorter than one block");
  EXPECT_CONTAINS(error_of([] { derive({.length = 128}, 200, 256); }), "exceeds the model's context of 256");
  EXPECT_CONTAINS(error_of([] { derive({}, 256, 256); }), "no room for an answer");
  EXPECT_CONTAINS(error_of([] { derive({.steps = 0}); }), "`steps` (0) must be positive");
  EXPECT_CONTAINS(error_of([] { derive({.block_length = -1}); }), "`block_length` (-1) must be positive");
  // The default that does not divide: the message says it was a default.
  EXPECT_CONTAINS(error_of([] { derive({.block_length = 24}, 10, 256); }), "is the default that fits the prompt");
}

}  // namespace
}  // namespace illada
