// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): split normalized text into the
// words the model encodes one at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace illada::tokenizer {

// One pre-token: a byte range of PreTokenized::buf. at_start marks a piece that begins at
// offset 0 of the original input (Metaspace's prepend_scheme "first" needs it).
struct Piece {
  uint32_t begin, end;
  bool at_start;
};

// Working state of one pre-tokenization. buf only grows: a step that rewrites text appends
// the new text and points its pieces there.
struct PreTokenized {
  std::string buf;
  std::vector<Piece> pieces;
  // Scratch reused between steps.
  std::vector<Piece> next;
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  std::string tmp;

  std::string_view text(const Piece& p) const {
    return std::string_view(buf).substr(p.begin, p.end - p.begin);
  }
  void reset(std::string_view s, bool at_start) {
    buf.assign(s);
    pieces.clear();
    if (!s.empty()) pieces.push_back({0, static_cast<uint32_t>(s.size()), at_start});
  }
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(PreTokenized& pt) const = 0;
  // Asks the last step to leave its output as raw bytes instead of byte-level characters
  // (the BPE model then maps bytes itself). Returns true if the last step is ByteLevel.
  virtual bool set_raw_byte_output() { return false; }
};

// Builds the pre-tokenizer described by `config` (null -> nullptr). Supported types: Split,
// ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit, Sequence. Anything else throws
// illada::Error naming the type and `where`.
std::shared_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& config, const std::string& where);

// Splits `text` (a piece of pt) at the given matches following `behavior`, as HF's
// NormalizedString::split does; emits non-empty sub-pieces to pt.next. `matches` are byte
// ranges relative to the piece; `invert` swaps matches and gaps.
void split_piece(PreTokenized& pt, const Piece& piece,
                 const std::vector<std::pair<uint32_t, uint32_t>>& matches, bool invert,
                 SplitBehavior behavior);

}  // namespace illada::tokenizer
