// The demo's seeded synthetic world; see synthetic.h. Facts are stated several times in
// different sentence templates and orders, because a small model learns a fact it can later
// extract only when it has seen it phrased more than one way.
#include "demo/synthetic.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "util/check.h"
#include "util/file.h"
#include "util/rng.h"

namespace illada::demo {
namespace {

// Streams of the counter-based generator, one per purpose.
constexpr uint64_t kStreamWorld = 0xd3a0'0001;
constexpr uint64_t kStreamCorpus = 0xd3a0'0002;
constexpr uint64_t kStreamTasks = 0xd3a0'0003;
constexpr uint64_t kStreamMc = 0xd3a0'0004;

const std::vector<std::string> kFirstNames = {
    "Alva", "Brin", "Cato", "Dara", "Elio", "Fenna", "Gaspar", "Hedda", "Ivo", "Jorun",
    "Kasi", "Lorcan", "Mira", "Nils", "Odile", "Pavel", "Quinta", "Rasmus", "Sela", "Tobin",
    "Ulla", "Vidar", "Wren", "Xenia", "Yorick", "Zelda", "Anouk", "Bastian", "Cosima", "Dorian",
    "Esme", "Florin", "Greta", "Hugo", "Ilse", "Jasper", "Kaja", "Leif", "Maren", "Nico",
    "Orla", "Piet", "Runa", "Soren", "Tilde", "Ugo", "Vera", "Wim", "Ysolde", "Zeno",
    "Aurel", "Bente", "Clio", "Dagny", "Emil", "Frida", "Gunnar", "Halle", "Ines", "Joran",
    "Kirsa", "Linus", "Mette", "Norma"};
const std::vector<std::string> kLastNames = {
    "Brun", "Castell", "Dahl", "Eckart", "Falk", "Grove", "Holm", "Ivers", "Jansen", "Kroll",
    "Lind", "Moser", "Nyberg", "Olsen", "Pryce", "Quist", "Rook", "Strand", "Thorne", "Vance"};
const std::vector<std::string> kMotherNames = {
    "Agnes", "Beatrix", "Clara", "Delia", "Edith", "Flora", "Gilda", "Helga", "Irma", "Judith",
    "Karin", "Lotte", "Magda", "Nora", "Olga", "Paula", "Rosa", "Sigrid", "Thea", "Ursula"};
const std::vector<std::string> kCities = {"Lumbria", "Varsk", "Oddmere", "Pelton",
                                          "Quarrow", "Rivosa", "Tarvik", "Wexholm"};
const std::vector<std::string> kJobs = {"baker", "sailor", "teacher", "miner",
                                        "painter", "doctor", "farmer", "weaver"};

std::string article(const std::string& job) {
  return std::string("aeiou").find(job[0]) != std::string::npos ? "an " + job : "a " + job;
}

// The sentence stating one fact of `p` in template variant `v`.
std::string fact_sentence(const Person& p, int fact, int v) {
  const std::string& n = p.name;
  const std::string a = std::to_string(p.age);
  switch (fact) {
    case 0: {
      const std::string t[] = {n + " lives in " + p.city + ".", n + "'s home is in the city of " + p.city + ".",
                               "The city of " + p.city + " is where " + n + " lives.",
                               n + " has a house in " + p.city + "."};
      return t[v % 4];
    }
    case 1: {
      const std::string t[] = {n + " works as " + article(p.job) + ".", "By trade, " + n + " is " + article(p.job) + ".",
                               n + " earns a living as " + article(p.job) + ".",
                               "The job of " + n + " is " + p.job + "."};
      return t[v % 4];
    }
    case 2: {
      const std::string t[] = {n + "'s mother is " + p.mother + ".", p.mother + " is the mother of " + n + ".",
                               n + " was raised by " + p.mother + ", who is " + n + "'s mother.",
                               "The mother of " + n + " is " + p.mother + "."};
      return t[v % 4];
    }
    default: {
      const std::string t[] = {n + " is " + a + " years old.", n + "'s age is " + a + ".",
                               "At " + a + " years of age, " + n + " is not young or old.",
                               "The age of " + n + " is " + a + "."};
      return t[v % 4];
    }
  }
}

// Up to `n` distinct values from `pool` other than `gold`, in seeded order.
std::vector<std::string> pick_distractors(const std::vector<std::string>& pool, const std::string& gold,
                                          size_t n, Rng& rng) {
  std::vector<std::string> c;
  for (const auto& x : pool) {
    if (x != gold && std::find(c.begin(), c.end(), x) == c.end()) c.push_back(x);
  }
  for (size_t i = c.size(); i > 1; --i) std::swap(c[i - 1], c[rng.below(i)]);
  if (c.size() > n) c.resize(n);
  return c;
}

void person_questions(const SyntheticData& d, const Person& p, Rng& rng, std::vector<QA>& out) {
  std::vector<std::string> names, mothers, ages, abouts;
  for (const auto& q : d.people) {
    names.push_back(q.name);
    mothers.push_back(q.mother);
  }
  for (int da : {-11, -7, -3, 3, 5, 9}) {
    if (p.age + da > 0) ages.push_back(std::to_string(p.age + da));
  }
  const std::string about = p.name + " lives in " + p.city + " and works as " + article(p.job) + ".";
  for (const auto& c : d.cities) {
    for (const auto& j : d.jobs) {
      abouts.push_back(p.name + " lives in " + c + " and works as " + article(j) + ".");
    }
  }
  out.push_back({"city", "Where does " + p.name + " live?", p.city, pick_distractors(d.cities, p.city, 3, rng)});
  out.push_back({"job", "What is " + p.name + "'s job?", p.job, pick_distractors(d.jobs, p.job, 3, rng)});
  out.push_back({"mother", "Who is " + p.name + "'s mother?", p.mother, pick_distractors(mothers, p.mother, 3, rng)});
  out.push_back({"whose_mother", "Whose mother is " + p.mother + "?", p.name, pick_distractors(names, p.name, 3, rng)});
  out.push_back({"age", "How old is " + p.name + "?", std::to_string(p.age),
                 pick_distractors(ages, std::to_string(p.age), 3, rng)});
  out.push_back({"about", "Tell me about " + p.name + ".", about, pick_distractors(abouts, about, 3, rng)});
}

QA arithmetic_question(int a, int b, bool mul, Rng& rng) {
  const int c = mul ? a * b : a + b;
  std::vector<std::string> pool;
  for (int dc : {1, -1, 2, -2, 10, -10, 3}) {
    if (c + dc >= 0) pool.push_back(std::to_string(c + dc));
  }
  const std::string op = mul ? " times " : " plus ";
  return {mul ? "mul" : "add", "What is " + std::to_string(a) + op + std::to_string(b) + "?", std::to_string(c),
          pick_distractors(pool, std::to_string(c), 3, rng)};
}

std::vector<QA> word_questions(const std::string& w, Rng& rng) {
  const std::string rev(w.rbegin(), w.rend());
  std::vector<std::string> perms;
  std::string s = w;
  std::sort(s.begin(), s.end());
  do perms.push_back(s);
  while (std::next_permutation(s.begin(), s.end()));
  perms.push_back(w + w.substr(0, 1));
  std::vector<std::string> letters;
  for (char ch : std::string("abdeklmnoprstu")) letters.push_back(std::string(1, ch));
  return {{"reverse", "What is " + w + " spelled backwards?", rev, pick_distractors(perms, rev, 3, rng)},
          {"first_letter", "What is the first letter of " + w + "?", w.substr(0, 1),
           pick_distractors(letters, w.substr(0, 1), 3, rng)}};
}

void write_lines(const std::string& path, const std::vector<nlohmann::json>& lines) {
  std::string text;
  for (const auto& j : lines) text += j.dump() + "\n";
  write_file_atomic(path, text);
}

}  // namespace

bool is_person_kind(const std::string& k) {
  return k == "city" || k == "job" || k == "mother" || k == "whose_mother" || k == "age" || k == "about";
}

SyntheticData make_synthetic(const SyntheticOptions& o) {
  if (o.n_people < 4 || o.n_people > static_cast<int>(kFirstNames.size())) {
    fail("synthetic data: n_people must be in [4, ", kFirstNames.size(), "], got ", o.n_people);
  }
  SyntheticData d;
  d.cities = kCities;
  d.jobs = kJobs;
  Rng world(o.seed, kStreamWorld);
  std::vector<int> order(kFirstNames.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[world.below(i)]);
  std::set<std::string> mothers;
  const int n_held = std::max(1, static_cast<int>(o.n_people * o.heldout_fraction + 0.5));
  for (int i = 0; i < o.n_people; ++i) {
    Person p;
    const std::string last = kLastNames[world.below(kLastNames.size())];
    p.name = kFirstNames[order[i]] + " " + last;
    do p.mother = kMotherNames[world.below(kMotherNames.size())] + " " + last;
    while (mothers.count(p.mother) && mothers.size() < kMotherNames.size() * kLastNames.size());
    mothers.insert(p.mother);
    p.city = kCities[world.below(kCities.size())];
    p.job = kJobs[world.below(kJobs.size())];
    p.age = 20 + static_cast<int>(world.below(60));
    p.heldout = i >= o.n_people - n_held;
    d.people.push_back(p);
  }

  // Tasks: questions about people, arithmetic, string tasks; each split into trained/held-out.
  Rng tasks(o.seed, kStreamTasks);
  for (const Person& p : d.people) person_questions(d, p, tasks, p.heldout ? d.heldout : d.sft);
  std::vector<std::string> corpus_docs;
  std::vector<std::string> arith_facts;
  const int n_arith_held_max = 16;
  int held_add = 0, held_mul = 0;
  for (int a = 0; a <= o.arithmetic_max; ++a) {
    for (int b = 0; b <= o.arithmetic_max; ++b) {
      for (bool mul : {false, true}) {
        int& held = mul ? held_mul : held_add;
        const bool h = tasks.uniform() < o.arithmetic_heldout && held < n_arith_held_max;
        QA q = arithmetic_question(a, b, mul, tasks);
        if (h) {
          ++held;
          d.heldout.push_back(q);
        } else {
          arith_facts.push_back(std::to_string(a) + (mul ? " times " : " plus ") + std::to_string(b) + " is " +
                                q.answer + ".");
          d.sft.push_back(q);
        }
      }
    }
  }
  std::set<std::string> words;
  const std::string cons = "bdklmnprst", vow = "aeiou";
  while (static_cast<int>(words.size()) < o.n_words) {
    words.insert(std::string{cons[tasks.below(cons.size())], vow[tasks.below(vow.size())],
                             cons[tasks.below(cons.size())]});
  }
  std::vector<std::string> word_list(words.begin(), words.end());
  for (size_t i = word_list.size(); i > 1; --i) std::swap(word_list[i - 1], word_list[tasks.below(i)]);
  const int n_words_held = static_cast<int>(o.n_words * o.words_heldout + 0.5);
  std::vector<std::string> word_facts;
  for (int i = 0; i < o.n_words; ++i) {
    const std::string& w = word_list[i];
    for (QA& q : word_questions(w, tasks)) {
      if (i < n_words_held) {
        d.heldout.push_back(std::move(q));
      } else {
        word_facts.push_back(q.kind == "reverse" ? w + " spelled backwards is " + q.answer + "."
                                                 : "The first letter of " + w + " is " + q.answer + ".");
        d.sft.push_back(std::move(q));
      }
    }
  }

  // Corpus: several biographies per person (every fact once each, templates rotated, order
  // shuffled), question/answer text for the trained people (so the question form is tied to
  // the facts in pre-training too), arithmetic and word facts in small paragraphs.
  Rng cr(o.seed, kStreamCorpus);
  for (int k = 0; k < o.bios_per_person; ++k) {
    for (const Person& p : d.people) {
      int facts[4] = {0, 1, 2, 3};
      for (int i = 3; i > 0; --i) std::swap(facts[i], facts[cr.below(i + 1)]);
      std::string doc;
      for (int f : facts) doc += (doc.empty() ? "" : " ") + fact_sentence(p, f, k + static_cast<int>(cr.below(2)));
      corpus_docs.push_back(doc);
    }
  }
  for (const QA& q : d.sft) {
    if (!is_person_kind(q.kind)) continue;
    corpus_docs.push_back(o.render_qa ? o.render_qa(q.question, q.answer)
                                      : "Question: " + q.question + "\nAnswer: " + q.answer);
  }
  for (auto* facts : {&arith_facts, &word_facts}) {
    for (size_t i = facts->size(); i > 1; --i) std::swap((*facts)[i - 1], (*facts)[cr.below(i)]);
    for (size_t i = 0; i < facts->size(); i += 4) {
      std::string doc;
      for (size_t j = i; j < std::min(i + 4, facts->size()); ++j) doc += (doc.empty() ? "" : " ") + (*facts)[j];
      corpus_docs.push_back(doc);
    }
  }
  for (size_t i = corpus_docs.size(); i > 1; --i) std::swap(corpus_docs[i - 1], corpus_docs[cr.below(i)]);
  for (const auto& doc : corpus_docs) d.corpus += doc + "\n\n";
  d.documents = std::move(corpus_docs);
  return d;
}

std::vector<McQuestion> make_mc(const std::vector<QA>& qas, uint64_t seed) {
  Rng rng(seed, kStreamMc);
  std::vector<McQuestion> out;
  for (const QA& q : qas) {
    McQuestion m{.kind = q.kind, .context = q.question, .choices = q.distractors};
    m.gold = static_cast<int>(rng.below(m.choices.size() + 1));
    m.choices.insert(m.choices.begin() + m.gold, q.answer);
    out.push_back(std::move(m));
  }
  return out;
}

void write_synthetic(const SyntheticData& d, uint64_t seed, const std::string& dir) {
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/corpus.txt", d.corpus);
  std::vector<nlohmann::json> docs, sft, open, mc;
  for (const std::string& doc : d.documents) docs.push_back({{"text", doc}});
  write_lines(dir + "/corpus.jsonl", docs);
  for (const QA& q : d.sft) sft.push_back({{"prompt", q.question}, {"response", q.answer}});
  write_lines(dir + "/sft.jsonl", sft);
  open.push_back({{"header", {{"name", "demo_open"}}}});
  for (size_t i = 0; i < d.heldout.size(); ++i) {
    const QA& q = d.heldout[i];
    open.push_back({{"id", "open-" + std::to_string(i)}, {"type", "gen"}, {"kind", q.kind},
                    {"prompt", q.question}, {"reference", q.answer}, {"match", "exact"}});
  }
  write_lines(dir + "/open.jsonl", open);
  mc.push_back({{"header", {{"name", "demo_mc"}}}});
  const auto mcq = make_mc(d.heldout, seed);
  for (size_t i = 0; i < mcq.size(); ++i) {
    mc.push_back({{"id", "mc-" + std::to_string(i)}, {"kind", mcq[i].kind}, {"context", mcq[i].context},
                  {"choices", mcq[i].choices}, {"gold", mcq[i].gold}});
  }
  write_lines(dir + "/mc.jsonl", mc);
}

}  // namespace illada::demo
