// Tokenizer: loads a Hugging Face tokenizer.json (+ tokenizer_config.json) and encodes /
// decodes exactly as the `tokenizers` library does. Supported: BPE models (merges in both
// forms, ignore_merges, byte_fallback, unk/fuse_unk, continuing_subword_prefix,
// end_of_word_suffix); normalizers NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents,
// Replace, Prepend, Append, ByteLevel, Sequence; pre-tokenizers Split, ByteLevel, Metaspace,
// Digits, Whitespace, WhitespaceSplit, Sequence; decoders ByteLevel, Metaspace, ByteFallback,
// Fuse, Strip, Replace, BPEDecoder, Sequence; post-processors TemplateProcessing, ByteLevel,
// BertProcessing, RobertaProcessing, Sequence; added tokens with special / lstrip / rstrip /
// single_word / normalized. Anything else is an illada::Error naming the component.
//
//   auto tok = illada::tokenizer::Tokenizer::load("/models/LLaDA-8B-Instruct");
//   std::vector<int32_t> ids = tok.encode("Hello world", /*add_special_tokens=*/false);
//   std::string text = tok.decode(ids);
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/tokenizer_config.h"

namespace illada::tokenizer {

class Tokenizer {
 public:
  // Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json` (and a
  // `chat_template.jinja` next to them). A path to a tokenizer.json file also works, and so
  // does a GGUF model file (the tokenizer it carries, see tokenizer/gguf_vocab.h).
  // Throws illada::Error for a missing file, bad JSON or an unsupported component.
  static Tokenizer load(const std::string& dir_or_file);

  // From JSON text; config_json may be empty. `source` names the file in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {},
                             const std::string& source = "tokenizer.json");

  // Token ids of `text` (any bytes; invalid UTF-8 is encoded byte by byte). Special tokens
  // written in the text are always recognised; add_special_tokens adds what the
  // post-processor adds (e.g. a BOS for TemplateProcessing).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  void encode_into(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const;

  // Text of `ids`. Unknown ids are skipped (as HF does). The result is raw bytes: invalid
  // UTF-8 is kept, so decode(encode(s)) == s for byte-level tokenizers; use utf8_lossy()
  // for U+FFFD replacement.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  int32_t token_to_id(std::string_view token) const;   // -1 if absent
  std::optional<std::string> id_to_token(int32_t id) const;
  int32_t vocab_size() const;                           // largest id + 1
  bool is_special(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const;
  const TokenizerConfig& config() const;

  // Where the tokenizer was loaded from (directory or file), for messages.
  const std::string& source() const;

 private:
  struct Impl;
  static Tokenizer build(std::string_view tokenizer_json, std::string_view config_json,
                         const std::string& source, const std::string& chat_template_file);
  std::shared_ptr<const Impl> impl_;
};

// transformers' clean_up_tokenization: " ." -> "." and similar (used when a tokenizer_config
// sets clean_up_tokenization_spaces and HF-Python-identical text is wanted).
std::string clean_up_tokenization(std::string_view text);

}  // namespace illada::tokenizer
