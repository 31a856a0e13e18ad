// PCRE2 wrapper: compile once with JIT, match with per-thread scratch (match data and a JIT
// stack large enough for long whitespace runs).
#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::tokenizer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() {
    if (code) pcre2_code_free(code);
  }
};

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match scratch, shared by all patterns.
struct Scratch {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  Scratch() {
    md = pcre2_match_data_create(16, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    ILLADA_CHECK(md && mctx && stack, "PCRE2 scratch allocation failed");
    pcre2_jit_stack_assign(mctx, nullptr, stack);
  }
  ~Scratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

constexpr std::string_view kWhiteSpaceClass =
    "\\t-\\r\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}"
    "\\x{3000}";
constexpr std::string_view kHexClass = "0-9a-fA-F";
// Oniguruma's Unicode \w (UTS #18): Alphabetic, marks, decimal digits, connector punctuation,
// joiners. PCRE2 10.42's is only letters, numbers and '_'.
constexpr std::string_view kWordClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200c}\\x{200d}";

}  // namespace

std::string translate_onig_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's' || e == 'h' || e == 'w') {
        const std::string_view set = e == 's' ? kWhiteSpaceClass : e == 'h' ? kHexClass : kWordClass;
        if (in_class) {
          out += set;
        } else {
          out += '[';
          out += set;
          out += ']';
        }
      } else if ((e == 'S' || e == 'H' || e == 'W') && !in_class) {
        out += "[^";
        out += e == 'S' ? kWhiteSpaceClass : e == 'H' ? kHexClass : kWordClass;
        out += ']';
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // POSIX class [:name:] inside a bracket expression: copy through.
      const size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex Regex::compile_impl(std::string_view pattern, uint32_t options, std::string_view what,
                          std::string display) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &err, &err_off, nullptr);
  if (!code) {
    fail(what, ": cannot compile regex '", display, "': ", pcre2_message(err), " at offset ",
         err_off);
  }
  auto c = std::make_shared<Code>();
  c->code = code;
  c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  Regex r;
  r.code_ = std::move(c);
  r.pattern_ = std::move(display);
  return r;
}

Regex Regex::compile(std::string_view pattern, std::string_view what) {
  const std::string translated = translate_onig_pattern(pattern);
  return compile_impl(translated, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, what,
                      std::string(pattern));
}

Regex Regex::literal(std::string_view text, std::string_view what) {
  return compile_impl(text, PCRE2_LITERAL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, what,
                      std::string(text));
}

bool Regex::search(std::string_view subject, size_t start, size_t& mb, size_t& me) const {
  ILLADA_CHECK(code_, "search on an empty Regex");
  Scratch& s = scratch();
  const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const int rc = code_->jit ? pcre2_jit_match(code_->code, subj, subject.size(), start, 0, s.md, s.mctx)
                            : pcre2_match(code_->code, subj, subject.size(), start, 0, s.md, s.mctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail("regex '", pattern_, "': matching failed: ", pcre2_message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
  mb = ov[0];
  me = ov[1];
  return true;
}

void Regex::find_all(std::string_view subject, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  size_t pos = 0;
  size_t mb, me;
  while (pos <= subject.size() && search(subject, pos, mb, me)) {
    out.emplace_back(static_cast<uint32_t>(mb), static_cast<uint32_t>(me));
    if (me > mb) {
      pos = me;
    } else {
      if (me >= subject.size()) break;
      pos = me + utf8_len(subject, me);
    }
  }
}

std::string Regex::replace_all(std::string_view subject, std::string_view replacement) const {
  std::vector<std::pair<uint32_t, uint32_t>> m;
  find_all(subject, m);
  if (m.empty()) return std::string(subject);
  std::string out;
  out.reserve(subject.size());
  size_t prev = 0;
  for (auto [b, e] : m) {
    out.append(subject.substr(prev, b - prev));
    out.append(replacement);
    prev = e;
  }
  out.append(subject.substr(prev));
  return out;
}

}  // namespace illada::tokenizer
