// The validated flag parsers and the shared flag groups (see flags.h).
#include "cli/flags.h"

#include <omp.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <thread>
#include <type_traits>

namespace illada::cli {
namespace {

template <class T>
std::string show(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", static_cast<double>(v));
    return b;
  } else {
    return std::to_string(v);
  }
}

template <class T>
std::string range_text(const Range<T>& r) {
  const bool no_hi = r.hi == std::numeric_limits<T>::max();
  if (no_hi) return (r.lo_open ? "> " : ">= ") + show(r.lo);
  return (r.lo_open ? "(" + show(r.lo) + ", " : show(r.lo) + "..") + show(r.hi) + (r.lo_open ? "]" : "");
}

// The first name ("--gen-length" of "--gen-length,--old") for messages.
std::string first_name(const std::string& names) { return names.substr(0, names.find(',')); }

template <class T>
CLI::Validator validator(const Range<T>& r) {
  return CLI::Validator([r](std::string& s) { return check_number<T>(s, r); }, "", "range");
}

std::string with_note(const std::string& help, const std::string& note) { return help + " [" + note + "]"; }

}  // namespace

template <class T>
std::string check_number(const std::string& text, const Range<T>& r) {
  T v{};
  const char* b = text.data();
  const char* e = b + text.size();
  std::from_chars_result res;
  if constexpr (std::is_floating_point_v<T>) {
    res = std::from_chars(b, e, v, std::chars_format::general);
  } else {
    res = std::from_chars(b, e, v, 10);
  }
  const char* kind = std::is_floating_point_v<T> ? "a number" : std::is_signed_v<T> ? "an integer" : "a non-negative integer";
  if (text.empty()) return std::string("expected ") + kind + ", got nothing";
  if (res.ec == std::errc::result_out_of_range) return "'" + text + "' is out of range (" + range_text(r) + ")";
  if (res.ec != std::errc() || res.ptr != e) return "'" + text + "' is not " + kind;
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) return "'" + text + "' is not a finite number";
  }
  if (v < r.lo || v > r.hi || (r.lo_open && v == r.lo)) {
    return "'" + text + "' is outside the accepted range " + range_text(r);
  }
  return "";
}

template <class T>
CLI::Option* num(CLI::App* cmd, const std::string& names, T& var, Range<T> range, const std::string& help) {
  return cmd->add_option(names, var, with_note(help, range_text(range) + "; default " + show(var)))
      ->check(validator(range));
}

template <class T>
CLI::Option* num(CLI::App* cmd, const std::string& names, T& var, Range<T> range, const std::string& help,
                 const std::string& default_text) {
  return cmd->add_option(names, var, with_note(help, range_text(range) + "; default " + default_text))
      ->check(validator(range));
}

template <class T>
CLI::Option* num(CLI::App* cmd, const std::string& names, std::optional<T>& var, Range<T> range,
                 const std::string& help, const std::string& default_text) {
  return cmd->add_option(names, var, with_note(help, range_text(range) + "; default " + default_text))
      ->check(validator(range));
}

#define ILLADA_NUM(T)                                                                                   \
  template std::string check_number<T>(const std::string&, const Range<T>&);                           \
  template CLI::Option* num<T>(CLI::App*, const std::string&, T&, Range<T>, const std::string&);        \
  template CLI::Option* num<T>(CLI::App*, const std::string&, T&, Range<T>, const std::string&, const std::string&); \
  template CLI::Option* num<T>(CLI::App*, const std::string&, std::optional<T>&, Range<T>, const std::string&, \
                               const std::string&);
ILLADA_NUM(int)
ILLADA_NUM(int64_t)
ILLADA_NUM(uint64_t)
ILLADA_NUM(double)
#undef ILLADA_NUM

CLI::Option* choice(CLI::App* cmd, const std::string& names, std::string& var,
                    const std::vector<std::string>& choices, const std::string& help) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  const std::string name = first_name(names);
  return cmd->add_option(names, var, with_note(help, list + (var.empty() ? "" : "; default " + var)))
      ->check(CLI::Validator(
          [choices, list](std::string& s) {
            for (const auto& c : choices) {
              if (s == c) return std::string();
            }
            return "'" + s + "' is not one of " + list;
          },
          "", "choice"));
}

CLI::Option* text(CLI::App* cmd, const std::string& names, std::string& var, const std::string& help,
                  const std::string& default_text) {
  const std::string d = !default_text.empty() ? default_text : var.empty() ? "none" : var;
  return cmd->add_option(names, var, with_note(help, "default " + d));
}

CLI::Option* texts(CLI::App* cmd, const std::string& names, std::vector<std::string>& var, const std::string& help,
                   const std::string& default_text) {
  return cmd->add_option(names, var, with_note(help, "default " + (default_text.empty() ? "none" : default_text)));
}

CLI::Option* required_text(CLI::App* cmd, const std::string& names, std::string& var, const std::string& help) {
  return cmd->add_option(names, var, help)->required();
}

CLI::Option* required_texts(CLI::App* cmd, const std::string& names, std::vector<std::string>& var,
                            const std::string& help) {
  return cmd->add_option(names, var, help)->required();
}

CLI::Option* flag(CLI::App* cmd, const std::string& names, bool& var, const std::string& help) {
  return cmd->add_flag(names, var, help);
}

void add_model_flags(CLI::App* cmd, ModelFlags& f, bool with_tokenizer) {
  required_text(cmd, "--model", f.model, "Model directory (config.json, safetensors) or GGUF file");
  if (with_tokenizer) text(cmd, "--tokenizer", f.tokenizer, "Directory with tokenizer.json", "--model");
  choice(cmd, "--dtype", f.dtype, {"f32", "bf16"}, "Compute precision");
  flag(cmd, "--check-tensors", f.check_tensors,
       "Scan every weight for NaN/Inf before running (reads the whole checkpoint)");
  add_threads_flag(cmd);
}

void add_threads_flag(CLI::App* cmd) {
  const int cores = std::max(1, omp_get_num_procs());
  const Range<int> r{1, kMaxThreads};
  cmd->add_option_function<int>(
         "--threads", [](const int& n) { omp_set_num_threads(n); },
         with_note("Compute threads (results do not depend on it)",
                   "1.." + std::to_string(kMaxThreads) + "; default $OMP_NUM_THREADS or all " + std::to_string(cores) +
                       " cores"))
      ->check(validator(r));
}

CLI::Option* add_quiet_flag(CLI::App* cmd, bool& quiet) {
  return flag(cmd, "--quiet,--no-progress", quiet, "No progress bars on stderr");
}

void add_chat_flags(CLI::App* cmd, ChatFlags& f, bool with_chat_switch) {
  if (with_chat_switch) flag(cmd, "--chat", f.chat, "Wrap the prompt in the model's chat template");
  text(cmd, "--chat-template", f.chat_template, "Chat template instead of tokenizer_config.json's: llada, llama3 or none",
       "the tokenizer's");
  text(cmd, "--system", f.system, "System message for the chat template");
}

namespace {

// The option of `cmd` or of the subcommand that ran inside it (deepest first).
const CLI::Option* find_flag(const CLI::App& cmd, const std::string& long_name) {
  for (const CLI::App* sub : cmd.get_subcommands()) {
    if (const CLI::Option* o = find_flag(*sub, long_name)) return o;
  }
  return cmd.get_option_no_throw(long_name);
}

}  // namespace

std::string with_flag_names(const CLI::App& app, const std::string& message) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    const size_t open = message.find('`', i);
    const size_t close = open == std::string::npos ? open : message.find('`', open + 1);
    if (close == std::string::npos) break;
    std::string name = message.substr(open + 1, close - open - 1);
    bool ident = !name.empty() && std::islower(static_cast<unsigned char>(name[0]));
    for (char c : name) ident = ident && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_');
    out.append(message, i, open - i);
    const CLI::Option* o = nullptr;
    if (ident) {
      std::string flag = "--" + name;
      for (char& c : flag) c = c == '_' ? '-' : c;
      o = find_flag(app, flag);
    }
    if (o != nullptr && !o->get_lnames().empty()) {
      out += "--" + o->get_lnames().front();
    } else {
      out.append(message, open, close - open + 1);
    }
    i = close + 1;
  }
  out.append(message, i, std::string::npos);
  return out;
}

}  // namespace illada::cli
