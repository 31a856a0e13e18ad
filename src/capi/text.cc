// The C API's text functions: tokenize, detokenize, token lookup, chat templates, and the
// encoding of a text prompt exactly as `illada generate --prompt [--chat]` does it.
#include <cstdlib>
#include <cstring>
#include <new>

#include "capi/handles.h"
#include "capi/text.h"
#include "tokenizer/chat_template.h"

namespace illada::capi {

std::vector<int32_t> encode_prompt(const illada_model& m, const std::string& text, const illada_prompt_params& p) {
  const auto& tok = need_tokenizer(m, "a text prompt");
  if (!p.chat) return tok.encode(text, true);
  std::vector<tokenizer::ChatMessage> messages;
  if (p.system != nullptr && *p.system != '\0') messages.push_back({"system", p.system});
  messages.push_back({"user", text});
  const auto tmpl = tokenizer::ChatTemplate::from_config(tok.config(), p.chat_template ? p.chat_template : "");
  return tok.encode(tmpl.render(messages, {.bos_token = tok.config().bos_token.value_or("")}), false);
}

int32_t* malloc_ids(std::span<const int32_t> ids) {
  auto* p = static_cast<int32_t*>(std::malloc(std::max<size_t>(1, ids.size()) * sizeof(int32_t)));
  if (p == nullptr) throw std::bad_alloc();
  if (!ids.empty()) std::memcpy(p, ids.data(), ids.size() * sizeof(int32_t));
  return p;
}

std::span<const int32_t> ids_of(const illada_token* ids, size_t n, const char* what) {
  if (n > 0 && ids == nullptr) throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT, str_cat(what, ": ids is NULL with n_ids ", n));
  return {ids, n};
}

}  // namespace illada::capi

using namespace illada;
using namespace illada::capi;

extern "C" {

illada_prompt_params illada_prompt_default_params(void) {
  illada_prompt_params p{};
  p.chat = 0;
  p.chat_template = nullptr;
  p.system = nullptr;
  return p;
}

illada_status illada_tokenize(illada_context* ctx, const char* text, size_t text_length, int32_t add_special_tokens,
                              illada_token** ids, size_t* n_ids) {
  return run(ctx, "illada_tokenize", [&] {
    need(ids, "ids");
    need(n_ids, "n_ids");
    *ids = nullptr;
    *n_ids = 0;
    if (text_length > 0) need(text, "text");
    const auto& tok = need_tokenizer(*ctx->model);
    const auto out = tok.encode(std::string_view(text ? text : "", text_length), add_special_tokens != 0);
    *ids = malloc_ids(out);
    *n_ids = out.size();
  });
}

illada_status illada_detokenize(illada_context* ctx, const illada_token* ids, size_t n_ids,
                                int32_t skip_special_tokens, char** text, size_t* text_length) {
  return run(ctx, "illada_detokenize", [&] {
    need(text, "text");
    *text = nullptr;
    if (text_length) *text_length = 0;
    const auto& tok = need_tokenizer(*ctx->model);
    const std::string s = tok.decode(ids_of(ids, n_ids, "illada_detokenize"), skip_special_tokens != 0);
    *text = malloc_string(s);
    if (text_length) *text_length = s.size();
  });
}

illada_status illada_token_lookup(illada_context* ctx, const char* token, illada_token* id) {
  return run(ctx, "illada_token_lookup", [&] {
    need(token, "token");
    need(id, "id");
    *id = need_tokenizer(*ctx->model).token_to_id(token);
  });
}

illada_status illada_chat_apply(illada_context* ctx, const illada_chat_message* messages, size_t n_messages,
                                const char* template_name, int32_t add_generation_prompt, char** text,
                                size_t* text_length) {
  return run(ctx, "illada_chat_apply", [&] {
    need(text, "text");
    *text = nullptr;
    if (text_length) *text_length = 0;
    if (n_messages > 0) need(messages, "messages");
    const auto& tok = need_tokenizer(*ctx->model);
    std::vector<tokenizer::ChatMessage> msgs;
    for (size_t i = 0; i < n_messages; ++i) {
      if (messages[i].role == nullptr || messages[i].content == nullptr) {
        throw ApiError(ILLADA_ERROR_INVALID_ARGUMENT, str_cat("messages[", i, "]: role or content is NULL"));
      }
      msgs.push_back({messages[i].role, messages[i].content});
    }
    const auto tmpl = tokenizer::ChatTemplate::from_config(tok.config(), template_name ? template_name : "");
    const std::string s = tmpl.render(msgs, {.bos_token = tok.config().bos_token.value_or(""),
                                             .add_generation_prompt = add_generation_prompt != 0});
    *text = malloc_string(s);
    if (text_length) *text_length = s.size();
  });
}

illada_status illada_prompt_encode(illada_context* ctx, const char* text, const illada_prompt_params* params,
                                   illada_token** ids, size_t* n_ids) {
  return run(ctx, "illada_prompt_encode", [&] {
    need(text, "text");
    need(ids, "ids");
    need(n_ids, "n_ids");
    *ids = nullptr;
    *n_ids = 0;
    const auto out = encode_prompt(*ctx->model, text, params ? *params : illada_prompt_default_params());
    *ids = malloc_ids(out);
    *n_ids = out.size();
  });
}

}  // extern "C"
