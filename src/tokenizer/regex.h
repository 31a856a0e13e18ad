// PCRE2 (JIT, UTF + Unicode properties) behind a small interface, with the pattern dialect
// of Hugging Face tokenizers (Oniguruma, Ruby syntax) translated where PCRE2 differs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace illada::tokenizer {

// A compiled pattern. Immutable and safe to share between threads; every thread gets its
// own match scratch. Invalid UTF-8 in a subject never matches and never fails: the bytes
// are simply skipped over (PCRE2_MATCH_INVALID_UTF).
class Regex {
 public:
  Regex() = default;

  // Compiles an Oniguruma-style regex. `what` names the tokenizer.json field for errors.
  static Regex compile(std::string_view pattern, std::string_view what);
  // Compiles a literal string (tokenizer.json `{"String": ...}` patterns).
  static Regex literal(std::string_view text, std::string_view what);

  bool valid() const { return code_ != nullptr; }
  const std::string& pattern() const { return pattern_; }

  // Finds the first match at or after `start`; returns false if none. Throws illada::Error
  // if PCRE2 reports a resource limit.
  bool search(std::string_view subject, size_t start, size_t& match_begin, size_t& match_end) const;

  // All non-overlapping matches, left to right. After an empty match the search resumes one
  // character later (Oniguruma's and JavaScript's find-all behaviour).
  void find_all(std::string_view subject, std::vector<std::pair<uint32_t, uint32_t>>& out) const;

  // Replaces every match with `replacement` (taken literally).
  std::string replace_all(std::string_view subject, std::string_view replacement) const;

 private:
  struct Code;
  static Regex compile_impl(std::string_view pattern, uint32_t options, std::string_view what,
                            std::string display);
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

// Rewrites the Oniguruma escapes whose meaning differs in PCRE2: `\s`/`\S` become the exact
// Unicode White_Space set (PCRE2 adds U+180E), `\w`/`\W` Oniguruma's word set (PCRE2 10.42
// leaves out marks and joiners), and Ruby's `\h`/`\H` mean hex digits.
std::string translate_onig_pattern(std::string_view pattern);

}  // namespace illada::tokenizer
