// Normalization: full decomposition by table lookup (Hangul algorithmically), canonical
// ordering by combining class, then canonical composition (UAX #15).
#include "tokenizer/unicode_norm.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tokenizer/utf8.h"

namespace illada::tokenizer {
namespace {

struct CccRange {
  uint32_t start, end;
  uint8_t ccc;
};
struct DecompEntry {
  uint32_t cp;
  uint16_t nfd_off;
  uint8_t nfd_len;
  uint16_t nfkd_off;
  uint8_t nfkd_len;
};
struct ComposePair {
  uint32_t first, second, composite;
};
struct LowerEntry {
  uint32_t cp;
  uint16_t off;
  uint8_t len;
};
struct MarkRange {
  uint32_t start, end;
};

#include "tokenizer/unicode_tables.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// Marker for an invalid byte kept as-is: outside the code point range.
constexpr uint32_t kRawByte = 0x80000000u;

uint8_t ccc(uint32_t cp) {
  if (cp < 0x300 || (cp & kRawByte)) return 0;
  const auto* end = std::end(kCccRanges);
  const auto* it = std::upper_bound(std::begin(kCccRanges), end, cp,
                                    [](uint32_t c, const CccRange& r) { return c < r.start; });
  if (it == std::begin(kCccRanges)) return 0;
  --it;
  return cp <= it->end ? it->ccc : 0;
}

void decompose(uint32_t cp, bool compat, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xA0) {
    const auto* end = std::end(kDecomp);
    const auto* it = std::lower_bound(std::begin(kDecomp), end, cp,
                                      [](const DecompEntry& e, uint32_t c) { return e.cp < c; });
    if (it != end && it->cp == cp) {
      const uint16_t off = compat ? it->nfkd_off : it->nfd_off;
      const uint8_t len = compat ? it->nfkd_len : it->nfd_len;
      if (len) {
        out.insert(out.end(), kDecompPool + off, kDecompPool + off + len);
        return;
      }
    }
  }
  out.push_back(cp);
}

uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto* end = std::end(kCompose);
  const auto* it = std::lower_bound(std::begin(kCompose), end, std::make_pair(a, b),
                                    [](const ComposePair& p, std::pair<uint32_t, uint32_t> k) {
                                      return p.first != k.first ? p.first < k.first : p.second < k.second;
                                    });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string unicode_normalize(std::string_view text, NormalForm form) {
  if (is_ascii(text)) return std::string(text);
  const bool compat = form == NormalForm::kNFKC || form == NormalForm::kNFKD;
  const bool compose = form == NormalForm::kNFC || form == NormalForm::kNFKC;

  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_decode(text, i);
    if (c.valid) {
      decompose(c.cp, compat, cps);
    } else {
      cps.push_back(kRawByte | c.cp);
    }
    i += c.len;
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](uint32_t a, uint32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  if (compose && !cps.empty()) {
    size_t starter = SIZE_MAX;
    size_t w = 0;
    int last_ccc = -1;
    for (size_t r = 0; r < cps.size(); ++r) {
      const uint32_t c = cps[r];
      const int cc = ccc(c);
      if (starter != SIZE_MAX && !(c & kRawByte)) {
        // Not blocked: nothing in between, or everything in between has a lower class.
        const bool blocked = (w != starter + 1) && (last_ccc == 0 || last_ccc >= cc);
        if (!blocked) {
          if (const uint32_t comp = compose_pair(cps[starter], c)) {
            cps[starter] = comp;
            continue;
          }
        }
      }
      if (cc == 0) {
        starter = (c & kRawByte) ? SIZE_MAX : w;
        last_ccc = -1;
      } else {
        last_ccc = cc;
      }
      cps[w++] = c;
    }
    cps.resize(w);
  }
  std::string out;
  out.reserve(text.size() + 8);
  for (uint32_t c : cps) {
    if (c & kRawByte) {
      out.push_back(static_cast<char>(c & 0xFF));
    } else {
      utf8_append(out, c);
    }
  }
  return out;
}

std::string unicode_lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_decode(text, i);
    if (!c.valid) {
      out.push_back(text[i]);
    } else if (c.cp < 0x80) {
      out.push_back(static_cast<char>(c.cp >= 'A' && c.cp <= 'Z' ? c.cp + 32 : c.cp));
    } else {
      const auto* end = std::end(kLower);
      const auto* it = std::lower_bound(std::begin(kLower), end, static_cast<uint32_t>(c.cp),
                                        [](const LowerEntry& e, uint32_t x) { return e.cp < x; });
      if (it != end && it->cp == c.cp) {
        for (int k = 0; k < it->len; ++k) utf8_append(out, kLowerPool[it->off + k]);
      } else {
        out.append(text.substr(i, c.len));
      }
    }
    i += c.len;
  }
  return out;
}

bool is_combining_mark(char32_t cp) {
  const auto* end = std::end(kMarkRanges);
  const auto* it = std::upper_bound(std::begin(kMarkRanges), end, static_cast<uint32_t>(cp),
                                    [](uint32_t c, const MarkRange& r) { return c < r.start; });
  if (it == std::begin(kMarkRanges)) return false;
  --it;
  return cp <= it->end;
}

const char* unicode_tables_version() { return ILLADA_UNICODE_VERSION; }

}  // namespace illada::tokenizer
