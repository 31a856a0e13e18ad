// What the C API's opaque handles hold, and the one wrapper every entry point goes through:
// it claims the context, applies its thread count, and turns exceptions into a status and the
// context's message (nothing is thrown across the C boundary).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <utility>

#include "illada/illada.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"

// The model: immutable once loaded, shared by every context.
struct illada_model {
  illada::Model model;
  std::optional<illada::tokenizer::Tokenizer> tokenizer;
  std::string path;
  std::string no_tokenizer_reason;  // why there is no tokenizer, for error messages
  int32_t n_threads = 0;
  illada_log_callback log_callback = nullptr;
  void* log_user_data = nullptr;

  explicit illada_model(illada::Model m) : model(std::move(m)) {}
};

// One request stream: per-call scratch (the forward pass's activations), the last error, the
// thread count. Used by one thread at a time.
struct illada_context {
  const illada_model* model = nullptr;
  int32_t n_threads = 0;
  illada_log_callback log_callback = nullptr;
  void* log_user_data = nullptr;
  std::string error;
  std::atomic<bool> busy{false};
  illada::ForwardState forward_state;  // reused by illada_logits
};

namespace illada::capi {

// An error with its own status (the library's illada::Error maps to INVALID_ARGUMENT).
struct ApiError : Error {
  illada_status status;
  ApiError(illada_status s, const std::string& message) : Error(message), status(s) {}
};

// The tokenizer, or ILLADA_ERROR_NO_TOKENIZER naming what needed it (when `what` is given).
const tokenizer::Tokenizer& need_tokenizer(const illada_model& m, const char* what = nullptr);

// Sends a message to the context's (else the model's) log callback, if any.
void log(const illada_context& ctx, illada_log_level level, const std::string& message);
void log(const illada_model& m, illada_log_level level, const std::string& message);

// OpenMP's thread count for the calling thread during one call (n <= 0: unchanged), restored
// after: the setting is per thread, so contexts in other threads keep theirs.
class ThreadScope {
 public:
  explicit ThreadScope(int n);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_ = 0;
};

// Runs `body` as the call `name` on `ctx`: the status of what it threw (and the message in
// ctx->error), or ILLADA_OK.
illada_status run_status(illada_context* ctx, const char* name, void (*body)(void*), void* closure);

template <class F>
illada_status run(illada_context* ctx, const char* name, F&& body) {
  return run_status(ctx, name, [](void* f) { (*static_cast<F*>(f))(); }, &body);
}

// The status and message of the exception being handled (call inside a catch block).
illada_status current_status(std::string& message);
// `message` into the caller's buffer (NUL terminated, cut to error_size bytes; NULL: nothing).
void copy_message(const std::string& message, char* error, size_t error_size);

// Throws INVALID_ARGUMENT naming the argument when `p` is NULL.
template <class T>
T* need(T* p, const char* what) {
  if (p == nullptr) throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT, str_cat(what, " is NULL"));
  return p;
}

// Copies bytes into a NUL-terminated malloc'ed string (for illada_free).
char* malloc_string(const std::string& s);

}  // namespace illada::capi
