// BPE trainer: exact vocabulary size, determinism, the files load in illada and encode
// identically in the JavaScript references (committed outputs and live), and input errors.
//
// tests/fixtures/tokenizer/trained/ holds a tokenizer trained on corpus.json with
// vocab_size 700. To refresh it after an intended change of the trainer:
//   ILLADA_UPDATE_FIXTURES=1 ./tokenizer_tests --gtest_filter='BpeTrainer.*'
//   tools/tokenizer/regen_fixtures.sh
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kFixtures = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/tokenizer";

std::string training_text() {
  std::string text;
  for (const json& t : json::parse(testing::read_file(kFixtures + "/corpus.json"))) text += t.get<std::string>() + "\n";
  return text;
}

BpeTrainer train_fixture() {
  BpeTrainer trainer({.vocab_size = 700});
  trainer.add_text(training_text());
  trainer.train();
  return trainer;
}

std::string out_dir(const std::string& name) {
  const std::string d = std::string(ILLADA_BINARY_DIR) + "/test_tmp/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(BpeTrainer, ExactSizeSpecialTokensAndRoundTrip) {
  const BpeTrainer trainer = train_fixture();
  const std::string dir = out_dir("trained");
  trainer.save(dir);
  const Tokenizer tok = Tokenizer::load(dir);
  EXPECT_EQ(tok.vocab_size(), 700);
  EXPECT_EQ(trainer.vocab().size() + 16, 700u);  // 6 special + 10 reserved tokens
  EXPECT_EQ(trainer.merges().size(), 700u - 256 - 16);
  EXPECT_EQ(tok.token_to_id("<|startoftext|>"), 684);
  EXPECT_EQ(tok.token_to_id("<|reserved_token_9|>"), 699);
  const TokenizerConfig& c = tok.config();
  EXPECT_EQ(c.bos_id, tok.token_to_id("<|startoftext|>"));
  EXPECT_EQ(c.eos_id, tok.token_to_id("<|endoftext|>"));
  EXPECT_EQ(c.mask_id, tok.token_to_id("<|mdm_mask|>"));
  EXPECT_EQ(ChatTemplate::from_config(c).name(), "llada");
  for (const json& t : json::parse(testing::read_file(kFixtures + "/corpus.json"))) {
    const std::string s = t.get<std::string>();
    EXPECT_EQ(tok.decode(tok.encode(s, true)), s);
  }
  EXPECT_EQ(tok.encode("<|mdm_mask|><|eot_id|>", false),
            (std::vector<int32_t>{tok.token_to_id("<|mdm_mask|>"), tok.token_to_id("<|eot_id|>")}));
  // Merges are learned from text: frequent words become single tokens.
  EXPECT_EQ(tok.encode(" the", false).size(), 1u);
}

TEST(BpeTrainer, DeterministicAndMatchesCommittedFixture) {
  const BpeTrainer a = train_fixture();
  const BpeTrainer b = train_fixture();
  ASSERT_EQ(a.tokenizer_json(), b.tokenizer_json());
  const std::string fixture = kFixtures + "/trained/tokenizer.json";
  if (std::getenv("ILLADA_UPDATE_FIXTURES")) {
    a.save(kFixtures + "/trained");
    GTEST_SKIP() << "rewrote " << fixture;
  }
  EXPECT_EQ(a.tokenizer_json(), testing::read_file(fixture))
      << "the trainer's output changed; if intended, refresh with ILLADA_UPDATE_FIXTURES=1 (see file comment)";
  EXPECT_EQ(a.tokenizer_config_json(), testing::read_file(kFixtures + "/trained/tokenizer_config.json"));
}

// Compares illada's encoding of the corpus with a js_encode.mjs output.
void expect_same_ids(const Tokenizer& tok, const json& corpus, const json& ref, const std::string& label) {
  const json& cases = ref.at("cases");
  ASSERT_EQ(cases.size(), corpus.size()) << label;
  int bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto want = cases[i].at("ids").get<std::vector<int32_t>>();
    const auto got = tok.encode(corpus[i].get<std::string>(), ref.at("add_special_tokens").get<bool>());
    if (got != want && ++bad < 10) ADD_FAILURE() << label << ": mismatch on " << corpus[i].dump();
  }
  EXPECT_EQ(bad, 0) << label;
}

TEST(BpeTrainer, EncodesLikeTheReferencesCommitted) {
  const Tokenizer tok = Tokenizer::load(kFixtures + "/trained");
  const json corpus = json::parse(testing::read_file(kFixtures + "/corpus.json"));
  for (const char* f : {"trained/hf.json", "trained/lenml.json"}) {
    expect_same_ids(tok, corpus, json::parse(testing::read_file(kFixtures + "/" + f)), f);
  }
}

TEST(BpeTrainer, EncodesLikeTheReferencesLive) {
  ASSERT_TRUE(testing::node_available());
  const std::string dir = out_dir("trained_live");
  train_fixture().save(dir);
  const Tokenizer tok = Tokenizer::load(dir);
  const json corpus = json::parse(testing::read_file(kFixtures + "/corpus.json"));
  for (const char* impl : {"hf", "lenml"}) {
    std::string out;
    const std::string cmd = "node " + testing::source_dir() + "/tools/tokenizer/js_encode.mjs --impl " + impl +
                            " --tokenizer " + dir + " --corpus " + kFixtures + "/corpus.json";
    ASSERT_EQ(testing::run_command(cmd, out), 0) << cmd;
    expect_same_ids(tok, corpus, json::parse(out), impl);
  }
}

TEST(BpeTrainer, BadInput) {
  EXPECT_THROW(BpeTrainer({.vocab_size = 200}), Error);  // below 256 + specials
  BpeTrainer tiny({.vocab_size = 5000});
  tiny.add_text("just a few words");
  try {
    tiny.train();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab-size can be at most"), std::string::npos) << e.what();
  }
  BpeTrainer t({.vocab_size = 300});
  EXPECT_THROW(t.add_file("/nonexistent/input.txt"), Error);
  EXPECT_THROW(BpeTrainer({.special_tokens = {"<a>", "<a>"}}), Error);
}

TEST(BpeTrainer, SpecialTokensInTextAreNotLearned) {
  BpeTrainer t({.vocab_size = 256 + 6 + 5, .reserved_tokens = 0});
  std::string text;
  for (int i = 0; i < 50; ++i) text += "<|eot_id|>";
  text += "aaaa bbbb";
  t.add_text(text);
  t.train();
  for (size_t i = 256; i < t.vocab().size(); ++i) EXPECT_EQ(t.vocab()[i].find('|'), std::string::npos) << t.vocab()[i];
}

}  // namespace
}  // namespace illada::tokenizer
