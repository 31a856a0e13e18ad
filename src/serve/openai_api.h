// The OpenAI wire format: request bodies of /v1/chat/completions and /v1/completions parsed
// and checked field by field (an error names the field and what was expected, as OpenAI's
// `param`), and the response objects: completions, streamed chunks, usage, error objects.
// Unknown fields are ignored, as OpenAI-compatible servers do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "util/check.h"

namespace illada::serve {

// An error answered with an OpenAI error object:
// {"error": {"message", "type", "param", "code"}} and this HTTP status.
class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string type = "invalid_request_error",
           std::string code = "")
      : Error(message), status_(status), param_(std::move(param)), type_(std::move(type)), code_(std::move(code)) {}
  int status() const { return status_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string param_, type_, code_;
};

nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param = "",
                          const std::string& code = "");

// Limits on what one request may ask for.
struct RequestLimits {
  int64_t max_messages = 256;
  int64_t max_n = 16;        // choices per prompt
  int64_t max_prompts = 16;  // prompts of one /v1/completions request
  int64_t max_stop = 16;     // stop strings
};

enum class Endpoint { kChat, kCompletion };

// A prompt of /v1/completions: text, or token ids.
struct PromptInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

// A completion request after parsing: every field typed and range-checked, defaults not yet
// applied where they depend on the model (lengths).
struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;                                // as sent (informational)
  std::vector<tokenizer::ChatMessage> messages;     // chat
  std::vector<PromptInput> prompts;                 // completions
  std::optional<int64_t> max_tokens;
  double temperature = 0.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false, denoising = false;
  int64_t n = 1;
  // Diffusion settings (extra fields); the defaults are the fast path.
  std::optional<int64_t> steps, block_length;
  bool variable_length = true;
  std::optional<double> threshold = 0.9;  // false in JSON: off
  std::optional<double> factor;
  std::optional<std::string> cache;       // none|prefix|dual; default dual (none with CFG)
  std::string remasking = "low_confidence";
  double cfg_scale = 0.0;
};

// Throws ApiError (400) naming the field at fault.
CompletionRequest parse_completion_request(const std::string& body, Endpoint endpoint, const RequestLimits& limits);

// Parses a JSON object body for the small routes (/tokenize, /detokenize); throws ApiError.
nlohmann::json parse_json_object(const std::string& body);

// One choice's answer and accounting, for the response builders.
struct ChoiceAnswer {
  int64_t index = 0;
  std::string text;
  std::string finish_reason;  // "stop" or "length"
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
  nlohmann::json to_json() const;
};

// The non-streaming response object (chat.completion or text_completion).
nlohmann::json completion_response(Endpoint ep, const std::string& id, int64_t created, const std::string& model,
                                   const std::vector<ChoiceAnswer>& choices, const Usage& usage);

// A streamed chunk (chat.completion.chunk, or text_completion for /v1/completions) with the
// given choices (each an object with index, delta or text, finish_reason); `usage` null: none.
nlohmann::json chunk(Endpoint ep, const std::string& id, int64_t created, const std::string& model,
                     nlohmann::json choices, const nlohmann::json& usage = nullptr);

// One choice entry of a chunk: new text (delta.content or text), the role on the first chunk
// of a chat choice, the finish reason on the last.
nlohmann::json chunk_choice(Endpoint ep, int64_t index, const std::string& text, bool with_role,
                            const std::string& finish_reason = "");

}  // namespace illada::serve
