// GPT-2's reversible byte <-> printable character mapping used by byte-level BPE.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace illada::tokenizer {

// The code point that stands for byte b in byte-level vocabularies ('Ġ' for ' ', etc.).
char32_t byte_to_char(uint8_t b);

// The UTF-8 text of byte_to_char(b).
const std::string& byte_to_utf8(uint8_t b);

// Inverse mapping: the byte a code point stands for, or -1 if it is not one of the 256.
int char_to_byte(char32_t cp);

// Maps raw bytes to their byte-level text ("hi there" -> "hiĠthere").
std::string bytes_to_byte_level(std::string_view bytes);

// Maps byte-level text back to bytes. Returns false (and leaves `out` partly written) if
// some character is not in the byte alphabet.
bool byte_level_to_bytes(std::string_view text, std::string& out);

// The GPT-2 pre-tokenization regex the ByteLevel pre-tokenizer uses with use_regex: true.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace illada::tokenizer
