// The flag vocabulary of every subcommand, and one validated parser per kind of flag value.
//
// A numeric flag is declared in one line: its names (the first is the one documented, the
// others are old spellings kept for scripts), the variable, the accepted range and the help.
// The value must parse completely as the variable's type, be finite and lie in the range; the
// help line ends with the range and the default, e.g. "[1..1048576; default 128]". A flag
// whose default is derived from other flags binds a std::optional and says how the default
// is chosen. docs/cli.md lists the vocabulary.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace illada::cli {

// Accepted values of a numeric flag (inclusive unless lo_open).
template <class T>
struct Range {
  T lo = std::numeric_limits<T>::lowest();
  T hi = std::numeric_limits<T>::max();
  bool lo_open = false;  // lo itself excluded (a learning rate must be > 0)
};

// Shared limits: token counts (generation lengths, steps) and Monte-Carlo sample counts are
// far above what any model here can use, low enough that nothing overflows or runs for days
// by a typo.
inline constexpr int64_t kMaxTokens = int64_t{1} << 20;
inline constexpr int64_t kMaxMcSamples = int64_t{1} << 16;
inline constexpr int kMaxThreads = 1024;

// Parses `text` as a T (decimal integer, or a finite floating-point number) within `r`;
// returns "" or what is wrong. The one parser behind every numeric flag.
template <class T>
std::string check_number(const std::string& text, const Range<T>& r);

// A numeric flag with a fixed default (the variable's value, shown in the help).
template <class T>
CLI::Option* num(CLI::App* cmd, const std::string& names, T& var, Range<T> range, const std::string& help);
// A numeric flag whose default the help describes in words (a sentinel value in `var` means
// "derived", as in train's --lr).
template <class T>
CLI::Option* num(CLI::App* cmd, const std::string& names, T& var, Range<T> range, const std::string& help,
                 const std::string& default_text);
// A numeric flag whose default depends on other flags: `var` stays empty unless given.
template <class T>
CLI::Option* num(CLI::App* cmd, const std::string& names, std::optional<T>& var, Range<T> range,
                 const std::string& help, const std::string& default_text);

// A string flag with a fixed set of values; help shows them and the default.
CLI::Option* choice(CLI::App* cmd, const std::string& names, std::string& var,
                    const std::vector<std::string>& choices, const std::string& help);
// A free string flag; the help shows `default_text`, else the variable's value, else "none".
CLI::Option* text(CLI::App* cmd, const std::string& names, std::string& var, const std::string& help,
                  const std::string& default_text = "");
CLI::Option* texts(CLI::App* cmd, const std::string& names, std::vector<std::string>& var, const std::string& help,
                   const std::string& default_text = "");
// A string flag the command cannot run without (the help says REQUIRED).
CLI::Option* required_text(CLI::App* cmd, const std::string& names, std::string& var, const std::string& help);
CLI::Option* required_texts(CLI::App* cmd, const std::string& names, std::vector<std::string>& var,
                            const std::string& help);
CLI::Option* flag(CLI::App* cmd, const std::string& names, bool& var, const std::string& help);

// Flags every command that runs a model shares.
struct ModelFlags {
  std::string model, tokenizer, dtype = "bf16";
  bool check_tensors = false;
};
void add_model_flags(CLI::App* cmd, ModelFlags& f, bool with_tokenizer = true);

// --threads N (every command that computes): applied when parsed, before any parallel code.
void add_threads_flag(CLI::App* cmd);

// --quiet (old spelling --no-progress): no progress bars or stage notes on stderr.
CLI::Option* add_quiet_flag(CLI::App* cmd, bool& quiet);

// Chat-template wrapping shared by generate, chat, score, eval and tokenize.
struct ChatFlags {
  bool chat = false;
  std::string chat_template, system;
};
void add_chat_flags(CLI::App* cmd, ChatFlags& f, bool with_chat_switch = true);

// A library error as the CLI shows it: each option named in backquotes (`block_length`) becomes
// the flag of the command that ran (--block-length) when that command has one; other names
// keep their backquotes.
std::string with_flag_names(const CLI::App& app, const std::string& message);

}  // namespace illada::cli
