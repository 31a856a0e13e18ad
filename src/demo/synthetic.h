// The demo's built-in data: a seeded world of fictional people (home city, job, mother, age),
// arithmetic and short string tasks, stated as a pre-training corpus, an SFT set of questions
// and answers, and held-out open and multiple-choice questions (no downloads). Everything is a
// pure function of the options (seed included).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace illada::demo {

struct SyntheticOptions {
  uint64_t seed = 1;
  int n_people = 64;            // fictional people (at most the number of first names)
  double heldout_fraction = 0.25;  // people whose questions are never trained on
  int bios_per_person = 4;      // paragraphs per person in the corpus, each in other templates
  int arithmetic_max = 12;      // operands of sums and products in [0, arithmetic_max]
  double arithmetic_heldout = 0.2;  // operand pairs kept out of training
  int n_words = 40;             // 3-letter words for the string tasks
  double words_heldout = 0.25;
  // How a trained question and its answer are written into the pre-training corpus. Empty:
  // "Question: ...\nAnswer: ...". The demo passes its chat template, so that pre-training
  // sees the answers in the exact form (and tokens) that SFT and generation use.
  std::function<std::string(const std::string& question, const std::string& answer)> render_qa;
};

struct Person {
  std::string name;    // "Alva Brun" (first names are unique)
  std::string city;
  std::string job;
  std::string mother;  // full name; mothers are not people of the world themselves
  int age = 0;
  bool heldout = false;
};

// One question with its exact answer. `kind` names the family (city, job, mother, whose_mother,
// age, about, add, mul, reverse, first_letter); `distractors` are plausible wrong answers
// (different from `answer`) for multiple choice.
struct QA {
  std::string kind;
  std::string question;
  std::string answer;
  std::vector<std::string> distractors;
};

struct SyntheticData {
  std::vector<Person> people;
  std::vector<std::string> cities, jobs;
  std::vector<std::string> documents;  // pre-training documents, in corpus order
  std::string corpus;               // the documents, each followed by a blank line
  std::vector<QA> sft;              // trained questions (prompt/response)
  std::vector<QA> heldout;          // never trained on; their facts are in the corpus
};

SyntheticData make_synthetic(const SyntheticOptions& opts);

// Kinds asked about held-out people (the "simplest" is city).
bool is_person_kind(const std::string& kind);

// Files in `dir` (created): corpus.txt, corpus.jsonl (one {"text"} per document: exact even
// where a rendered question contains a blank line), sft.jsonl ({"prompt","response"}), open.jsonl
// (generation task lines, exact match) and mc.jsonl (multiple-choice task lines with three
// distractors; the gold position is drawn from the seed), in docs/eval.md's format. Each task
// line also carries "kind". Throws Error if a file cannot be written.
void write_synthetic(const SyntheticData& data, uint64_t seed, const std::string& dir);

// The multiple-choice form of a held-out question: choices with the gold at a seeded position.
struct McQuestion {
  std::string kind, context;
  std::vector<std::string> choices;
  int gold = 0;
};
std::vector<McQuestion> make_mc(const std::vector<QA>& qas, uint64_t seed);

}  // namespace illada::demo
