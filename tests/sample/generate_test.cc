// Properties of the generation loop on the tiny fixture models (exact agreement with the
// official code is tested against tools/reference fixtures in generate_reference_test.cc).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "sample/generate.h"
#include "util/check.h"

namespace illada {
namespace {

std::string fixture(const std::string& name) {
  return std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/" + name;
}

const Model& tiny(ComputeType dt = ComputeType::kF32) {
  static const Model f32 = Model::load(fixture("tiny_gqa"), ComputeType::kF32);
  static const Model b16 = Model::load(fixture("tiny_gqa"), ComputeType::kBF16);
  return dt == ComputeType::kF32 ? f32 : b16;
}

TEST(Generate, FixedCanvasIsFullyDenoised) {
  const auto res = generate(tiny(), {{10, 11, 12}}, {.gen_length = 16, .block_length = 8, .steps = 8});
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].ids.size(), 16u);
  EXPECT_EQ(std::count(res[0].ids.begin(), res[0].ids.end(), tiny().config().mask_token_id), 0);
  EXPECT_EQ(res[0].nfe, 8);
  EXPECT_EQ(std::vector<int32_t>(res[0].canvas.begin(), res[0].canvas.begin() + 3),
            (std::vector<int32_t>{10, 11, 12}));
}

TEST(Generate, CommitsFollowTheScheduleAndNeverRemask) {
  std::vector<std::vector<int32_t>> canvases;
  GenerateOptions o{.gen_length = 8, .block_length = 8, .steps = 3};
  o.on_step = [&](const StepInfo& s) { canvases.emplace_back(s.canvas.begin(), s.canvas.end()); };
  generate(tiny(), {{20, 21}}, o);
  ASSERT_EQ(canvases.size(), 3u);
  const int32_t m = tiny().config().mask_token_id;
  const int64_t expect_masks[] = {5, 2, 0};  // 8 masks in 3 steps: 3, 3, 2 commits
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(std::count(canvases[s].begin(), canvases[s].end(), m), expect_masks[s]);
    if (s > 0) {
      for (size_t p = 0; p < canvases[s].size(); ++p) {
        if (canvases[s - 1][p] != m) {
          EXPECT_EQ(canvases[s][p], canvases[s - 1][p]);
        }
      }
    }
  }
}

TEST(Generate, BatchEqualsSingleRequestsAtTemperatureZero) {
  const std::vector<std::vector<int32_t>> prompts{{1, 2, 3}, {7, 8, 9, 10, 11}};
  for (CacheMode cache : {CacheMode::kNone, CacheMode::kPrefix, CacheMode::kDual}) {
    GenerateOptions o{.gen_length = 16, .block_length = 4, .steps = 8, .cache = cache};
    const auto batch = generate(tiny(), prompts, o);
    for (size_t r = 0; r < prompts.size(); ++r) {
      const auto single = generate(tiny(), {prompts[r]}, o);
      EXPECT_EQ(batch[r].ids, single[0].ids) << cache_mode_name(cache) << " request " << r;
      EXPECT_EQ(batch[r].nfe, single[0].nfe);
    }
  }
}

TEST(Generate, SameSeedSameOutputWhateverTheThreadCount) {
  GenerateOptions o{.gen_length = 16, .block_length = 8, .steps = 8, .temperature = 0.8,
                    .seed = 42};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = generate(tiny(ComputeType::kBF16), {{3, 4, 5}}, o);
  omp_set_num_threads(2);
  const auto two = generate(tiny(ComputeType::kBF16), {{3, 4, 5}}, o);
  omp_set_num_threads(saved);
  EXPECT_EQ(one[0].ids, two[0].ids);
  o.seed = 43;
  const auto other = generate(tiny(ComputeType::kBF16), {{3, 4, 5}}, o);
  EXPECT_NE(one[0].ids, other[0].ids);
}

TEST(Generate, ThresholdUsesFewerPassesAndCachesRun) {
  GenerateOptions o{.gen_length = 32, .block_length = 8, .steps = 32};
  const auto ref = generate(tiny(), {{30, 31}}, o);
  o.threshold = 0.0;  // everything passes: one pass per block
  const auto fast = generate(tiny(), {{30, 31}}, o);
  EXPECT_EQ(fast[0].nfe, 4);
  EXPECT_LT(fast[0].nfe, ref[0].nfe);
  for (CacheMode cache : {CacheMode::kPrefix, CacheMode::kDual}) {
    GenerateOptions c{.gen_length = 32, .block_length = 8, .steps = 32, .cache = cache};
    const auto res = generate(tiny(), {{30, 31}}, c);
    EXPECT_EQ(res[0].nfe, 32);
    EXPECT_EQ(std::count(res[0].ids.begin(), res[0].ids.end(), tiny().config().mask_token_id), 0);
  }
}

TEST(Generate, VariableLengthGrowsBlockByBlockUpToTheMaximum) {
  // With no stop token ever generated (a stop id outside the vocabulary's reach), it runs to
  // max_length; with the stop set to a token it commits, it ends after that block.
  GenerateOptions o{.block_length = 4, .steps = 16, .variable_length = true, .max_length = 16,
                    .stop_tokens = {-7}};
  const auto full = generate(tiny(), {{5 + 1, 9}}, o);
  EXPECT_EQ(full[0].ids.size(), 16u);
  EXPECT_FALSE(full[0].stopped);
  EXPECT_EQ(full[0].nfe, 16);
  o.stop_tokens = {full[0].ids[5]};  // a token generated in the second block
  const auto cut = generate(tiny(), {{5 + 1, 9}}, o);
  EXPECT_TRUE(cut[0].stopped);
  EXPECT_LE(cut[0].canvas.size(), 2u + 8u);
  EXPECT_LT(cut[0].nfe, full[0].nfe);
  EXPECT_EQ(std::find(cut[0].ids.begin(), cut[0].ids.end(), full[0].ids[5]), cut[0].ids.end());
}

TEST(Generate, FindStopCutsAtTheEarliestStopTokenOrString) {
  // Token i decodes to kText[i]; a stop string may begin inside a token or span several.
  static const std::vector<std::string> kText = {"ab", "c", "de", "<eos>", "f\xC3", "\xA9g"};
  GenerateOptions o;
  o.detokenize = [](std::span<const int32_t> ids) {
    std::string s;
    for (int32_t i : ids) s += kText[i];
    return s;
  };
  const std::vector<int32_t> ans = {0, 1, 2, 1, 3, 0};
  o.stop_strings = {"cd"};  // starts at a token boundary, spans tokens 1 and 2
  StopMatch m = find_stop(ans, o, 3);
  EXPECT_TRUE(m.found);
  EXPECT_EQ(m.tokens, 1);
  EXPECT_EQ(m.text, "ab");
  o.stop_strings = {"e", "<eos>"};  // "e" begins inside token 2: whole tokens before it, text up to it
  m = find_stop(ans, o, 3);
  EXPECT_EQ(m.tokens, 2);
  EXPECT_EQ(m.text, "abcd");
  o.stop_strings = {"zz"};  // no string stop; a stop id ends it
  o.stop_tokens = {1};
  m = find_stop(ans, o, 3);
  EXPECT_EQ(m.tokens, 1);
  EXPECT_EQ(m.text, "ab");
  o.stop_tokens.clear();
  m = find_stop(ans, o, 3);  // strings given: the EOS id alone no longer stops
  EXPECT_FALSE(m.found);
  EXPECT_EQ(m.tokens, 6);
  EXPECT_EQ(m.text, "abcdec<eos>ab");
  // A stop right after a token whose text is half of a UTF-8 sequence: the tokens before count.
  o.stop_strings = {"g"};
  m = find_stop(std::vector<int32_t>{0, 4, 5}, o, 3);
  EXPECT_EQ(m.tokens, 2);
  EXPECT_EQ(m.text, "abf\xC3\xA9");
  // Without a tokenizer, the EOS id.
  GenerateOptions ids_only;
  m = find_stop(ans, ids_only, 3);
  EXPECT_EQ(m.tokens, 4);
  EXPECT_TRUE(m.text.empty());
}

TEST(Generate, VariableLengthStepsArePerBlockAndTheLengthFitsTheContext) {
  const Model& m = tiny();
  // Steps per block: 2 steps for blocks of 4 make 2 forward passes per block.
  GenerateOptions o{.block_length = 4, .steps = 2, .variable_length = true, .max_length = 12,
                    .stop_tokens = {-7}};
  auto res = generate(m, {{7, 8, 9}}, o);
  EXPECT_EQ(res[0].nfe, 6);
  EXPECT_EQ(res[0].ids.size(), 12u);
  // A maximum that is no multiple of the block is cut down to whole blocks (eval_illada.py)...
  o.max_length = 10;
  res = generate(m, {{7, 8, 9}}, o);
  EXPECT_EQ(res[0].ids.size(), 8u);
  // ... and to what the context leaves after the prompt.
  const int64_t ctx = m.config().max_sequence_length;
  std::vector<int32_t> long_prompt(static_cast<size_t>(ctx - 6), 7);
  o.max_length = 64;
  res = generate(m, {long_prompt}, o);
  EXPECT_EQ(res[0].ids.size(), 4u);
  long_prompt.resize(static_cast<size_t>(ctx - 3), 7);
  EXPECT_THROW(generate(m, {long_prompt}, o), Error);
}

TEST(Generate, EndThinkBoostStopsOnceTheSequenceIsThere) {
  // A huge boost forces the sequence at the leftmost masked position of each block while it is
  // absent; once the answer holds it, no more boost, so it appears exactly once.
  const std::vector<int32_t> seq = {40, 41};
  GenerateOptions o{.gen_length = 16, .block_length = 4, .steps = 16, .end_think_boost = 1e4,
                    .end_think_power = 0.0, .end_think_ids = seq};
  const auto res = generate(tiny(), {{12, 13, 14}}, o);
  int found = 0;
  for (size_t i = 0; i + 1 < res[0].ids.size(); ++i) found += res[0].ids[i] == 40 && res[0].ids[i + 1] == 41;
  EXPECT_EQ(found, 1);
  EXPECT_EQ(res[0].ids[0], 40);
  EXPECT_EQ(res[0].ids[1], 41);
  o.end_think_boost = 0.0;
  EXPECT_NE(generate(tiny(), {{12, 13, 14}}, o)[0].ids, res[0].ids);
}

TEST(Generate, CancelStopsOneRequestAndTheOthersGoOn) {
  GenerateOptions o{.gen_length = 16, .block_length = 4, .steps = 16};
  const auto alone = generate(tiny(), {{3, 4, 5}}, o);
  int64_t steps_of_0 = 0;
  o.on_step = [&](const StepInfo& s) { steps_of_0 += s.request == 0; };
  o.cancelled = [&](int64_t r) { return r == 0 && steps_of_0 >= 3; };
  const auto res = generate(tiny(), {{1, 2}, {3, 4, 5}}, o);
  EXPECT_TRUE(res[0].cancelled);
  EXPECT_EQ(res[0].nfe, 3);
  EXPECT_GT(std::count(res[0].canvas.begin(), res[0].canvas.end(), tiny().config().mask_token_id), 0);
  EXPECT_FALSE(res[1].cancelled);
  EXPECT_EQ(res[1].ids, alone[0].ids);
}

TEST(Generate, BadOptionsAreClearErrors) {
  auto err = [](const GenerateOptions& o, std::vector<std::vector<int32_t>> p = {{1}}) {
    try {
      generate(tiny(), p, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err({.gen_length = 10, .block_length = 4, .steps = 10}).find("multiple of `block_length`"), std::string::npos);
  EXPECT_NE(err({.gen_length = 8, .block_length = 4, .steps = 3}).find("`steps` (3)"), std::string::npos);
  EXPECT_NE(err({.gen_length = 8, .block_length = 4, .steps = 4}, {{}}).find("empty"), std::string::npos);
  EXPECT_NE(err({.gen_length = 256, .block_length = 8, .steps = 32}).find("max_sequence_length"), std::string::npos);
  EXPECT_NE(err({.gen_length = 8, .block_length = 4, .steps = 4, .cfg_scale = 1.0, .cache = CacheMode::kDual}).find("cfg"), std::string::npos);
  EXPECT_NE(err({.gen_length = 8, .block_length = 4, .steps = 4}, {{1, 500}}).find("token id 500"), std::string::npos);
  EXPECT_NE(err({.gen_length = 8, .block_length = 4, .steps = 4, .temperature = NAN}).find("`temperature`"), std::string::npos);
  EXPECT_NE(err({.gen_length = 8, .block_length = 4, .steps = 4, .end_think_boost = 1, .end_think_ids = {999}})
                .find("`end_think_ids`"), std::string::npos);
  GenerateOptions strings_without_tokenizer{.gen_length = 8, .block_length = 4, .steps = 4, .stop_strings = {"x"}};
  EXPECT_NE(err(strings_without_tokenizer).find("tokenizer"), std::string::npos);
  // The library names its options, never a CLI flag spelling.
  for (const GenerateOptions& o : {GenerateOptions{.gen_length = 10, .block_length = 4, .steps = 10},
                                   GenerateOptions{.gen_length = 8, .block_length = 4, .steps = 4, .cfg_scale = 1.0,
                                                   .cache = CacheMode::kDual},
                                   GenerateOptions{.gen_length = 8, .block_length = 4, .steps = 4, .threshold = 2.0}}) {
    EXPECT_EQ(err(o).find("--"), std::string::npos) << err(o);
  }
}

}  // namespace
}  // namespace illada
