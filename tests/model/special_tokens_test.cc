// The one owner of special ids: a tokenizer alone, a model with its tokenizer, and the error
// when the two disagree.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/special_tokens.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"

namespace illada {
namespace {

const std::string kFixtures = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/";

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

ModelConfig tiny_config() {
  std::ifstream f(kFixtures + "tiny_gqa/config.json");
  return ModelConfig::from_json(nlohmann::json::parse(f), "tiny_gqa");
}

TEST(SpecialTokens, FromATokenizerAndAModel) {
  const auto tok = tokenizer::Tokenizer::load(kFixtures + "generate/tiny_tokenizer");
  const SpecialTokens t = tokenizer_special_tokens(tok);
  EXPECT_EQ(t.mask, 5);
  EXPECT_EQ(t.eos, 1);
  EXPECT_EQ(t.bos, 0);
  EXPECT_EQ(t.eot, 10);
  EXPECT_EQ(t.eos_text, "<|endoftext|>");
  EXPECT_EQ(t.stop_texts(), (std::vector<std::string>{"<|endoftext|>", "<|eot_id|>"}));
  EXPECT_EQ(t.stop_ids(), (std::vector<int32_t>{1, 10}));
  const SpecialTokens m = model_special_tokens(tiny_config(), &tok);  // they agree
  EXPECT_EQ(m.mask, 5);
  EXPECT_EQ(m.eot_text, "<|eot_id|>");
  const SpecialTokens ids_only = model_special_tokens(tiny_config(), nullptr);
  EXPECT_EQ(ids_only.eos, 1);
  EXPECT_TRUE(ids_only.eos_text.empty());
  EXPECT_EQ(ids_only.stop_ids(), std::vector<int32_t>{1});
}

TEST(SpecialTokens, DisagreementIsAnErrorNamingBoth) {
  const auto tok = tokenizer::Tokenizer::load(kFixtures + "generate/tiny_tokenizer");
  ModelConfig c = tiny_config();
  c.mask_token_id = 7;
  try {
    model_special_tokens(c, &tok);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mask_token_id 7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("id 5"), std::string::npos) << e.what();
  }
  c = tiny_config();
  c.eos_token_id = 3;
  EXPECT_THROW(model_special_tokens(c, &tok), Error);
  // A chat tokenizer whose eos_token is <|eot_id|> (the config's EOS still ends text) is fine.
  const std::string json = read_text(kFixtures + "generate/tiny_tokenizer/tokenizer.json");
  const auto chat_tok = tokenizer::Tokenizer::from_json(json, R"({"eos_token": "<|eot_id|>", "mask_token": "<|mdm_mask|>"})");
  EXPECT_EQ(tokenizer_special_tokens(chat_tok).eos, 10);
  EXPECT_NO_THROW(model_special_tokens(tiny_config(), &chat_tok));
}

}  // namespace
}  // namespace illada
