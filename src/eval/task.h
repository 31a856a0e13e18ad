// Evaluation tasks in illada's JSONL format (docs/eval.md): multiple-choice examples scored by
// likelihood or confidence, and generation examples checked by exact match or numeric answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace illada::eval {

enum class ExampleKind { kMultipleChoice, kGeneration };
enum class AnswerMatch { kExact, kNumeric };  // generation: exact text, or the last number

struct Example {
  ExampleKind kind = ExampleKind::kMultipleChoice;
  std::string id;
  int64_t line = 0;             // 1-based line in the task file
  std::string context;          // multiple choice: text before each choice
  std::vector<std::string> choices;
  int64_t gold = -1;
  std::string prompt;           // generation
  std::string reference;
  AnswerMatch match = AnswerMatch::kExact;
  std::vector<std::string> stop;  // generation: "until" (or "stop") strings that end the answer
};

// Task-wide settings from an optional first line {"header": {...}}.
struct TaskHeader {
  std::string name;
  std::string target_delimiter = " ";     // between context and choice (lm-eval-harness)
  std::string fewshot_delimiter = "\n\n";  // between few-shot examples and the question
  bool add_bos = false;     // eval_illada.py add_bos_token for this task
  bool append_eos = false;  // eval_illada.py padd_eos (ARC-C, HellaSwag in the released setup)
  std::vector<std::pair<std::string, std::string>> few_shot;  // (context, continuation)
};

struct TaskFile {
  TaskHeader header;
  std::vector<Example> examples;
  std::vector<std::string> errors;  // "line N: what is wrong", for lines that were skipped
};

// Reads a task file. Malformed lines are collected in `errors` (skip mode) or thrown as
// illada::Error naming the line (strict mode).
TaskFile load_task(const std::string& path, bool strict);
Example parse_example(const nlohmann::json& j, int64_t line);  // throws Error

// The few-shot prefix followed by the example's context (multiple choice) or prompt.
std::string full_context(const TaskHeader& h, const std::string& context);

// The last number in `text` ("1,234.5" -> "1234.5"), normalised ("42.0" -> "42"); empty if none.
std::string extract_number(const std::string& text);
// Does a generated answer match the reference under the example's rule (after trimming).
bool answer_matches(const Example& e, const std::string& generated);
// The generated text cut at the first stop string.
std::string apply_stops(const std::string& text, const std::vector<std::string>& stops);

}  // namespace illada::eval
