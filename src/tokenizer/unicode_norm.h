// Unicode normalization forms (NFC, NFD, NFKC, NFKD), lowercase and combining-mark tests,
// from tables generated out of the Unicode Character Database (see unicode_tables.inc).
#pragma once

#include <string>
#include <string_view>

namespace illada::tokenizer {

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Normalizes UTF-8 text. Invalid bytes pass through unchanged and block composition.
std::string unicode_normalize(std::string_view text, NormalForm form);

// Full lowercase mapping of each character independently (no context such as final sigma),
// like Rust's char::to_lowercase used by the HF Lowercase normalizer.
std::string unicode_lowercase(std::string_view text);

// General category Mark (Mn, Mc, Me).
bool is_combining_mark(char32_t cp);

// The Unicode version of the tables.
const char* unicode_tables_version();

}  // namespace illada::tokenizer
