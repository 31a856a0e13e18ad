// Chat templates: native renderings equal Jinja2's output (the fixture is rendered by
// tools/tokenizer/render_chat_fixtures.py), recognition of the real LLaDA config, and errors.
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/tokenizer";

TEST(ChatTemplate, MatchesJinja2) {
  const json ref = json::parse(testing::read_file(kFixtures + "/chat_expected.json"));
  ASSERT_GE(ref.at("cases").size(), 20u);
  for (const json& c : ref.at("cases")) {
    std::vector<ChatMessage> messages;
    for (const json& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    const ChatTemplate t = ChatTemplate::by_name(c.at("template").get<std::string>());
    const std::string got = t.render(messages, {.bos_token = c.at("bos_token"),
                                                .add_generation_prompt = c.at("add_generation_prompt")});
    EXPECT_EQ(got, c.at("rendered").get<std::string>()) << c.dump();
  }
}

TEST(ChatTemplate, RecognisesLladaConfig) {
  const TokenizerConfig cfg = TokenizerConfig::parse(
      json::parse(testing::read_file(kFixtures + "/llada/tokenizer_config.json")), "llada/tokenizer_config.json");
  EXPECT_EQ(cfg.bos_token.value_or(""), "<|startoftext|>");
  EXPECT_EQ(cfg.eos_token.value_or(""), "<|endoftext|>");
  EXPECT_FALSE(cfg.add_bos_token);
  const ChatTemplate t = ChatTemplate::from_config(cfg);
  EXPECT_EQ(t.name(), "llada");
  const std::vector<ChatMessage> msgs = {{"user", " Hi "}};
  EXPECT_EQ(t.render(msgs, {.bos_token = *cfg.bos_token, .add_generation_prompt = false}),
            "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(llada_chat_template_jinja(), cfg.chat_template);
}

TEST(ChatTemplate, Llama3PackageUsesTheSameTemplate) {
  ASSERT_TRUE(testing::llama3_available());
  const Tokenizer tok = Tokenizer::load(testing::llama3_dir());
  EXPECT_EQ(ChatTemplate::from_config(tok.config()).name(), "llada");
  // Rendered prompts tokenize with the header tokens recognised as special tokens.
  const std::vector<ChatMessage> msgs = {{"user", "What is 2+2?"}};
  const std::string prompt = ChatTemplate::from_config(tok.config()).render(msgs, {.bos_token = "<|begin_of_text|>"});
  const auto ids = tok.encode(prompt, false);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids[0], 128000);
  EXPECT_EQ(ids[1], tok.token_to_id("<|start_header_id|>"));
  EXPECT_EQ(ids[ids.size() - 2], tok.token_to_id("<|end_header_id|>"));
  EXPECT_EQ(tok.decode(ids), prompt);
}

TEST(ChatTemplate, UnknownTemplatesAreErrors) {
  TokenizerConfig cfg;
  cfg.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
  try {
    ChatTemplate::from_config(cfg);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("does not know"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--chat-template NAME"), std::string::npos) << msg;
    EXPECT_NE(msg.find("llada"), std::string::npos) << msg;
  }
  EXPECT_EQ(ChatTemplate::from_config(cfg, "none").name(), "none");
  EXPECT_THROW(ChatTemplate::by_name("chatml"), Error);
  EXPECT_THROW(ChatTemplate::from_config(TokenizerConfig{}), Error);
  const std::vector<ChatMessage> msgs = {{"user", "a"}, {"assistant", "b"}};
  EXPECT_EQ(ChatTemplate::by_name("none").render(msgs, {}), "a\n\nb");
}

}  // namespace
}  // namespace illada::tokenizer
