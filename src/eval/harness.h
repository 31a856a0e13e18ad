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
  // Generation examples. As eval_illada.py: the length is cut to what the context leaves after
  // the prompt and down to whole blocks; the answer ends at the example's stop strings
  // (`until`) or the tokenizer's EOS text, searched in the decoded answer (special tokens kept);
  // `stop_strings` adds more.
  GenerateOptions generation;
  // eval_illada.py's add_bos_token: a BOS before every context and prompt, unless the
  // tokenizer adds one itself (never two), and padd_eos (LikelihoodOptions::append_eos), here
  // for both scoring rules. A task header can turn either on.
  bool add_bos = false;
  bool append_eos = false;
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

// Tokens of a multiple-choice context and continuation, split as eval_illada.py's
// _encode_pair: with add_bos the BOS text goes before the context (unless the tokenizer adds a
// BOS itself); trailing whitespace of the context (Python's rstrip) moves to the
// continuation; both are encoded with the tokenizer's special tokens and the continuation is
// what the whole string encodes to after as many tokens as the context alone has.
void split_context_continuation(const tokenizer::Tokenizer& tok, const std::string& context,
                                const std::string& continuation, bool add_bos,
                                std::vector<int32_t>& ctx_ids, std::vector<int32_t>& cont_ids);

// The BOS id to prepend for add_bos, or -1 when the tokenizer's own post-processor already
// starts every encoding with it. Throws Error when the tokenizer has no BOS token.
int32_t bos_to_add(const tokenizer::Tokenizer& tok);

// An example that cannot be evaluated (longer than the model's context, a choice that
// encodes to no token) is reported through on_result with `skipped` set and counted in
// too_long; the run goes on.
EvalSummary evaluate(const Model& model, const tokenizer::Tokenizer& tok, const TaskFile& task,
                     const EvalOptions& opts,
                     const std::function<void(const ExampleResult&)>& on_result);

}  // namespace illada::eval
