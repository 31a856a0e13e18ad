// Tokenizers in GGUF files, both ways. Writing: the tokenizer.ggml.* keys llama.cpp tokenizes
// with (byte-level BPE as "gpt2": tokens, token types, merges, the pre-tokenizer's name, special
// ids), the chat template, and the Hugging Face files themselves (tokenizer.huggingface.json,
// and tokenizer_config.json as illada.tokenizer_config) so that illada reads back exactly the
// tokenizer it was given. Reading: those files when present, else a tokenizer rebuilt from
// tokenizer.ggml.* (files llama.cpp's converter wrote).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace illada::tokenizer {

struct GgufVocabOptions {
  int64_t n_rows = 0;  // embedding rows: the token list is padded to this length
};

struct GgufVocab {
  std::vector<std::pair<std::string, GgufValue>> kv;
  std::vector<std::string> warnings;  // what llama.cpp will not reproduce, for the user
};

// The keys for the tokenizer in `model_dir` (tokenizer.json, optional tokenizer_config.json and
// chat_template.jinja). Without a tokenizer.json only tokenizer.ggml.model = "none" is written
// (llama.cpp then runs on token ids). The special ids are the model's (model/llada_gguf.h).
// Throws Error naming the file on malformed JSON or ids beyond n_rows.
GgufVocab gguf_vocab_from_dir(const std::string& model_dir, const GgufVocabOptions& options);

// The tokenizer a GGUF file carries. Throws Error naming the file and key when it has none
// (tokenizer.ggml.model "none" or absent) or one illada cannot rebuild (only byte-level BPE,
// "gpt2", with the pre-tokenizers gpt-2, llama-bpe / llama3, smaug-bpe / dbrx and qwen2).
Tokenizer tokenizer_from_gguf(const GgufFile& f);

// The llama.cpp pre-tokenizer name ("llama-bpe", "gpt-2", ...) of a tokenizer.json, or "" when
// none of those matches it.
std::string ggml_pre_tokenizer_name(std::string_view tokenizer_json);

}  // namespace illada::tokenizer
