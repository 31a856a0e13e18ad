// The evaluation harness: runs a task file through a model and tokenizer, scoring multiple
// choice by likelihood or confidence and generation examples with any sampler.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/task.h"
#include "sample/generate.h"
#include "score/score.h"
#include "tokenizer/tokenizer.h"

namespace illada::eval {

enum class McMethod { kLikelihood, kConfidence };
McMethod parse_mc_method(const std::string& s);  // likelihood|confidence
const char* mc_method_name(McMethod m);

struct EvalOptions {
  McMethod method = McMethod::kConfidence;
  bool length_normalized = false;  // confidence: divide by the answer length
  LikelihoodOptions likelihood;
  GenerateOptions generation;
  bool chat = false;              // wrap contexts/prompts in the chat template
  std::string chat_template;      // override the template by name
  std::string system;             // system message for chat wrapping
  int64_t limit = 0;              // first N examples only (0: all)
};

struct ExampleResult {
  const Example* example = nullptr;
  std::vector<double> scores;  // per choice
  int64_t predicted = -1;
  bool correct = false;
  std::string generated;       // generation examples
  int64_t generated_tokens = 0;  // generation: answer tokens before the first stop token
  int64_t nfe = 0;
  std::string skipped;         // not evaluated: "line N: why" (longer than the model's context)
};

struct EvalSummary {
  int64_t n = 0, correct = 0, skipped = 0;  // skipped: malformed lines
  int64_t too_long = 0;          // examples skipped because they do not fit the context
  int64_t nfe = 0;               // forward passes over all examples
  int64_t generated_tokens = 0;  // generation examples: answer tokens (stop tokens excluded)
  double accuracy = 0.0;
  double stderr_ = 0.0;  // sqrt(acc (1 - acc) / (n - 1))
};

// Tokens of a multiple-choice context and continuation, split as lm-eval-harness does:
// trailing spaces of the context move to the continuation, the continuation is what the whole
// string encodes to after the context's tokens.
void split_context_continuation(const tokenizer::Tokenizer& tok, const std::string& context,
                                const std::string& continuation, std::vector<int32_t>& ctx_ids,
                                std::vector<int32_t>& cont_ids);

// An example that cannot be evaluated (longer than the model's context, a choice that
// encodes to no token) is reported through on_result with `skipped` set and counted in
// too_long; the run goes on.
EvalSummary evaluate(const Model& model, const tokenizer::Tokenizer& tok, const TaskFile& task,
                     const EvalOptions& opts,
                     const std::function<void(const ExampleResult&)>& on_result);

}  // namespace illada::eval
