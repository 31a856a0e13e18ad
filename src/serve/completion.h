// From a parsed OpenAI request to what the engine runs, and back: prompts tokenized (the chat
// template for /v1/chat/completions, as `illada generate --chat`; the tokenizer's special tokens
// for /v1/completions text, as `illada generate --prompt`), the sampler options with the
// server's defaults, and the answers of a finished job.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "sample/generate.h"
#include "serve/engine.h"
#include "serve/openai_api.h"
#include "serve/text_stream.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace illada::serve {

// The loaded model as the routes see it.
struct ServedModel {
  const Model* model = nullptr;
  const tokenizer::Tokenizer* tok = nullptr;
  std::optional<tokenizer::ChatTemplate> chat;  // none: /v1/chat/completions answers 400
  std::string name;                             // the id of GET /v1/models
  bool batch_invariant = true;
  // Text to token ids; empty: tok->encode on the calling thread. The server runs it on one
  // worker thread, because the tokenizer keeps a word cache of 6 MiB per calling thread and the
  // HTTP thread pool has dozens of threads.
  std::function<std::vector<int32_t>(const std::string& text, bool add_special)> encode;

  std::vector<int32_t> encode_text(const std::string& text, bool add_special) const {
    return encode ? encode(text, add_special) : tok->encode(text, add_special);
  }
};

struct CompletionPlan {
  std::vector<std::vector<int32_t>> prompts;
  GenerateOptions options;
  int64_t max_tokens = 0;                 // the answer is cut to this many tokens
  std::vector<std::string> stop_strings;  // what ends an answer (as options.stop_strings)
  int64_t prompt_tokens = 0;              // all prompts together (usage)
};

// Throws ApiError (400) naming the field when the request cannot run on this model: a prompt
// over the context, token ids outside the vocabulary, lengths that do not fit, ...
CompletionPlan plan_completion(const CompletionRequest& r, const ServedModel& m);

// The final answer of choice `c` of a finished job (choice c runs prompt c / n).
AnswerText choice_answer(const Job& job, int64_t c, const CompletionPlan& plan, const ServedModel& m);

// The text stream of one choice (held-back streaming of its committed text).
TextStream choice_stream(const CompletionPlan& plan, const ServedModel& m);

}  // namespace illada::serve
