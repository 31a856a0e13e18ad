// The evaluation harness: task parsing and answer matching, and scores on a hand-made task
// file equal to scores computed independently with the score functions.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
    return TinyStack{std::move(tok), Model(c, random_weights(c, ComputeType::kF32, 5))};
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
