// Native renderings of known chat templates, recognised by their exact Jinja source.
#include "tokenizer/chat_template.h"

#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::tokenizer {
namespace {

// GSAI-ML/LLaDA-8B-Instruct tokenizer_config.json "chat_template" (identical to the first
// Meta-Llama-3-8B-Instruct release).
constexpr std::string_view kLladaJinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
    "%}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

// Later Meta-Llama-3-8B-Instruct release: the assistant header depends on add_generation_prompt.
constexpr std::string_view kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
    "%}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

std::string_view trim_ascii(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string names_list() {
  std::string s;
  for (auto n : chat_template_names()) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

}  // namespace

std::vector<std::string_view> chat_template_names() { return {"llada", "llama3", "none"}; }

std::string_view llada_chat_template_jinja() { return kLladaJinja; }

ChatTemplate ChatTemplate::by_name(std::string_view name) {
  if (name == "llada") return ChatTemplate(ChatTemplateKind::kLlada);
  if (name == "llama3") return ChatTemplate(ChatTemplateKind::kLlama3);
  if (name == "none") return ChatTemplate(ChatTemplateKind::kNone);
  fail("unknown chat template '", name, "' (known: ", names_list(), ")");
}

bool ChatTemplate::recognise(std::string_view jinja, ChatTemplateKind& kind) {
  const std::string_view t = trim_ascii(jinja);
  if (t == kLladaJinja) {
    kind = ChatTemplateKind::kLlada;
    return true;
  }
  if (t == kLlama3Jinja) {
    kind = ChatTemplateKind::kLlama3;
    return true;
  }
  return false;
}

ChatTemplate ChatTemplate::from_config(const TokenizerConfig& config, std::string_view override_name) {
  if (!override_name.empty()) return by_name(override_name);
  if (config.chat_template.empty()) {
    fail("the tokenizer has no chat template (tokenizer_config.json chat_template); pass "
         "--chat-template NAME (one of: ", names_list(), ")");
  }
  ChatTemplateKind kind;
  if (recognise(config.chat_template, kind)) return ChatTemplate(kind);
  std::string head = config.chat_template.substr(0, 80);
  for (char& c : head) {
    if (c == '\n') c = ' ';
  }
  fail("tokenizer_config.json chat_template is a Jinja template illada does not know (\"", head,
       config.chat_template.size() > 80 ? "..." : "", "\"); pass --chat-template NAME to pick "
       "one of: ", names_list());
}

std::string_view ChatTemplate::name() const {
  switch (kind_) {
    case ChatTemplateKind::kLlada:
      return "llada";
    case ChatTemplateKind::kLlama3:
      return "llama3";
    case ChatTemplateKind::kNone:
      return "none";
  }
  return "?";
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatRenderOptions& options) const {
  std::string out;
  if (kind_ == ChatTemplateKind::kNone) {
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i) out += "\n\n";
      out += messages[i].content;
    }
    return out;
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += options.bos_token;
    out += "<|start_header_id|>";
    out += messages[i].role;
    out += "<|end_header_id|>\n\n";
    out += python_strip(messages[i].content);  // Jinja's `trim` is Python's str.strip()
    out += "<|eot_id|>";
  }
  if (kind_ == ChatTemplateKind::kLlada || options.add_generation_prompt) {
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  }
  return out;
}

}  // namespace illada::tokenizer
