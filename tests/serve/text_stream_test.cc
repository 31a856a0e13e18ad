// The held-back streaming of committed text (serve/text_stream.h): only final text is sent, in
// order; incomplete UTF-8 sequences and tails that may still become a stop string wait.
#include "serve/text_stream.h"

#include <gtest/gtest.h>

#include <map>

#include "util/check.h"

namespace illada::serve {
namespace {

constexpr int32_t kMask = 99;

// A detokenizer over a fixed piece table.
std::string decode(std::span<const int32_t> ids) {
  static const std::map<int32_t, std::string> pieces = {
      {1, "Hi"}, {2, " there"}, {3, "\xE2\x82"}, {4, "\xAC"}, {5, "<|e"}, {6, "nd|>"}, {7, "!"}};
  std::string s;
  for (int32_t id : ids) s += pieces.at(id);
  return s;
}

TEST(TextStream, IncompleteUtf8Tail) {
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("abc\xC3"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("abc\xE2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("abc\xE2\x82\xAC"), 0u);  // complete euro sign
  EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xFF"), 0u);      // never valid: sent as U+FFFD
  EXPECT_EQ(incomplete_utf8_tail("a\xE0\x80"), 0u);  // overlong start: can never complete
  EXPECT_EQ(incomplete_utf8_tail(""), 0u);
}

TEST(TextStream, StopPrefixTail) {
  const std::vector<std::string> stops = {"<|endoftext|>", "STOP"};
  EXPECT_EQ(stop_prefix_tail("hello <|end", stops), 5u);
  EXPECT_EQ(stop_prefix_tail("hello ST", stops), 2u);
  EXPECT_EQ(stop_prefix_tail("hello", stops), 0u);
  EXPECT_EQ(stop_prefix_tail("hello <|x", stops), 0u);
  EXPECT_EQ(stop_prefix_tail("<", stops), 1u);
}

TEST(TextStream, SendsOnlyFinalTextInOrder) {
  TextStream ts(decode, {"<|end|>"}, kMask, 100);
  const std::vector<int32_t> a1 = {1, kMask, 2};
  EXPECT_EQ(ts.update(a1), "Hi");  // position 2 is committed but not contiguous: waits
  EXPECT_EQ(ts.update(a1), "");
  const std::vector<int32_t> a2 = {1, 2, 3, kMask};
  EXPECT_EQ(ts.update(a2), " there");  // the half euro sign waits
  const std::vector<int32_t> a3 = {1, 2, 3, 4, 5, kMask};
  EXPECT_EQ(ts.update(a3), "\xE2\x82\xAC");  // "<|e" may become the stop string: waits
  const std::vector<int32_t> a4 = {1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(ts.update(a4), "");  // the stop string: nothing after it is ever sent
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 2, 3, 4, 7, 7}), "");
  EXPECT_EQ(ts.finish("Hi there\xE2\x82\xAC"), "");
  EXPECT_EQ(ts.sent(), "Hi there\xE2\x82\xAC");
}

TEST(TextStream, HeldTailIsSentWhenItIsNoStop) {
  TextStream ts(decode, {"<|end|>"}, kMask, 100);
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 5, kMask}), "Hi");
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 5, 1, kMask}), "<|eHi");
  EXPECT_EQ(ts.finish("Hi<|eHi!"), "!");
}

TEST(TextStream, CutAtMaxTokens) {
  TextStream ts(decode, {}, kMask, 2);
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 2, 7, 7}), "Hi there");
  EXPECT_EQ(ts.finish("Hi there"), "");
}

TEST(TextStream, FinishRefusesATextThatDoesNotExtendWhatWasSent) {
  TextStream ts(decode, {}, kMask, 100);
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 2, kMask}), "Hi there");
  EXPECT_THROW(ts.finish("Hello"), Error);
}

TEST(TextStream, FinalAnswerCutsAtStopOrMaxTokens) {
  const std::vector<int32_t> answer = {1, 2, 7, 7};
  AnswerText a = final_answer(answer, false, 0, "", 3, decode);
  EXPECT_EQ(a.text, "Hi there!");
  EXPECT_EQ(a.tokens, 3);
  EXPECT_FALSE(a.stopped);
  a = final_answer(answer, true, 2, "Hi there", 3, decode);
  EXPECT_EQ(a.text, "Hi there");
  EXPECT_EQ(a.tokens, 2);
  EXPECT_TRUE(a.stopped);
  a = final_answer(answer, true, 4, "Hi there!!", 3, decode);  // the stop lies past max_tokens
  EXPECT_FALSE(a.stopped);
  EXPECT_EQ(a.tokens, 3);
}

TEST(TextStream, AStopFoundWaitsForALongerStopThatStartsEarlier) {
  // Stops "nd|>" and "<|end|>!": committed "Hi<|end|>" holds "nd|>" at 5, but "<|end|>" at 2
  // may still become "<|end|>!" (which starts earlier and so would end the answer there).
  TextStream ts(decode, {"nd|>", "<|end|>!"}, kMask, 100);
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 5, 6, kMask}), "Hi");
  // It did: the answer is "Hi", and nothing past it was sent.
  EXPECT_EQ(ts.update(std::vector<int32_t>{1, 5, 6, 7}), "");
  EXPECT_EQ(ts.finish("Hi"), "");
  // It did not: the answer ends at the shorter stop, "Hi<|e".
  TextStream other(decode, {"nd|>", "<|end|>!"}, kMask, 100);
  EXPECT_EQ(other.update(std::vector<int32_t>{1, 5, 6, kMask}), "Hi");
  EXPECT_EQ(other.update(std::vector<int32_t>{1, 5, 6, 1}), "<|e");
  EXPECT_EQ(other.finish("Hi<|e"), "");
}

}  // namespace
}  // namespace illada::serve
