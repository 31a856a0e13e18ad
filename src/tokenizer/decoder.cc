// Decoder implementations following the Hugging Face tokenizers crate, minus its lossy UTF-8
// conversions (see decoder.h).
#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;
using namespace json_util;

// Maps each token's byte-level characters back to bytes; a token with a character outside
// the byte alphabet (an added token such as "<|eot_id|>" with a space) is kept as is. All
// tokens are fused into one, as HF does.
class ByteLevelDec final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string out;
    std::string bytes;
    for (const std::string& t : tokens) {
      bytes.clear();
      if (byte_level_to_bytes(t, bytes)) {
        out += bytes;
      } else {
        out += t;
      }
    }
    tokens.assign(1, std::move(out));
  }
};

class MetaspaceDec final : public Decoder {
 public:
  MetaspaceDec(std::string repl, bool strip_first) : repl_(std::move(repl)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      std::string out;
      out.reserve(t.size());
      for (size_t k = 0; k < t.size();) {
        if (t.compare(k, repl_.size(), repl_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          k += repl_.size();
        } else {
          out += t[k++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string repl_;
  bool strip_first_;
};

// Runs of "<0xXX>" tokens become the bytes they name.
class ByteFallbackDec final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    bool have = false;
    auto hexval = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        const int hi = hexval(t[3]), lo = hexval(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
        have = true;
        continue;
      }
      if (have) out.push_back(std::move(pending));
      pending.clear();
      have = false;
      out.push_back(std::move(t));
    }
    if (have) out.push_back(std::move(pending));
    tokens = std::move(out);
  }
};

class FuseDec final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string out;
    for (const auto& t : tokens) out += t;
    tokens.assign(1, std::move(out));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character per token.
class StripDec final : public Decoder {
 public:
  StripDec(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t n = content_.size();
    for (std::string& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t i = 0; i < start_ && b + n <= e && t.compare(b, n, content_) == 0; ++i) b += n;
      for (size_t i = 0; i < stop_ && e >= b + n && t.compare(e - n, n, content_) == 0; ++i) e -= n;
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDec final : public Decoder {
 public:
  ReplaceDec(Regex re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = re_.replace_all(t, content_);
  }

 private:
  Regex re_;
  std::string content_;
};

// Classic BPE end-of-word suffix: replaced by a space, except in the last token.
class BpeDec final : public Decoder {
 public:
  explicit BpeDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string rep = i + 1 == tokens.size() ? "" : " ";
      std::string& t = tokens[i];
      std::string out;
      for (size_t k = 0; k < t.size();) {
        if (!suffix_.empty() && t.compare(k, suffix_.size(), suffix_) == 0) {
          out += rep;
          k += suffix_.size();
        } else {
          out += t[k++];
        }
      }
      t = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

class SequenceDec final : public Decoder {
 public:
  explicit SequenceDec(std::vector<std::shared_ptr<const Decoder>> d) : d_(std::move(d)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : d_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::shared_ptr<const Decoder>> d_;
};

}  // namespace

std::shared_ptr<const Decoder> make_decoder(const json& config, const std::string& where) {
  if (config.is_null()) return nullptr;
  if (!config.is_object()) fail(where, ": expected an object or null");
  const std::string type = get_string(config, "type", where);
  if (type == "ByteLevel") return std::make_shared<ByteLevelDec>();
  if (type == "Metaspace") {
    const std::string repl = get_char(config, "replacement", "\u2581", where);
    bool strip_first = true;
    if (const json* ps = find(config, "prepend_scheme")) {
      strip_first = !(ps->is_string() && ps->get<std::string>() == "never");
    } else if (find(config, "add_prefix_space")) {
      strip_first = get_bool(config, "add_prefix_space", true, where);
    }
    return std::make_shared<MetaspaceDec>(repl, strip_first);
  }
  if (type == "ByteFallback") return std::make_shared<ByteFallbackDec>();
  if (type == "Fuse") return std::make_shared<FuseDec>();
  if (type == "Strip") {
    const int64_t start = get_int(config, "start", 0, where), stop = get_int(config, "stop", 0, where);
    if (start < 0 || stop < 0) fail(where, ": start and stop must be non-negative");
    return std::make_shared<StripDec>(get_char(config, "content", " ", where), static_cast<size_t>(start),
                                      static_cast<size_t>(stop));
  }
  if (type == "Replace") {
    return std::make_shared<ReplaceDec>(get_pattern(config, where), get_string(config, "content", where));
  }
  if (type == "BPEDecoder") {
    return std::make_shared<BpeDec>(get_opt_string(config, "suffix", where).value_or("</w>"));
  }
  if (type == "Sequence") {
    const json* list = find(config, "decoders");
    if (!list || !list->is_array()) fail(where, ".decoders: expected an array");
    std::vector<std::shared_ptr<const Decoder>> d;
    for (size_t i = 0; i < list->size(); ++i) {
      auto c = make_decoder((*list)[i], str_cat(where, ".decoders[", i, "]"));
      if (c) d.push_back(std::move(c));
    }
    return std::make_shared<SequenceDec>(std::move(d));
  }
  fail(where, ": decoder type '", type,
       "' is not supported (supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, "
       "BPEDecoder, Sequence)");
}

}  // namespace illada::tokenizer
