// `illada data prepare`: text files, JSONL or SFT JSONL -> a dataset directory of token shards
// (see io/token_shards.h and train/data.h). Pre-training documents are each followed by EOS;
// an SFT example is the chat-template prompt (with the assistant header), the response and
// exactly one EOS, all examples concatenated into one stream with prompt tokens flagged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/data.h"

namespace illada::tokenizer {
class Tokenizer;
}

namespace illada::train {

struct PrepareOptions {
  std::vector<std::string> inputs;  // .jsonl files are JSONL, anything else plain text
  std::string out;                  // dataset directory (created)
  bool sft = false;                 // JSONL with {"prompt","response"} or {"messages": [...]}
  bool doc_per_line = false;        // plain text: one document per line (else per paragraph)
  int64_t shard_tokens = int64_t{1} << 26;  // tokens per shard file
  std::string chat_template;        // override the tokenizer's template (llada, llama3, none)
};

// Tokenizes the inputs and writes the shards, then dataset.json. Throws Error naming the file
// (and line, for JSONL) of bad input.
DatasetInfo prepare_dataset(const tokenizer::Tokenizer& tok, const PrepareOptions& opts);

}  // namespace illada::train
