// The evaluation harness: task parsing and answer matching, and scores on a hand-made task
// file equal to scores computed independently with the score functions.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../tokenizer/test_util.h"
#include "eval/harness.h"
#include "tokenizer/bpe_trainer.h"
#include "util/check.h"

namespace illada::eval {
namespace {

namespace fs = std::filesystem;

TEST(Task, NumbersAreExtractedAsGsm8kAnswers) {
  EXPECT_EQ(extract_number("so the total is 1,234 apples"), "1234");
  EXPECT_EQ(extract_number("#### 72"), "72");
  EXPECT_EQ(extract_number("it costs $18.50, not 3"), "3");
  EXPECT_EQ(extract_number("answer: -4.0"), "-4");
  EXPECT_EQ(extract_number("none here"), "");
}

TEST(Task, MatchingRespectsStopsAndRules) {
  Example e{.kind = ExampleKind::kGeneration, .reference = "Paris", .stop = {"\n"}};
  EXPECT_TRUE(answer_matches(e, " Paris\nand more"));
  EXPECT_FALSE(answer_matches(e, "Paris, France"));
  Example n{.kind = ExampleKind::kGeneration, .reference = "Natalia sold 72 clips.\n#### 72",
            .match = AnswerMatch::kNumeric};
  EXPECT_TRUE(answer_matches(n, "She sold 48 + 24 = 72 clips."));
  EXPECT_FALSE(answer_matches(n, "She sold 71 clips."));
}

class TaskFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("illada_eval_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(TaskFileTest, MalformedLinesAreReportedByLineOrFatal) {
  const std::string path = write("t.jsonl",
                                 "{\"header\": {\"name\": \"demo\"}}\n"
                                 "{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"gold\": 1}\n"
                                 "{not json\n"
                                 "\n"
                                 "{\"context\": \"b\", \"choices\": [\"x\", \"y\"], \"gold\": 5}\n"
                                 "{\"type\": \"gen\", \"prompt\": \"p\", \"reference\": \"r\"}\n");
  const TaskFile t = load_task(path, false);
  EXPECT_EQ(t.header.name, "demo");
  ASSERT_EQ(t.examples.size(), 2u);
  EXPECT_EQ(t.examples[0].line, 2);
  EXPECT_EQ(t.examples[1].kind, ExampleKind::kGeneration);
  ASSERT_EQ(t.errors.size(), 2u);
  EXPECT_NE(t.errors[0].find("line 3"), std::string::npos);
  EXPECT_NE(t.errors[1].find("line 5: 'gold' = 5"), std::string::npos);
  EXPECT_THROW(load_task(path, true), Error);
}

// split_context_continuation == eval_illada.py's _encode_pair run on Hugging Face's tokenizers
// library (tools/reference/encode_pair.mjs), on real tokenizer files and awkward boundaries
// (trailing newlines, tabs, ideographic and no-break spaces, U+001F, merges across the cut).
TEST(EncodePair, MatchesTheReleasedFunctionOnHuggingFaceTokenizers) {
  namespace tt = tokenizer::testing;
  ASSERT_TRUE(tt::node_available());
  ASSERT_TRUE(tt::llama3_available());
  const std::string pairs_file = tt::source_dir() + "/tests/fixtures/tokenizer/encode_pairs.json";
  const auto pairs = nlohmann::json::parse(tt::read_file(pairs_file));
  struct Case {
    std::string tokenizer;
    bool add_bos;
  };
  const std::string fx = tt::source_dir() + "/tests/fixtures/tokenizer";
  const Case cases[] = {{tt::llama3_dir(), false},
                        {fx + "/trained", false},
                        {fx + "/trained", true},
                        {fx + "/synthetic/spm_llama2.tokenizer.json", false}};
  int checked = 0;
  for (const Case& c : cases) {
    std::string out;
    const std::string cmd = "node " + tt::source_dir() + "/tools/reference/encode_pair.mjs --tokenizer " +
                            c.tokenizer + " --pairs " + pairs_file + (c.add_bos ? " --add-bos" : "");
    ASSERT_EQ(tt::run_command(cmd, out), 0) << cmd;
    const auto want = nlohmann::json::parse(out);
    ASSERT_EQ(want.size(), pairs.size());
    const auto tok = tokenizer::Tokenizer::load(c.tokenizer);
    for (size_t i = 0; i < pairs.size(); ++i) {
      std::vector<int32_t> ctx, cont;
      split_context_continuation(tok, pairs[i][0], pairs[i][1], c.add_bos, ctx, cont);
      EXPECT_EQ(ctx, want[i]["context_ids"].get<std::vector<int32_t>>()) << c.tokenizer << " pair " << i;
      EXPECT_EQ(cont, want[i]["continuation_ids"].get<std::vector<int32_t>>()) << c.tokenizer << " pair " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4 * static_cast<int>(pairs.size()));
}

// add_bos puts one BOS first; with a tokenizer that adds its own (a TemplateProcessing post-
// processor) the released code would encode two, illada keeps one.
TEST(EncodePair, AddBosNeverDoublesTheBos) {
  namespace tt = tokenizer::testing;
  const std::string json = tt::read_file(tt::source_dir() + "/tests/fixtures/tokenizer/synthetic/spm_llama2.tokenizer.json");
  const auto tok = tokenizer::Tokenizer::from_json(json, R"({"bos_token": "<s>"})");
  const int32_t bos = tok.token_to_id("<s>");
  ASSERT_GE(bos, 0);
  EXPECT_EQ(bos_to_add(tok), -1);
  std::vector<int32_t> ctx, cont;
  split_context_continuation(tok, "Hello there", " world", true, ctx, cont);
  ASSERT_GE(ctx.size(), 2u);
  EXPECT_EQ(ctx[0], bos);
  EXPECT_NE(ctx[1], bos);
  const auto trained = tokenizer::Tokenizer::load(tt::source_dir() + "/tests/fixtures/tokenizer/trained");
  EXPECT_EQ(bos_to_add(trained), trained.token_to_id("<|startoftext|>"));
  split_context_continuation(trained, "Hello there", " world", true, ctx, cont);
  EXPECT_EQ(ctx[0], trained.token_to_id("<|startoftext|>"));
  EXPECT_EQ(std::count(ctx.begin(), ctx.end(), ctx[0]), 1);
  const auto no_bos = tokenizer::Tokenizer::from_json(json, "{}");
  EXPECT_THROW(bos_to_add(no_bos), Error);
}

// A tokenizer trained on a little text and a random model over its vocabulary.
struct TinyStack {
  tokenizer::Tokenizer tok;
  Model model;
};

const TinyStack& tiny_stack() {
  static const TinyStack s = [] {
    tokenizer::BpeTrainer trainer({.vocab_size = 300});
    std::string text;
    for (int i = 0; i < 50; ++i) {
      text += "The cat sat on the mat. A dog ran in the park. Paris is the capital of France. ";
    }
    trainer.add_text(text);
    trainer.train();
    auto tok = tokenizer::Tokenizer::from_json(trainer.tokenizer_json(), trainer.tokenizer_config_json());
    ModelConfig c;
    c.d_model = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.mlp_hidden_size = 64;
    c.vocab_size = c.embedding_size = 300;
    c.mask_token_id = tok.token_to_id("<|mdm_mask|>");
    c.eos_token_id = tok.token_to_id("<|endoftext|>");
    return TinyStack{std::move(tok), Model(c, init_weights(c, ComputeType::kF32, 5))};
  }();
  return s;
}

TEST_F(TaskFileTest, HarnessReproducesIndependentScores) {
  const TinyStack& s = tiny_stack();
  const std::string path =
      write("mc.jsonl",
            "{\"header\": {\"few_shot\": [{\"context\": \"The dog ran in the\", \"continuation\": \"park\"}]}}\n"
            "{\"id\": \"q1\", \"context\": \"The cat sat on the\", \"choices\": [\"mat\", \"park\", \"dog\"], \"gold\": 0}\n"
            "{\"id\": \"q2\", \"context\": \"Paris is the capital of\", \"choices\": [\"France\", \"the cat\"], \"gold\": 0}\n");
  const TaskFile task = load_task(path, true);
  for (McMethod method : {McMethod::kConfidence, McMethod::kLikelihood}) {
    EvalOptions o{.method = method, .likelihood = {.mc_num = 8, .batch_size = 4, .seed = 3}};
    std::vector<ExampleResult> results;
    const EvalSummary sum = evaluate(s.model, s.tok, task, o,
                                     [&](const ExampleResult& r) { results.push_back(r); });
    ASSERT_EQ(results.size(), 2u);
    int64_t correct = 0;
    for (const auto& r : results) {
      const Example& e = *r.example;
      const std::string ctx = "The dog ran in the park\n\n" + e.context;
      ASSERT_EQ(r.scores.size(), e.choices.size());
      for (size_t c = 0; c < e.choices.size(); ++c) {
        std::vector<int32_t> ctx_ids = s.tok.encode(ctx, true);
        std::vector<int32_t> whole = s.tok.encode(ctx + " " + e.choices[c], true);
        ASSERT_TRUE(std::equal(ctx_ids.begin(), ctx_ids.end(), whole.begin()));
        std::vector<int32_t> cont(whole.begin() + ctx_ids.size(), whole.end());
        const double want =
            method == McMethod::kConfidence
                ? confidence_scores(s.model, ctx_ids, {cont})[0].sum
                : log_likelihood(s.model, ctx_ids, cont, o.likelihood);
        EXPECT_NEAR(r.scores[c], want, 1e-9) << e.id << " choice " << c;
      }
      const int64_t best = std::max_element(r.scores.begin(), r.scores.end()) - r.scores.begin();
      EXPECT_EQ(r.predicted, best);
      correct += best == e.gold;
    }
    EXPECT_EQ(sum.n, 2);
    EXPECT_EQ(sum.correct, correct);
  }
}

// The header's add_bos and append_eos (eval_illada.py's add_bos_token and padd_eos) reach both
// scoring rules: scores equal the score functions on BOS + context with an EOS appended.
TEST_F(TaskFileTest, HeaderAddBosAndAppendEosReachTheScores) {
  const TinyStack& s = tiny_stack();
  const std::string example =
      "{\"context\": \"The cat sat on the\", \"choices\": [\"mat\", \"park\"], \"gold\": 0}\n";
  const TaskFile plain = load_task(write("plain.jsonl", example), true);
  const TaskFile flagged =
      load_task(write("flags.jsonl", "{\"header\": {\"add_bos\": true, \"append_eos\": true}}\n" + example), true);
  EXPECT_TRUE(flagged.header.add_bos && flagged.header.append_eos);
  for (McMethod method : {McMethod::kConfidence, McMethod::kLikelihood}) {
    EvalOptions o{.method = method, .likelihood = {.mc_num = 8, .batch_size = 4, .seed = 3}};
    std::vector<double> with, without;
    evaluate(s.model, s.tok, flagged, o, [&](const ExampleResult& r) { with = r.scores; });
    evaluate(s.model, s.tok, plain, o, [&](const ExampleResult& r) { without = r.scores; });
    ASSERT_EQ(with.size(), 2u);
    for (size_t c = 0; c < 2; ++c) {
      std::vector<int32_t> ctx, cont;
      split_context_continuation(s.tok, "The cat sat on the", std::string(" ") + (c ? "park" : "mat"), true, ctx, cont);
      ASSERT_EQ(ctx[0], s.tok.token_to_id("<|startoftext|>"));
      LikelihoodOptions lo = o.likelihood;
      lo.append_eos = true;
      const double want = method == McMethod::kConfidence
                              ? confidence_scores(s.model, ctx, {cont}, {.append_eos = true})[0].sum
                              : log_likelihood(s.model, ctx, cont, lo);
      EXPECT_NEAR(with[c], want, 1e-9) << mc_method_name(method) << " choice " << c;
      EXPECT_NE(with[c], without[c]) << mc_method_name(method) << " choice " << c;
    }
  }
}

// Generation examples end at their `until` strings (searched in the decoded answer) as the
// released generate_until does; the EOS text always ends them.
TEST_F(TaskFileTest, GenerationStopsAtUntilStrings) {
  const TinyStack& s = tiny_stack();
  EvalOptions o{.generation = {.gen_length = 24, .block_length = 4, .steps = 4, .variable_length = true}};
  std::string full;
  const TaskFile free_run = load_task(write("free.jsonl", "{\"type\": \"gen\", \"prompt\": \"The dog\", \"reference\": \"x\"}\n"), true);
  evaluate(s.model, s.tok, free_run, o, [&](const ExampleResult& r) { full = r.generated; });
  ASSERT_GE(full.size(), 6u) << "the random model's answer is too short for this test: " << full;
  const std::string until = full.substr(3, 2);
  const size_t at = full.find(until);
  const TaskFile cut = load_task(write("until.jsonl", "{\"type\": \"gen\", \"prompt\": \"The dog\", \"reference\": \"x\", "
                                                      "\"until\": " + nlohmann::json::array({until}).dump() + "}\n"), true);
  ASSERT_EQ(cut.examples[0].stop, std::vector<std::string>{until});
  std::string got;
  int64_t nfe_cut = 0, nfe_full = 0;
  evaluate(s.model, s.tok, cut, o, [&](const ExampleResult& r) { got = r.generated; nfe_cut = r.nfe; });
  evaluate(s.model, s.tok, free_run, o, [&](const ExampleResult& r) { nfe_full = r.nfe; });
  EXPECT_EQ(got, full.substr(0, at));
  EXPECT_LE(nfe_cut, nfe_full);
}

TEST_F(TaskFileTest, GenerationExamplesUseTheSampler) {
  const TinyStack& s = tiny_stack();
  const std::string path = write("gen.jsonl", "{\"type\": \"gen\", \"prompt\": \"The cat\", \"reference\": \"zzz\"}\n");
  const TaskFile task = load_task(path, true);
  EvalOptions o{.generation = {.gen_length = 8, .block_length = 4, .steps = 4}};
  std::vector<ExampleResult> results;
  const auto sum = evaluate(s.model, s.tok, task, o, [&](const ExampleResult& r) { results.push_back(r); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].nfe, 4);
  const auto direct = generate(s.model, {s.tok.encode("The cat", true)}, o.generation);
  std::vector<int32_t> ids = direct[0].ids;
  ids.erase(std::find(ids.begin(), ids.end(), s.model.config().eos_token_id), ids.end());
  EXPECT_EQ(results[0].generated, s.tok.decode(ids, true));
  EXPECT_EQ(sum.correct, results[0].generated == "zzz" ? 1 : 0);
}

}  // namespace
}  // namespace illada::eval
