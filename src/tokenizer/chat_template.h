// Chat templates: the Jinja templates of tokenizer_config.json that illada recognises and
// renders natively (no Jinja engine). An unrecognised template is an error that suggests
// choosing one by name, never a silently wrong prompt.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_config.h"

namespace illada::tokenizer {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

struct ChatRenderOptions {
  std::string bos_token;              // rendered where the template says {{ bos_token }}
  bool add_generation_prompt = true;  // honoured by templates that test it (llama3, none)
};

enum class ChatTemplateKind {
  // LLaDA-8B-Instruct (also the first Meta-Llama-3-8B-Instruct release): bos_token before the
  // first message only; each message "<|start_header_id|>{role}<|end_header_id|>\n\n"
  // + content.strip() + "<|eot_id|>"; always ends with the assistant header (the Jinja emits
  // it unconditionally, so add_generation_prompt is ignored).
  kLlada,
  // Later Meta-Llama-3-Instruct template: as kLlada, but the assistant header only when
  // add_generation_prompt is set.
  kLlama3,
  // No template: message contents joined by "\n\n" (for base models).
  kNone,
};

class ChatTemplate {
 public:
  explicit ChatTemplate(ChatTemplateKind kind) : kind_(kind) {}

  // The template named `name` (llada, llama3, none); throws illada::Error for other names.
  static ChatTemplate by_name(std::string_view name);

  // `override_name` if non-empty, else the template recognised from config.chat_template.
  // Throws illada::Error when there is no template or it is not one illada knows.
  static ChatTemplate from_config(const TokenizerConfig& config, std::string_view override_name = {});

  // Recognises a Jinja template's source text; false if unknown.
  static bool recognise(std::string_view jinja, ChatTemplateKind& kind);

  ChatTemplateKind kind() const { return kind_; }
  std::string_view name() const;

  std::string render(std::span<const ChatMessage> messages, const ChatRenderOptions& options) const;

 private:
  ChatTemplateKind kind_;
};

// The names accepted by ChatTemplate::by_name, for help texts.
std::vector<std::string_view> chat_template_names();

// The Jinja source of LLaDA-8B-Instruct's chat template (written by the BPE trainer).
std::string_view llada_chat_template_jinja();

}  // namespace illada::tokenizer
