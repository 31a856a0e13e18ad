/* illada.h: the C API of illada, a native engine for masked-diffusion language models
 * (LLaDA / iLLaDA). Plain C99; the only header an embedding program needs. Link with
 * -lillada (pkg-config illada, or CMake find_package(illada) -> illada::illada).
 *
 * Handles
 *   illada_model    weights, config and tokenizer of one loaded model. Immutable after
 *                   loading: any number of contexts, in any number of threads, may use one
 *                   model at the same time.
 *   illada_context  what one request owns (activations, the last error message, its thread
 *                   count). One thread at a time per context: use one context per thread. A
 *                   second thread entering a busy context gets ILLADA_ERROR_BUSY, never a race.
 *
 * Errors
 *   Every function that can fail returns an illada_status. The message of a failed call is
 *   kept in the context it was made on (illada_context_error(); valid until the next call on
 *   that context). illada_model_load, which has no context yet, writes its message into a
 *   buffer the caller passes. No function throws, aborts or prints on bad input; the library
 *   keeps no global state (no global error, no global log sink).
 *
 * Memory
 *   Arrays and strings the library allocates for the caller (token ids, text) are freed with
 *   illada_free(); generation results with illada_generation_clear().
 *
 * Versions
 *   ILLADA_ABI_VERSION changes whenever a struct's layout or a function's signature changes;
 *   it is the shared library's SONAME number (libillada.so.ILLADA_ABI_VERSION). Compare
 *   illada_abi_version() with ILLADA_ABI_VERSION to catch a mismatched library at run time.
 *
 * Options structs are plain structs: always start from the *_default_params() function and
 * change the fields you need, so that fields added in a later ABI get their defaults.
 */
#ifndef ILLADA_ILLADA_H_
#define ILLADA_ILLADA_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define ILLADA_API
#elif defined(ILLADA_BUILDING_LIBRARY)
#define ILLADA_API __attribute__((visibility("default")))
#else
#define ILLADA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define ILLADA_VERSION_MAJOR 0
#define ILLADA_VERSION_MINOR 1
#define ILLADA_VERSION_PATCH 0
#define ILLADA_ABI_VERSION 1

/* ------------------------------------------------------------------------------ basics */

typedef int32_t illada_token;

typedef enum illada_status {
  ILLADA_OK = 0,
  ILLADA_ERROR_INVALID_ARGUMENT = 1, /* bad option, token id, prompt, NULL pointer, ...     */
  ILLADA_ERROR_LOAD = 2,             /* the model or tokenizer could not be loaded          */
  ILLADA_ERROR_NO_TOKENIZER = 3,     /* text was given to a model loaded without a tokenizer */
  ILLADA_ERROR_OUT_OF_MEMORY = 4,
  ILLADA_ERROR_CANCELLED = 5,        /* a progress callback asked to stop                    */
  ILLADA_ERROR_BUSY = 6,             /* the context is in use by another thread              */
  ILLADA_ERROR_INTERNAL = 7          /* a bug in illada: please report the message           */
} illada_status;

typedef enum illada_dtype {
  ILLADA_DTYPE_BF16 = 0, /* bf16 matrix products, fp32 accumulation (the fast path) */
  ILLADA_DTYPE_F32 = 1   /* fp32 everywhere (reference results)                     */
} illada_dtype;

typedef enum illada_log_level {
  ILLADA_LOG_ERROR = 0,
  ILLADA_LOG_WARN = 1,
  ILLADA_LOG_INFO = 2,
  ILLADA_LOG_DEBUG = 3
} illada_log_level;

/* Receives the library's messages (loading, notes about options, a summary per call). The
 * message has no trailing newline. Called from the thread that made the call. */
typedef void (*illada_log_callback)(illada_log_level level, const char* message, void* user_data);

/* "0.1.0". */
ILLADA_API const char* illada_version(void);
/* ILLADA_ABI_VERSION of the library actually loaded. */
ILLADA_API int32_t illada_abi_version(void);
/* "ILLADA_OK", "ILLADA_ERROR_LOAD", ... */
ILLADA_API const char* illada_status_name(illada_status status);
/* sizeof of a public struct as the library was built ("illada_generate_params", ...), 0 for
 * an unknown name: lets bindings (ctypes) check their struct layouts at load time. */
ILLADA_API size_t illada_struct_size(const char* struct_name);
/* Frees an array or string the library allocated for the caller. NULL is fine. */
ILLADA_API void illada_free(void* ptr);

/* ------------------------------------------------------------------------------ models */

typedef struct illada_model illada_model;
typedef struct illada_context illada_context;

typedef struct illada_model_params {
  illada_dtype dtype;         /* default ILLADA_DTYPE_BF16                                     */
  int32_t n_threads;          /* compute threads; 0: $OMP_NUM_THREADS or all cores (default)   */
  /* tokenizer.json directory or file. NULL (default): the model's own (tokenizer.json in the
   * model directory, or the vocabulary a GGUF file carries); a model without one loads, and
   * works with token ids alone. A path given here must load. */
  const char* tokenizer_path;
  /* bf16: repack the matrices for faster products. 1 (default): long rows in 512-column chunks,
   * which batch-invariant generation (the default) reads directly; 2: whole, a few percent
   * faster for scoring, but batch-invariant generation then reads the checkpoint's plain
   * weights again (at 8B bf16: about 8 GB more memory); 0: plain, not repacked. */
  int32_t pack_weights;
  int32_t check_tensors;      /* scan every weight for NaN/Inf while loading (default 0)       */
  illada_log_callback log_callback; /* default NULL: no messages                               */
  void* log_user_data;
} illada_model_params;

ILLADA_API illada_model_params illada_model_default_params(void);

/* Loads a Hugging Face style directory (config.json + safetensors, tokenizer.json) or a LLaDA
 * GGUF file. On failure *model is NULL and, when `error` is not NULL, the message (NUL
 * terminated, cut to error_size bytes) is written there. `params` may be NULL (defaults). */
ILLADA_API illada_status illada_model_load(const char* path, const illada_model_params* params,
                                           illada_model** model, char* error, size_t error_size);
/* Frees the model. Every context made on it must be freed first. NULL is fine. */
ILLADA_API void illada_model_free(illada_model* model);

ILLADA_API int64_t illada_model_n_vocab(const illada_model* model); /* logits per position */
ILLADA_API int64_t illada_model_max_sequence_length(const illada_model* model);
ILLADA_API int64_t illada_model_n_params(const illada_model* model);
ILLADA_API illada_token illada_model_mask_token(const illada_model* model);
ILLADA_API illada_token illada_model_eos_token(const illada_model* model);
ILLADA_API illada_dtype illada_model_dtype(const illada_model* model);
ILLADA_API int32_t illada_model_has_tokenizer(const illada_model* model);

/* ---------------------------------------------------------------------------- contexts */

typedef struct illada_context_params {
  int32_t n_threads;                /* 0 (default): the model's n_threads                      */
  illada_log_callback log_callback; /* NULL (default): the model's callback                    */
  void* log_user_data;
} illada_context_params;

ILLADA_API illada_context_params illada_context_default_params(void);

/* `params` may be NULL. Fails only for a NULL model or when out of memory. */
ILLADA_API illada_status illada_context_new(const illada_model* model, const illada_context_params* params,
                                            illada_context** context);
ILLADA_API void illada_context_free(illada_context* context);
/* The message of the last failed call on this context ("" after a success). */
ILLADA_API const char* illada_context_error(const illada_context* context);

/* ------------------------------------------------------------------------------- text */

/* Token ids of `text` (text_length bytes; any bytes). add_special_tokens: what the
 * tokenizer's post-processor adds (a BOS, for instance). *ids is freed with illada_free. */
ILLADA_API illada_status illada_tokenize(illada_context* ctx, const char* text, size_t text_length,
                                         int32_t add_special_tokens, illada_token** ids, size_t* n_ids);
/* Text of `ids`, raw bytes as the tokenizer produces them (may be invalid UTF-8), NUL
 * terminated; *text is freed with illada_free. Unknown ids are skipped. */
ILLADA_API illada_status illada_detokenize(illada_context* ctx, const illada_token* ids, size_t n_ids,
                                           int32_t skip_special_tokens, char** text, size_t* text_length);
/* The id of one token's text ("<|eot_id|>"), or -1 when the vocabulary has none. */
ILLADA_API illada_status illada_token_lookup(illada_context* ctx, const char* token, illada_token* id);

typedef struct illada_chat_message {
  const char* role; /* "system", "user", "assistant", ... */
  const char* content;
} illada_chat_message;

/* The conversation rendered with a chat template: `template_name` NULL for the one in the
 * model's tokenizer_config.json, or "llada", "llama3", "none". The text starts with the BOS
 * text where the template puts it: encode it with add_special_tokens = 0. */
ILLADA_API illada_status illada_chat_apply(illada_context* ctx, const illada_chat_message* messages, size_t n_messages,
                                           const char* template_name, int32_t add_generation_prompt, char** text,
                                           size_t* text_length);

/* How a text prompt becomes ids, exactly as `illada generate --prompt` / `illada score`. */
typedef struct illada_prompt_params {
  int32_t chat;              /* wrap the text as a user message in the chat template (default 0) */
  const char* chat_template; /* NULL (default): the tokenizer's; or "llada", "llama3", "none"  */
  const char* system;        /* chat: a system message first; NULL or "" (default): none       */
} illada_prompt_params;

ILLADA_API illada_prompt_params illada_prompt_default_params(void);

/* Plain: the text encoded with special tokens; chat: the rendered template encoded without.
 * `params` may be NULL. *ids is freed with illada_free. */
ILLADA_API illada_status illada_prompt_encode(illada_context* ctx, const char* text, const illada_prompt_params* params,
                                              illada_token** ids, size_t* n_ids);

/* -------------------------------------------------------------------------- generation */

typedef struct illada_tokens {
  const illada_token* ids;
  size_t n_ids;
} illada_tokens;

typedef enum illada_remasking {
  ILLADA_REMASKING_LOW_CONFIDENCE = 0,
  ILLADA_REMASKING_RANDOM = 1,
  ILLADA_REMASKING_MARGIN = 2,
  ILLADA_REMASKING_ENTROPY = 3
} illada_remasking;

typedef enum illada_cache {
  ILLADA_CACHE_NONE = 0,
  ILLADA_CACHE_PREFIX = 1, /* Fast-dLLM prefix KV cache                    */
  ILLADA_CACHE_DUAL = 2    /* Fast-dLLM dual (prefix and suffix) KV cache  */
} illada_cache;

/* One step of the sampler, for one request of the batch. The pointers are valid during the
 * callback only. */
typedef struct illada_step {
  size_t request;              /* index of the prompt in the batch                     */
  int64_t block;               /* semi-autoregressive block                            */
  int64_t step;                /* step within the block                                */
  const illada_token* canvas;  /* the whole canvas after this step, prompt included;    */
  size_t canvas_length;        /* masked positions hold illada_model_mask_token()       */
  size_t prompt_length;
  const int32_t* committed;    /* canvas positions committed in this step               */
  size_t n_committed;
} illada_step;

/* Return 0 to go on, non-zero to stop this request where it is (its result then has
 * cancelled = 1; the other requests of the batch go on). */
typedef int32_t (*illada_step_callback)(const illada_step* step, void* user_data);

typedef struct illada_generate_params {
  /* Tokens to generate (variable_length: the most). 0 (default): 128, shortened to a multiple
   * of 32 when the longest prompt leaves less room in the model's context. */
  int64_t gen_length;
  /* 0 (default): 32 when it divides gen_length, else gen_length (one block). */
  int64_t block_length;
  /* Denoising steps over the whole canvas, or per block with variable_length. 0 (default):
   * one token per step (gen_length; block_length with variable_length). */
  int64_t steps;
  double temperature;           /* 0 (default): greedy; > 0: Gumbel-max sampling                */
  illada_remasking remasking;   /* confidence measure (default low confidence)                  */
  double cfg_scale;             /* classifier-free guidance (0, default: off)                   */
  /* iLLaDA: one block at a time until the answer holds a stop; the length is cut to whole
   * blocks and to the context (default 0: a fixed canvas of gen_length tokens). */
  int32_t variable_length;
  /* What ends an answer besides the model's own: with a tokenizer the EOS text and
   * <|eot_id|> (when the vocabulary has it) always do; without, the EOS id. */
  const char* const* stop_strings; /* needs a tokenizer */
  size_t n_stop_strings;
  const illada_token* stop_tokens;
  size_t n_stop_tokens;
  /* End-of-thinking boost: logit bonus end_think_boost * progress^end_think_power for the next
   * token of end_think_text at the block's leftmost mask (0, default: off; needs a tokenizer). */
  double end_think_boost;
  double end_think_power;       /* default 2                                                     */
  const char* end_think_text;   /* NULL (default): "</think>"                                   */
  double threshold;             /* Fast-dLLM: commit every confidence >= threshold; < 0 (default -1): off */
  double factor;                /* Fast-dLLM factor rule; <= 0 (default 0): off                 */
  illada_cache cache;           /* default ILLADA_CACHE_NONE                                    */
  int32_t logits_eos_inf;       /* never pick EOS (default 0)                                   */
  int32_t confidence_eos_eot_inf; /* commit EOS/EOT picks last (default 0)                      */
  int32_t allow_mask_prediction;  /* let argmax pick the mask token (official code; default 0) */
  uint64_t seed;                /* temperature > 0 and random remasking (default 0)             */
  illada_step_callback step_callback; /* default NULL                                          */
  void* step_user_data;
} illada_generate_params;

ILLADA_API illada_generate_params illada_generate_default_params(void);

/* The result for one prompt. Arrays are owned by the struct: illada_generation_clear. */
typedef struct illada_generation {
  illada_token* ids;     /* generated tokens, prompt excluded: the whole canvas (fixed length),
                            or up to the first stop (variable length)                            */
  size_t n_ids;
  int64_t answer_length; /* tokens before the first stop (both modes)                          */
  char* text;            /* with a tokenizer: the answer up to the first stop, raw bytes, NUL
                            terminated (special tokens kept); NULL without a tokenizer          */
  size_t text_length;
  int64_t nfe;           /* forward passes that included this request                          */
  int32_t stopped;       /* a stop (token or string) was generated                             */
  int32_t cancelled;     /* the step callback stopped it                                       */
} illada_generation;

/* Generates for a batch of prompts (token ids; see illada_prompt_encode for text), packed into
 * shared forward passes. `results` is an array of n_prompts structs the call fills (their
 * previous contents are not freed). `params` may be NULL (defaults). */
ILLADA_API illada_status illada_generate(illada_context* ctx, const illada_tokens* prompts, size_t n_prompts,
                                         const illada_generate_params* params, illada_generation* results);
/* Frees what illada_generate put into `results` and zeroes them. */
ILLADA_API void illada_generation_clear(illada_generation* results, size_t n_results);

/* ----------------------------------------------------------------------------- scoring */

typedef enum illada_score_method {
  ILLADA_SCORE_CONFIDENCE = 0, /* iLLaDA confidence scoring (deterministic)           */
  ILLADA_SCORE_LIKELIHOOD = 1  /* LLaDA Monte-Carlo estimate of log p(choice | prompt) */
} illada_score_method;

/* After each batch of forward passes: `done` of `total`. Return non-zero to stop the call
 * (it then fails with ILLADA_ERROR_CANCELLED). */
typedef int32_t (*illada_progress_callback)(int64_t done, int64_t total, void* user_data);

typedef struct illada_score_params {
  illada_score_method method; /* default ILLADA_SCORE_CONFIDENCE                               */
  int32_t normalize;          /* confidence: divide by the choice's length (default 0)         */
  int64_t mc_num;             /* likelihood: Monte-Carlo samples per choice (default 128)      */
  int64_t mc_batch_size;      /* likelihood: samples per forward pass; 0 (default): the largest
                                 divisor of mc_num up to 16                                    */
  double cfg_scale;           /* classifier-free guidance, both methods (default 0: off)       */
  int32_t append_eos;         /* one EOS after every model input (eval_illada.py padd_eos)     */
  int32_t add_bos;            /* text prompts: a BOS first unless the tokenizer adds one       */
  uint64_t seed;              /* likelihood masks (default 0)                                  */
  illada_progress_callback progress_callback; /* default NULL                                  */
  void* progress_user_data;
} illada_score_params;

ILLADA_API illada_score_params illada_score_default_params(void);

/* One score per choice (higher is better) into scores[n_choices]. `params` may be NULL. */
ILLADA_API illada_status illada_score(illada_context* ctx, illada_tokens prompt, const illada_tokens* choices,
                                      size_t n_choices, const illada_score_params* params, double* scores);

/* As illada_score, from text as `illada score --prompt P --choices A B`: plain prompts split
 * into context and continuation as lm-evaluation-harness does (the choice after a space);
 * chat prompts render the template and encode each choice alone. `prompt_params` and
 * `params` may be NULL. */
ILLADA_API illada_status illada_score_text(illada_context* ctx, const char* prompt, const char* const* choices,
                                           size_t n_choices, const illada_prompt_params* prompt_params,
                                           const illada_score_params* params, double* scores);

/* ------------------------------------------------------------------------------ logits */

/* One forward pass over `ids` (one sequence): logits [n_ids, illada_model_n_vocab()] as
 * row-major float32 into `logits`, which holds `capacity` floats. */
ILLADA_API illada_status illada_logits(illada_context* ctx, const illada_token* ids, size_t n_ids, float* logits,
                                       size_t capacity);

/* ------------------------------------------------------------------------------ quantising */

typedef struct illada_quantize_params {
  /* The file's element type, as `illada quantize --type`: "q8_0" (default), "q4_0", "q4_k",
   * "q6_k", "q4_k_m" (q4_K with q6_K where llama.cpp puts it), "f32", "f16", "bf16". */
  const char* type;
  /* "PATTERN=TYPE" overrides as `illada quantize --tensor-type` (a regular expression searched in
   * the lower-cased GGUF tensor name; the first match wins). Default NULL / 0: none. */
  const char* const* tensor_types;
  size_t n_tensor_types;
  /* general.name for a model directory (default NULL: the directory's name). A GGUF input keeps
   * its own keys and name, and a name given for it is an error. */
  const char* name;
  int32_t n_threads;          /* 0: $OMP_NUM_THREADS or all cores (default)                    */
  /* Before each tensor is written: `done` of `total` tensors. Non-zero stops the call
   * (ILLADA_ERROR_CANCELLED; no file is written). Default NULL. */
  illada_progress_callback progress_callback;
  void* progress_user_data;
  /* Warnings (what a GGUF vocabulary cannot carry of the tokenizer) and a summary of the file
   * written. Default NULL: no messages. */
  illada_log_callback log_callback;
  void* log_user_data;
} illada_quantize_params;

ILLADA_API illada_quantize_params illada_quantize_default_params(void);

/* Writes the model at `path` (a Hugging Face style directory or a LLaDA GGUF file) as the GGUF
 * file `out_path`, the bytes `illada quantize` writes (and llama.cpp's quantiser for the same
 * weights; docs/gguf.md). The file appears whole or not at all, and a file already at out_path
 * is left as it was on failure. Errors (bad type or pattern, a NaN weight, an unreadable model,
 * out_path being the input) as illada_model_load reports them: the message into `error`
 * (NUL terminated, cut to error_size bytes) when it is not NULL. `params` may be NULL. */
ILLADA_API illada_status illada_quantize(const char* path, const char* out_path, const illada_quantize_params* params,
                                         char* error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* ILLADA_ILLADA_H_ */
