// Task file parsing and answer matching for the evaluation harness.
#include "eval/task.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "util/check.h"
#include "util/file.h"

namespace illada::eval {
namespace {

using nlohmann::json;

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string get_string(const json& j, const char* key, int64_t line) {
  auto it = j.find(key);
  if (it == j.end()) fail("line ", line, ": missing field '", key, "'");
  if (!it->is_string()) fail("line ", line, ": field '", key, "' must be a string");
  return it->get<std::string>();
}

}  // namespace

Example parse_example(const json& j, int64_t line) {
  if (!j.is_object()) fail("line ", line, ": expected a JSON object");
  Example e;
  e.line = line;
  if (auto it = j.find("id"); it != j.end()) e.id = it->is_string() ? it->get<std::string>() : it->dump();
  if (e.id.empty()) e.id = std::to_string(line);
  const std::string type = j.value("type", j.contains("choices") ? "mc" : "gen");
  if (type == "mc" || type == "multiple_choice") {
    e.kind = ExampleKind::kMultipleChoice;
    e.context = get_string(j, "context", line);
    auto it = j.find("choices");
    if (it == j.end() || !it->is_array() || it->size() < 2) {
      fail("line ", line, ": 'choices' must be an array of at least two strings");
    }
    for (const auto& c : *it) {
      if (!c.is_string()) fail("line ", line, ": every choice must be a string");
      e.choices.push_back(c.get<std::string>());
    }
    auto g = j.find("gold");
    if (g == j.end() || !g->is_number_integer()) fail("line ", line, ": 'gold' must be an integer index");
    e.gold = g->get<int64_t>();
    if (e.gold < 0 || e.gold >= static_cast<int64_t>(e.choices.size())) {
      fail("line ", line, ": 'gold' = ", e.gold, " is not an index into ", e.choices.size(), " choices");
    }
  } else if (type == "gen" || type == "generation") {
    e.kind = ExampleKind::kGeneration;
    e.prompt = get_string(j, "prompt", line);
    e.reference = get_string(j, "reference", line);
    const std::string m = j.value("match", "exact");
    if (m == "exact") {
      e.match = AnswerMatch::kExact;
    } else if (m == "numeric") {
      e.match = AnswerMatch::kNumeric;
    } else {
      fail("line ", line, ": 'match' must be \"exact\" or \"numeric\", got \"", m, "\"");
    }
    // lm-eval-harness calls them "until"; "stop" is the older spelling here.
    for (const char* key : {"until", "stop"}) {
      auto s = j.find(key);
      if (s == j.end()) continue;
      if (!s->is_array()) fail("line ", line, ": '", key, "' must be an array of strings");
      for (const auto& x : *s) {
        if (!x.is_string()) fail("line ", line, ": '", key, "' must be an array of strings");
        e.stop.push_back(x.get<std::string>());
      }
    }
  } else {
    fail("line ", line, ": unknown 'type' \"", type, "\" (expected \"mc\" or \"gen\")");
  }
  return e;
}

TaskFile load_task(const std::string& path, bool strict) {
  const std::string text = read_file(path, {.max_bytes = uint64_t{2} << 30, .allow_stream = true, .what = "task file"});
  check_text(text, path);  // a binary file is not a task file: say so, not "0 of 0 correct"
  TaskFile t;
  int64_t n_lines = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    const int64_t n = ++n_lines;
    if (trim(line).empty()) continue;
    try {
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {
        fail("line ", n, ": invalid JSON (", e.what(), ")");
      }
      if (j.is_object() && j.contains("header")) {
        if (!t.examples.empty()) fail("line ", n, ": the header must be the first line");
        const json& h = j["header"];
        t.header.name = h.value("name", "");
        t.header.target_delimiter = h.value("target_delimiter", " ");
        t.header.fewshot_delimiter = h.value("fewshot_delimiter", "\n\n");
        for (auto [key, field] : {std::pair{"add_bos", &t.header.add_bos}, std::pair{"append_eos", &t.header.append_eos}}) {
          auto it = h.find(key);
          if (it == h.end()) continue;
          if (!it->is_boolean()) fail("line ", n, ": header field '", key, "' must be true or false");
          *field = it->get<bool>();
        }
        for (const auto& s : h.value("few_shot", json::array())) {
          t.header.few_shot.push_back({s.at("context").get<std::string>(),
                                       s.at("continuation").get<std::string>()});
        }
        continue;
      }
      t.examples.push_back(parse_example(j, n));
    } catch (const std::exception& e) {
      const std::string msg = str_cat(path, ": ", e.what());
      if (strict) fail(msg);
      t.errors.push_back(msg);
    }
  }
  if (t.examples.empty()) {
    if (t.errors.empty()) fail(path, ": no examples (the task file is empty; see docs/eval.md for the format)");
    fail(path, ": none of its ", t.errors.size(), " non-empty lines is a valid example; the first: ", t.errors[0]);
  }
  return t;
}

std::string full_context(const TaskHeader& h, const std::string& context) {
  std::string out;
  for (const auto& [c, cont] : h.few_shot) out += c + h.target_delimiter + cont + h.fewshot_delimiter;
  return out + context;
}

std::string extract_number(const std::string& text) {
  std::string last;
  for (size_t i = 0; i < text.size();) {
    const bool sign = text[i] == '-' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]));
    if (!std::isdigit(static_cast<unsigned char>(text[i])) && !sign) {
      ++i;
      continue;
    }
    std::string num;
    if (sign) num += text[i++];
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) ||
                               ((text[i] == ',' || text[i] == '.') && i + 1 < text.size() &&
                                std::isdigit(static_cast<unsigned char>(text[i + 1]))))) {
      if (text[i] != ',') num += text[i];
      ++i;
    }
    last = num;
  }
  if (last.find('.') != std::string::npos) {  // 42.50 -> 42.5, 42.0 -> 42
    while (last.back() == '0') last.pop_back();
    if (last.back() == '.') last.pop_back();
  }
  return last;
}

std::string apply_stops(const std::string& text, const std::vector<std::string>& stops) {
  size_t cut = text.size();
  for (const auto& s : stops) {
    if (s.empty()) continue;
    const size_t p = text.find(s);
    if (p != std::string::npos) cut = std::min(cut, p);
  }
  return text.substr(0, cut);
}

bool answer_matches(const Example& e, const std::string& generated) {
  const std::string out = apply_stops(generated, e.stop);
  if (e.match == AnswerMatch::kNumeric) {
    const std::string want = extract_number(e.reference);
    return !want.empty() && extract_number(out) == want;
  }
  return trim(out) == trim(e.reference);
}

}  // namespace illada::eval
