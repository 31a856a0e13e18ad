// Decoders of tokenizer.json ("decoder" field): turn the token strings of ids back into text.
// Decoders work on bytes and never replace invalid UTF-8 (decode(encode(s)) == s for any
// byte string); call utf8_lossy() for Hugging Face's U+FFFD behaviour.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace illada::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Transforms the token list in place (HF's decode_chain).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds the decoder described by `config` (null -> nullptr). Supported types: ByteLevel,
// Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence. Anything else throws
// illada::Error naming the type and `where`.
std::shared_ptr<const Decoder> make_decoder(const nlohmann::json& config, const std::string& where);

}  // namespace illada::tokenizer
