// Normalizer implementations, following the semantics of the Hugging Face tokenizers crate.
#include "tokenizer/normalizer.h"

#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_norm.h"
#include "tokenizer/utf8.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;
using namespace json_util;

class UnicodeForm final : public Normalizer {
 public:
  explicit UnicodeForm(NormalForm f) : form_(f) {}
  std::string normalize(std::string_view t) const override { return unicode_normalize(t, form_); }

 private:
  NormalForm form_;
};

class Lowercase final : public Normalizer {
 public:
  std::string normalize(std::string_view t) const override { return unicode_lowercase(t); }
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view t) const override {
    return std::string(strip_if(t, is_unicode_whitespace, left_, right_));
  }

 private:
  bool left_, right_;
};

class StripAccents final : public Normalizer {
 public:
  std::string normalize(std::string_view t) const override {
    std::string out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
      const Utf8Char c = utf8_decode(t, i);
      if (!c.valid || !is_combining_mark(c.cp)) out.append(t.substr(i, c.len));
      i += c.len;
    }
    return out;
  }
};

class Replace final : public Normalizer {
 public:
  Replace(Regex re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  std::string normalize(std::string_view t) const override { return re_.replace_all(t, content_); }

 private:
  Regex re_;
  std::string content_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string s) : s_(std::move(s)) {}
  std::string normalize(std::string_view t) const override {
    return t.empty() ? std::string() : s_ + std::string(t);
  }

 private:
  std::string s_;
};

class Append final : public Normalizer {
 public:
  explicit Append(std::string s) : s_(std::move(s)) {}
  std::string normalize(std::string_view t) const override {
    return t.empty() ? std::string() : std::string(t) + s_;
  }

 private:
  std::string s_;
};

class ByteLevelNorm final : public Normalizer {
 public:
  std::string normalize(std::string_view t) const override { return bytes_to_byte_level(t); }
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::shared_ptr<const Normalizer>> n) : n_(std::move(n)) {}
  std::string normalize(std::string_view t) const override {
    std::string s(t);
    for (const auto& n : n_) s = n->normalize(s);
    return s;
  }

 private:
  std::vector<std::shared_ptr<const Normalizer>> n_;
};

}  // namespace

std::shared_ptr<const Normalizer> make_normalizer(const json& config, const std::string& where) {
  if (config.is_null()) return nullptr;
  if (!config.is_object()) fail(where, ": expected an object or null");
  const std::string type = get_string(config, "type", where);
  if (type == "NFC") return std::make_shared<UnicodeForm>(NormalForm::kNFC);
  if (type == "NFD") return std::make_shared<UnicodeForm>(NormalForm::kNFD);
  if (type == "NFKC") return std::make_shared<UnicodeForm>(NormalForm::kNFKC);
  if (type == "NFKD") return std::make_shared<UnicodeForm>(NormalForm::kNFKD);
  if (type == "Lowercase") return std::make_shared<Lowercase>();
  if (type == "StripAccents") return std::make_shared<StripAccents>();
  if (type == "ByteLevel") return std::make_shared<ByteLevelNorm>();
  if (type == "Strip") {
    return std::make_shared<Strip>(get_bool(config, "strip_left", true, where),
                                   get_bool(config, "strip_right", true, where));
  }
  if (type == "Replace") {
    return std::make_shared<Replace>(get_pattern(config, where), get_string(config, "content", where));
  }
  if (type == "Prepend") return std::make_shared<Prepend>(get_string(config, "prepend", where));
  if (type == "Append") return std::make_shared<Append>(get_string(config, "append", where));
  if (type == "Sequence") {
    const json* list = find(config, "normalizers");
    if (!list || !list->is_array()) fail(where, ".normalizers: expected an array");
    std::vector<std::shared_ptr<const Normalizer>> n;
    for (size_t i = 0; i < list->size(); ++i) {
      auto child = make_normalizer((*list)[i], str_cat(where, ".normalizers[", i, "]"));
      if (child) n.push_back(std::move(child));
    }
    return std::make_shared<Sequence>(std::move(n));
  }
  fail(where, ": normalizer type '", type,
       "' is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, "
       "Replace, Prepend, Append, ByteLevel, Sequence)");
}

}  // namespace illada::tokenizer
