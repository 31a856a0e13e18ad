// The demo's synthetic data: deterministic in the seed, held-out questions answerable from the
// corpus, distractors distinct from the gold, answers of very different lengths.
#include "demo/synthetic.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace illada::demo {
namespace {

int words_in(const std::string& s) {
  int n = 1;
  for (char c : s) n += c == ' ';
  return n;
}

TEST(Synthetic, DeterministicInTheSeed) {
  const SyntheticData a = make_synthetic({.seed = 7}), b = make_synthetic({.seed = 7});
  const SyntheticData c = make_synthetic({.seed = 8});
  EXPECT_EQ(a.corpus, b.corpus);
  ASSERT_EQ(a.heldout.size(), b.heldout.size());
  for (size_t i = 0; i < a.heldout.size(); ++i) {
    EXPECT_EQ(a.heldout[i].question, b.heldout[i].question);
    EXPECT_EQ(a.heldout[i].answer, b.heldout[i].answer);
    EXPECT_EQ(a.heldout[i].distractors, b.heldout[i].distractors);
  }
  EXPECT_NE(a.corpus, c.corpus);
  const auto ma = make_mc(a.heldout, 7), mb = make_mc(b.heldout, 7);
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i].gold, mb[i].gold);
}

TEST(Synthetic, HeldOutPeopleFactsAreInTheCorpusButNotTrained) {
  const SyntheticData d = make_synthetic({.seed = 3});
  std::set<std::string> trained_questions;
  for (const QA& q : d.sft) trained_questions.insert(q.question);
  int person_questions = 0;
  for (const QA& q : d.heldout) {
    EXPECT_FALSE(trained_questions.count(q.question)) << q.question;
    EXPECT_EQ(d.corpus.find("Question: " + q.question), std::string::npos) << q.question;
    if (!is_person_kind(q.kind)) continue;
    ++person_questions;
  }
  EXPECT_GT(person_questions, 30);
  for (const Person& p : d.people) {
    if (!p.heldout) continue;
    // Every fact of a held-out person is stated in the corpus, the city in several templates.
    int city_mentions = 0;
    for (const std::string& s : {p.name + " lives in " + p.city + ".", p.name + "'s home is in the city of " + p.city,
                                 "The city of " + p.city + " is where " + p.name, p.name + " has a house in " + p.city}) {
      city_mentions += d.corpus.find(s) != std::string::npos;
    }
    EXPECT_GE(city_mentions, 2) << p.name;
    EXPECT_NE(d.corpus.find(p.mother), std::string::npos) << p.name;
    EXPECT_NE(d.corpus.find(std::to_string(p.age)), std::string::npos) << p.name;
  }
  // Answers are consistent with the world: the city question of a held-out person.
  for (const QA& q : d.heldout) {
    if (q.kind != "city") continue;
    bool found = false;
    for (const Person& p : d.people) found |= q.question == "Where does " + p.name + " live?" && q.answer == p.city;
    EXPECT_TRUE(found) << q.question;
  }
  // Mothers are unique, so "Whose mother is Y?" has one answer.
  std::set<std::string> mothers;
  for (const Person& p : d.people) EXPECT_TRUE(mothers.insert(p.mother).second) << p.mother;
}

TEST(Synthetic, DistractorsDifferFromTheGold) {
  const SyntheticData d = make_synthetic({.seed = 5});
  for (const auto& m : make_mc(d.heldout, 5)) {
    ASSERT_EQ(m.choices.size(), 4u) << m.context;
    std::set<std::string> distinct(m.choices.begin(), m.choices.end());
    EXPECT_EQ(distinct.size(), m.choices.size()) << m.context;
    ASSERT_GE(m.gold, 0);
    ASSERT_LT(m.gold, 4);
  }
  std::map<int, int> gold_positions;
  for (const auto& m : make_mc(d.heldout, 5)) ++gold_positions[m.gold];
  for (int g = 0; g < 4; ++g) EXPECT_GT(gold_positions[g], 5) << "gold position " << g;
}

TEST(Synthetic, AnswerLengthsVaryWidely) {
  const SyntheticData d = make_synthetic({.seed = 1});
  int one_char = 0, one_word = 0, several_words = 0, long_answers = 0;
  std::set<std::string> kinds;
  for (const QA& q : d.heldout) {
    kinds.insert(q.kind);
    one_char += q.answer.size() == 1;
    one_word += words_in(q.answer) == 1;
    several_words += words_in(q.answer) >= 2;
    long_answers += words_in(q.answer) >= 8;
  }
  const int n = static_cast<int>(d.heldout.size());
  EXPECT_EQ(kinds.size(), 10u);
  EXPECT_GT(one_char, n / 20);
  EXPECT_GT(several_words, n / 5);
  EXPECT_GT(long_answers, n / 20);
  EXPECT_GT(one_word, n / 3);
}

}  // namespace
}  // namespace illada::demo
