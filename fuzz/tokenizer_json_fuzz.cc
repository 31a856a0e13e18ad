// libFuzzer target: tokenizer.json parsing (an untrusted file) and, when it loads, encoding and
// decoding a fixed text with it. illada::Error is the expected way to reject input; any
// crash, sanitizer report or other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"
#include "util/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    const auto tok = illada::tokenizer::Tokenizer::from_json(json, {}, "fuzz.json");
    const auto ids = tok.encode("Hello, wörld! 123  \n\t<|x|> \xff\xfe", true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  } catch (const illada::Error&) {
  }
  return 0;
}
