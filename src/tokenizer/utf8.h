// UTF-8 helpers for the tokenizer: decoding that tolerates invalid bytes, and the Unicode
// whitespace sets that Hugging Face tokenizers (Rust) and Python/Jinja use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace illada::tokenizer {

// One decoded code point. An invalid or truncated sequence decodes as one byte with
// valid == false and cp == the byte value, so every byte string can be walked.
struct Utf8Char {
  char32_t cp;
  int len;  // bytes consumed, 1..4
  bool valid;
};

// Decodes the code point starting at s[i] (i < s.size()). Rejects overlong forms,
// surrogates and code points above U+10FFFF, like a strict UTF-8 decoder.
Utf8Char utf8_decode(std::string_view s, size_t i);

// Byte length of the sequence starting at s[i] (1 for an invalid byte).
inline int utf8_len(std::string_view s, size_t i) { return utf8_decode(s, i).len; }

// Appends the UTF-8 encoding of cp.
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(char32_t cp);

bool utf8_is_valid(std::string_view s);

// Replaces each maximal invalid subsequence with U+FFFD, as Rust's String::from_utf8_lossy
// and the WHATWG TextDecoder do.
std::string utf8_lossy(std::string_view s);

// Unicode White_Space property (Rust char::is_whitespace, regex \s).
bool is_unicode_whitespace(char32_t cp);

// Python str.isspace(): White_Space plus U+001C..U+001F (Jinja's `trim` uses str.strip()).
bool is_python_space(char32_t cp);

// Strips leading/trailing characters for which pred(cp) holds; invalid bytes are kept.
std::string_view strip_if(std::string_view s, bool (*pred)(char32_t), bool left, bool right);

// Python's str.strip() with no argument.
inline std::string_view python_strip(std::string_view s) {
  return strip_if(s, is_python_space, true, true);
}

}  // namespace illada::tokenizer
