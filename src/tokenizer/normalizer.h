// Normalizers of tokenizer.json ("normalizer" field): text -> text transforms applied to the
// pieces between added tokens before pre-tokenization.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace illada::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

// Builds the normalizer described by `config` (null -> nullptr). Supported types: NFC, NFD,
// NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, Append, ByteLevel, Sequence.
// Anything else throws illada::Error naming the type and `where`.
std::shared_ptr<const Normalizer> make_normalizer(const nlohmann::json& config, const std::string& where);

}  // namespace illada::tokenizer
