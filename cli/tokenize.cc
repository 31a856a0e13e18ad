// `illada tokenize`, `illada detokenize` and `illada tokenizer train`: thin wrappers over
// src/tokenizer (Hugging Face tokenizer.json encoding, chat templates, the BPE trainer).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/id_list.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/check.h"
#include "util/file.h"

namespace illada::cli {
namespace {

using tokenizer::Tokenizer;

std::string read_input_file(const std::string& path, const char* flag) {
  try {
    return read_file(path, kTextInputLimits);
  } catch (const Error& e) {
    fail(flag, ": ", e.what());
  }
}

struct TokenizeArgs {
  std::string tokenizer, text, file, format = "text", chat_template, system;
  bool no_special = false, chat = false;
};

void run_tokenize(const TokenizeArgs& a) {
  const Tokenizer tok = Tokenizer::load(a.tokenizer);
  std::string text = a.file.empty() ? a.text : read_input_file(a.file, "--file");
  bool add_special = !a.no_special;
  if (a.chat || !a.chat_template.empty()) {
    const auto tmpl = tokenizer::ChatTemplate::from_config(tok.config(), a.chat_template);
    std::vector<tokenizer::ChatMessage> messages;
    if (!a.system.empty()) messages.push_back({"system", a.system});
    messages.push_back({"user", text});
    text = tmpl.render(messages, {.bos_token = tok.config().bos_token.value_or(""), .add_generation_prompt = true});
    add_special = false;  // the template writes BOS itself
  }
  const std::vector<int32_t> ids = tok.encode(text, add_special);
  std::cout << tokenizer::format_ids(ids, a.format == "json") << "\n";
}

struct DetokenizeArgs {
  std::string tokenizer, ids, file, format = "text";
  bool skip_special = false;
};

void run_detokenize(const DetokenizeArgs& a) {
  const Tokenizer tok = Tokenizer::load(a.tokenizer);
  const std::string list = a.file.empty() ? a.ids : read_input_file(a.file, "--ids-file");
  const auto ids = tokenizer::parse_id_list(list, a.file.empty() ? "--ids" : "--ids-file", tok.vocab_size());
  const std::string text = tok.decode(ids, a.skip_special);
  if (a.format == "json") {
    std::cout << nlohmann::json({{"text", tokenizer::utf8_lossy(text)}}).dump() << "\n";
  } else {
    std::cout << text << "\n";
  }
}

struct TrainArgs {
  std::vector<std::string> inputs;
  std::string out;
  std::optional<int32_t> vocab_size;
  int reserved = 10;
  int64_t min_frequency = 1;
  bool quiet = false;
};

void run_train(const TrainArgs& a) {
  tokenizer::BpeTrainer trainer({.vocab_size = *a.vocab_size,
                                 .min_frequency = a.min_frequency,
                                 .reserved_tokens = a.reserved,
                                 .verbose = !a.quiet});
  for (const std::string& f : a.inputs) trainer.add_file(f);
  trainer.train();
  trainer.save(a.out);
  const auto& s = trainer.stats();
  if (!a.quiet) {
    std::fprintf(stderr,
                 "tokenizer train: %.1f MB, %lld words (%lld distinct) counted in %.1f s; %zu merges in %.1f s\n",
                 static_cast<double>(s.bytes) / 1e6, static_cast<long long>(s.words),
                 static_cast<long long>(s.unique_words), s.count_seconds, trainer.merges().size(), s.merge_seconds);
  }
  std::cout << "wrote " << a.out << "/tokenizer.json and " << a.out << "/tokenizer_config.json (vocab size "
            << *a.vocab_size << ")\n";
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto targs = std::make_shared<TokenizeArgs>();
  CLI::App* t = app.add_subcommand("tokenize", "Encode text into token ids with a tokenizer.json");
  required_text(t, "--tokenizer", targs->tokenizer, "Directory with tokenizer.json (+ tokenizer_config.json)");
  // --text: the old spelling; generate and score call the same thing --prompt.
  auto* text_opt = text(t, "--prompt,--text", targs->text, "Text to encode");
  auto* file_opt = text(t, "--file", targs->file, "Read the text from this file (bytes as they are)");
  text_opt->excludes(file_opt);
  file_opt->excludes(text_opt);
  choice(t, "--format", targs->format, {"text", "json"}, "Output: ids separated by spaces, or {\"ids\": [...]}");
  flag(t, "--no-special", targs->no_special, "Do not add the post-processor's special tokens (e.g. BOS)");
  flag(t, "--chat", targs->chat, "Wrap the text as one user message with the tokenizer's chat template");
  text(t, "--chat-template", targs->chat_template,
       "Chat template instead of tokenizer_config.json's: llada, llama3 or none (implies --chat)");
  text(t, "--system", targs->system, "System message for --chat");
  t->callback([targs, text_opt, file_opt] {
    if (text_opt->count() == 0 && file_opt->count() == 0) fail("tokenize: give the text with --prompt TEXT or --file PATH");
    run_tokenize(*targs);
  });

  auto dargs = std::make_shared<DetokenizeArgs>();
  CLI::App* d = app.add_subcommand("detokenize", "Decode token ids back into text");
  required_text(d, "--tokenizer", dargs->tokenizer, "Directory with tokenizer.json");
  auto* ids_opt = text(d, "--ids", dargs->ids, "Token ids, e.g. 1,2,3");
  auto* ids_file = text(d, "--ids-file", dargs->file, "Read the ids from this file");
  ids_opt->excludes(ids_file);
  ids_file->excludes(ids_opt);
  choice(d, "--format", dargs->format, {"text", "json"}, "Output: the text, or {\"text\": ...}");
  flag(d, "--skip-special", dargs->skip_special, "Leave special tokens out of the text");
  d->callback([dargs, ids_opt, ids_file] {
    if (ids_opt->count() == 0 && ids_file->count() == 0) fail("detokenize: give the ids with --ids 1,2,3 or --ids-file PATH");
    run_detokenize(*dargs);
  });

  CLI::App* tk = app.add_subcommand("tokenizer", "Tokenizer tools");
  tk->require_subcommand(1);
  auto rargs = std::make_shared<TrainArgs>();
  CLI::App* tr = tk->add_subcommand("train", "Train a byte-level BPE tokenizer (LLaDA special tokens reserved)");
  required_texts(tr, "--input", rargs->inputs, "Text files to learn from")->expected(1, -1);
  num(tr, "--vocab-size", rargs->vocab_size, Range<int32_t>{1, 1 << 24}, "Exact vocabulary size, special tokens included",
      "none (required)")
      ->required();
  required_text(tr, "--out", rargs->out, "Output directory for tokenizer.json and tokenizer_config.json");
  num(tr, "--reserved", rargs->reserved, Range<int>{0, 1 << 16}, "Number of <|reserved_token_i|> special tokens");
  num(tr, "--min-frequency", rargs->min_frequency, Range<int64_t>{1, INT64_MAX}, "Never merge a pair seen fewer times");
  add_quiet_flag(tr, rargs->quiet);
  add_threads_flag(tr);
  tr->callback([rargs] { run_train(*rargs); });
}

}  // namespace illada::cli
