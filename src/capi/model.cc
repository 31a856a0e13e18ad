// The C API's models and contexts: loading (weights, then the model's own tokenizer if it has
// one), the accessors, versions, and the call wrapper of handles.h.
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>

#include "capi/handles.h"
#include "io/gguf.h"

namespace illada::capi {

const tokenizer::Tokenizer& need_tokenizer(const illada_model& m, const char* what) {
  if (!m.tokenizer) {
    throw ApiError(ILLADA_ERROR_NO_TOKENIZER,
                   str_cat(what && *what ? str_cat(what, " needs a tokenizer, and the") : std::string("the"),
                           " model has none (", m.no_tokenizer_reason,
                           "): give token ids, or load the model with a tokenizer (illada_model_params.tokenizer_path)"));
  }
  return *m.tokenizer;
}

void log(const illada_model& m, illada_log_level level, const std::string& message) {
  if (m.log_callback) m.log_callback(level, message.c_str(), m.log_user_data);
}

void log(const illada_context& ctx, illada_log_level level, const std::string& message) {
  if (ctx.log_callback) {
    ctx.log_callback(level, message.c_str(), ctx.log_user_data);
  } else {
    log(*ctx.model, level, message);
  }
}

ThreadScope::ThreadScope(int n) {
  if (n > 0) {
    previous_ = omp_get_max_threads();
    omp_set_num_threads(n);
  }
}

ThreadScope::~ThreadScope() {
  if (previous_ > 0) omp_set_num_threads(previous_);
}

// The status and message of the exception being handled.
illada_status current_status(std::string& message) {
  try {
    throw;
  } catch (const ApiError& e) {
    message = e.what();
    return e.status;
  } catch (const Error& e) {
    message = e.what();
    return ILLADA_ERROR_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    message = "out of memory (the model or the request is too large for this machine)";
    return ILLADA_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    message = str_cat("internal error: ", e.what());
    return ILLADA_ERROR_INTERNAL;
  } catch (...) {
    message = "internal error: an unknown exception";
    return ILLADA_ERROR_INTERNAL;
  }
}

void copy_message(const std::string& message, char* error, size_t error_size) {
  if (error == nullptr || error_size == 0) return;
  const size_t n = std::min(message.size(), error_size - 1);
  std::memcpy(error, message.data(), n);
  error[n] = '\0';
}

namespace {

bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

// Whether a GGUF file carries a tokenizer illada could try to rebuild (tokenizer/gguf_vocab.h).
bool gguf_has_tokenizer(const std::string& path) {
  const auto f = GgufFile::open(path);
  if (f->find("tokenizer.huggingface.json")) return true;
  const GgufValue* v = f->find("tokenizer.ggml.model");
  const std::string* name = v ? v->as_string() : nullptr;
  return name && *name != "none" && *name != "no_vocab";
}

// The tokenizer the params ask for: an explicit path must load; "" means none; NULL means the
// model's own, which may be absent (then the model works on ids).
void load_tokenizer(illada_model& m, const char* tokenizer_path) {
  if (tokenizer_path != nullptr) {
    if (*tokenizer_path == '\0') {
      m.no_tokenizer_reason = "the model was loaded without one (tokenizer_path \"\")";
      return;
    }
    m.tokenizer = tokenizer::Tokenizer::load(tokenizer_path);
    return;
  }
  if (is_directory(m.path)) {
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(m.path) / "tokenizer.json", ec)) {
      m.no_tokenizer_reason = str_cat(m.path, " has no tokenizer.json");
      return;
    }
  } else if (!gguf_has_tokenizer(m.path)) {
    m.no_tokenizer_reason = str_cat(m.path, " carries no tokenizer");
    return;
  }
  m.tokenizer = tokenizer::Tokenizer::load(m.path);
}

}  // namespace

illada_status run_status(illada_context* ctx, const char* name, void (*body)(void*), void* closure) {
  if (ctx == nullptr) return ILLADA_ERROR_INVALID_ARGUMENT;
  bool idle = false;
  if (!ctx->busy.compare_exchange_strong(idle, true, std::memory_order_acquire)) return ILLADA_ERROR_BUSY;
  illada_status status = ILLADA_OK;
  ctx->error.clear();
  try {
    ThreadScope threads(ctx->n_threads > 0 ? ctx->n_threads : ctx->model->n_threads);
    body(closure);
  } catch (...) {
    status = current_status(ctx->error);
    ctx->error = str_cat(name, ": ", ctx->error);
    try {
      log(*ctx, ILLADA_LOG_ERROR, ctx->error);
    } catch (...) {
    }
  }
  ctx->busy.store(false, std::memory_order_release);
  return status;
}

char* malloc_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

}  // namespace illada::capi

using namespace illada;
using namespace illada::capi;

extern "C" {

const char* illada_version(void) {
#define ILLADA_STR2(x) #x
#define ILLADA_STR(x) ILLADA_STR2(x)
  return ILLADA_STR(ILLADA_VERSION_MAJOR) "." ILLADA_STR(ILLADA_VERSION_MINOR) "." ILLADA_STR(ILLADA_VERSION_PATCH);
}

int32_t illada_abi_version(void) { return ILLADA_ABI_VERSION; }

const char* illada_status_name(illada_status status) {
  switch (status) {
    case ILLADA_OK: return "ILLADA_OK";
    case ILLADA_ERROR_INVALID_ARGUMENT: return "ILLADA_ERROR_INVALID_ARGUMENT";
    case ILLADA_ERROR_LOAD: return "ILLADA_ERROR_LOAD";
    case ILLADA_ERROR_NO_TOKENIZER: return "ILLADA_ERROR_NO_TOKENIZER";
    case ILLADA_ERROR_OUT_OF_MEMORY: return "ILLADA_ERROR_OUT_OF_MEMORY";
    case ILLADA_ERROR_CANCELLED: return "ILLADA_ERROR_CANCELLED";
    case ILLADA_ERROR_BUSY: return "ILLADA_ERROR_BUSY";
    case ILLADA_ERROR_INTERNAL: return "ILLADA_ERROR_INTERNAL";
  }
  return "ILLADA_UNKNOWN_STATUS";
}

size_t illada_struct_size(const char* struct_name) {
  if (struct_name == nullptr) return 0;
  const std::string n = struct_name;
#define ILLADA_SIZE(T) \
  if (n == #T) return sizeof(T);
  ILLADA_SIZE(illada_model_params)
  ILLADA_SIZE(illada_context_params)
  ILLADA_SIZE(illada_chat_message)
  ILLADA_SIZE(illada_prompt_params)
  ILLADA_SIZE(illada_tokens)
  ILLADA_SIZE(illada_step)
  ILLADA_SIZE(illada_generate_params)
  ILLADA_SIZE(illada_generation)
  ILLADA_SIZE(illada_score_params)
  ILLADA_SIZE(illada_quantize_params)
#undef ILLADA_SIZE
  return 0;
}

void illada_free(void* ptr) { std::free(ptr); }

illada_model_params illada_model_default_params(void) {
  illada_model_params p{};
  p.dtype = ILLADA_DTYPE_BF16;
  p.n_threads = 0;
  p.tokenizer_path = nullptr;
  p.pack_weights = 1;
  p.check_tensors = 0;
  p.log_callback = nullptr;
  p.log_user_data = nullptr;
  return p;
}

illada_status illada_model_load(const char* path, const illada_model_params* params, illada_model** model,
                                char* error, size_t error_size) {
  copy_message("", error, error_size);
  if (model == nullptr) {
    copy_message("illada_model_load: model (the output handle) is NULL", error, error_size);
    return ILLADA_ERROR_INVALID_ARGUMENT;
  }
  *model = nullptr;
  const illada_model_params p = params ? *params : illada_model_default_params();
  std::string message;
  illada_status status = ILLADA_OK;
  try {
    if (path == nullptr || *path == '\0') throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT, "path is NULL or empty");
    if (p.dtype != ILLADA_DTYPE_BF16 && p.dtype != ILLADA_DTYPE_F32) {
      throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT, str_cat("dtype ", static_cast<int>(p.dtype),
                                                            " is not ILLADA_DTYPE_BF16 (0) or ILLADA_DTYPE_F32 (1)"));
    }
    if (p.n_threads < 0) {
      throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT, str_cat("n_threads ", p.n_threads, " is negative (0: the default)"));
    }
    if (p.pack_weights < 0 || p.pack_weights > 2) {
      throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT,
                     str_cat("pack_weights ", p.pack_weights, " is not 0 (plain), 1 (chunks, the default) or 2 (whole)"));
    }
    ThreadScope threads(p.n_threads);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      auto m = std::make_unique<illada_model>(
          Model::load(path, p.dtype == ILLADA_DTYPE_F32 ? ComputeType::kF32 : ComputeType::kBF16,
                      p.pack_weights != 0, p.check_tensors != 0,
                      p.pack_weights == 2 ? WeightsLayout::kWhole : WeightsLayout::kChunks));
      m->path = path;
      m->n_threads = p.n_threads;
      m->log_callback = p.log_callback;
      m->log_user_data = p.log_user_data;
      load_tokenizer(*m, p.tokenizer_path);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const ModelConfig& c = m->model.config();
      log(*m, ILLADA_LOG_INFO,
          str_cat("loaded ", path, ": ", c.n_layers, " layers, d_model ", c.d_model, ", ", c.n_params(),
                  " parameters, ", compute_type_name(m->model.dtype()), ", ",
                  m->tokenizer ? "with tokenizer" : m->no_tokenizer_reason.c_str(), " (", secs, " s)"));
      *model = m.release();
    } catch (const Error& e) {
      if (dynamic_cast<const ApiError*>(&e)) throw;
      throw ApiError(ILLADA_ERROR_LOAD, e.what());
    }
  } catch (...) {
    status = current_status(message);
    message = str_cat("illada_model_load: ", message);
    if (p.log_callback) p.log_callback(ILLADA_LOG_ERROR, message.c_str(), p.log_user_data);
  }
  copy_message(message, error, error_size);
  return status;
}

void illada_model_free(illada_model* model) { delete model; }

int64_t illada_model_n_vocab(const illada_model* m) { return m ? m->model.config().embedding_size : 0; }
int64_t illada_model_max_sequence_length(const illada_model* m) {
  return m ? m->model.config().max_sequence_length : 0;
}
int64_t illada_model_n_params(const illada_model* m) { return m ? m->model.config().n_params() : 0; }
illada_token illada_model_mask_token(const illada_model* m) { return m ? m->model.config().mask_token_id : -1; }
illada_token illada_model_eos_token(const illada_model* m) { return m ? m->model.config().eos_token_id : -1; }
illada_dtype illada_model_dtype(const illada_model* m) {
  return m && m->model.dtype() == ComputeType::kF32 ? ILLADA_DTYPE_F32 : ILLADA_DTYPE_BF16;
}
int32_t illada_model_has_tokenizer(const illada_model* m) { return m && m->tokenizer ? 1 : 0; }

illada_context_params illada_context_default_params(void) {
  illada_context_params p{};
  p.n_threads = 0;
  p.log_callback = nullptr;
  p.log_user_data = nullptr;
  return p;
}

illada_status illada_context_new(const illada_model* model, const illada_context_params* params,
                                 illada_context** context) {
  if (context == nullptr) return ILLADA_ERROR_INVALID_ARGUMENT;
  *context = nullptr;
  if (model == nullptr) return ILLADA_ERROR_INVALID_ARGUMENT;
  const illada_context_params p = params ? *params : illada_context_default_params();
  if (p.n_threads < 0) return ILLADA_ERROR_INVALID_ARGUMENT;
  auto* ctx = new (std::nothrow) illada_context;
  if (ctx == nullptr) return ILLADA_ERROR_OUT_OF_MEMORY;
  ctx->model = model;
  ctx->n_threads = p.n_threads;
  ctx->log_callback = p.log_callback;
  ctx->log_user_data = p.log_user_data;
  *context = ctx;
  return ILLADA_OK;
}

void illada_context_free(illada_context* context) { delete context; }

const char* illada_context_error(const illada_context* context) {
  return context ? context->error.c_str() : "illada_context_error: context is NULL";
}

}  // extern "C"
