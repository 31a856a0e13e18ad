// Tables for the GPT-2 byte-level alphabet: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100 onwards in byte order.
#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace illada::tokenizer {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 324> from_char{};  // code points < 324 cover the whole alphabet
  Tables() {
    from_char.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      to_utf8[b] = utf8_encode(to_char[b]);
      from_char[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return tables().to_char[b]; }

const std::string& byte_to_utf8(uint8_t b) { return tables().to_utf8[b]; }

int char_to_byte(char32_t cp) {
  return cp < tables().from_char.size() ? tables().from_char[cp] : -1;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += t.to_utf8[b];
  return out;
}

bool byte_level_to_bytes(std::string_view text, std::string& out) {
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_decode(text, i);
    const int b = c.valid ? char_to_byte(c.cp) : -1;
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
    i += c.len;
  }
  return true;
}

}  // namespace illada::tokenizer
