// The demo's tokenizer and corpus keep an answer in the same tokens as the facts it comes from:
// an SFT answer starts right after the assistant header's "\n\n", a fact names the same word
// after a space. With Llama-3's split regex these are different tokens ("Lumbria" vs
// " Lumbria") and the small demo model answered open questions about held-out people at
// chance; the demo's pattern makes them one token.
#include <gtest/gtest.h>

#include <algorithm>

#include "demo/demo.h"
#include "demo/synthetic.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"

namespace illada::demo {
namespace {

// Every merge the text allows (`vocab_size`), so each word of it is one token.
tokenizer::Tokenizer train_tokenizer(const std::string& pattern, const std::string& text, int32_t vocab_size) {
  tokenizer::BpeTrainer bpe({.vocab_size = vocab_size, .split_pattern = pattern});
  bpe.add_text(text);
  bpe.train();
  return tokenizer::Tokenizer::from_json(bpe.tokenizer_json(), bpe.tokenizer_config_json());
}

// The answer's tokens as SFT and generation see them: everything after the rendered prompt.
std::vector<int32_t> answer_tokens(const tokenizer::Tokenizer& tok, const std::string& q, const std::string& a) {
  const std::vector<int32_t> prompt = tok.encode(render_chat_qa(q, ""), false);
  const std::vector<int32_t> whole = tok.encode(render_chat_qa(q, a), false);
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), whole.begin()));
  return {whole.begin() + static_cast<std::ptrdiff_t>(prompt.size()), whole.end()};
}

bool contains(const std::vector<int32_t>& hay, const std::vector<int32_t>& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

TEST(DemoTokenizer, AnAnswerHasTheTokensOfTheFactItComesFrom) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "Alva Brun lives in Lumbria. Cato Dahl lives in Varsk and works as a baker.\n\n";
  const std::string fact = "Alva Brun lives in Lumbria.";
  const auto demo_tok = train_tokenizer(std::string(demo_split_pattern()), text, 312);
  EXPECT_TRUE(contains(demo_tok.encode(fact, false), answer_tokens(demo_tok, "Where does Alva Brun live?", "Lumbria")));
  EXPECT_TRUE(
      contains(demo_tok.encode(fact, false), answer_tokens(demo_tok, "Tell me about Alva Brun.", "Alva Brun")));
  // What the demo avoids: with Llama-3's regex the answer's first token never occurs in facts.
  const auto llama_tok = train_tokenizer(std::string(tokenizer::kLlama3Pattern), text, 322);
  EXPECT_FALSE(
      contains(llama_tok.encode(fact, false), answer_tokens(llama_tok, "Where does Alva Brun live?", "Lumbria")));
}

TEST(DemoTokenizer, TrainedQuestionsAreInTheCorpusInTheChatFormat) {
  const SyntheticData d = make_synthetic({.seed = 2, .render_qa = render_chat_qa});
  const std::string& corpus = d.corpus;
  int person_sft = 0;
  for (const QA& q : d.sft) {
    if (!is_person_kind(q.kind)) continue;
    ++person_sft;
    EXPECT_NE(std::find(d.documents.begin(), d.documents.end(), render_chat_qa(q.question, q.answer)),
              d.documents.end())
        << q.question;
  }
  EXPECT_GT(person_sft, 100);
  for (const QA& q : d.heldout) EXPECT_EQ(corpus.find(q.question), std::string::npos) << q.question;
}

}  // namespace
}  // namespace illada::demo
