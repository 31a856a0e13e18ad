// Pre-tokenizer implementations with the split semantics of the Hugging Face tokenizers crate
// (Split behaviours, ByteLevel prefix space and GPT-2 regex, Metaspace prepend schemes).
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;
using namespace json_util;

struct Segment {
  uint32_t begin, end;
  bool match;
};

// Matches of a single-character predicate: every matching character is its own match.
template <class Pred>
void char_matches(std::string_view s, Pred pred, std::vector<std::pair<uint32_t, uint32_t>>& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_decode(s, i);
    if (pred(c)) out.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + c.len));
    i += c.len;
  }
}

class Split final : public PreTokenizer {
 public:
  Split(Regex re, SplitBehavior b, bool invert) : re_(std::move(re)), behavior_(b), invert_(invert) {}
  void apply(PreTokenized& pt) const override {
    pt.next.clear();
    for (const Piece& p : pt.pieces) {
      pt.matches.clear();
      re_.find_all(pt.text(p), pt.matches);
      split_piece(pt, p, pt.matches, invert_, behavior_);
    }
    pt.pieces.swap(pt.next);
  }

 private:
  Regex re_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) re_ = Regex::compile(kGpt2Pattern, "ByteLevel pre-tokenizer");
  }
  bool set_raw_byte_output() override {
    raw_ = true;
    return true;
  }
  void apply(PreTokenized& pt) const override {
    if (add_prefix_space_) {
      for (Piece& p : pt.pieces) {
        if (pt.buf[p.begin] == ' ') continue;
        pt.tmp.clear();
        pt.tmp.push_back(' ');
        pt.tmp.append(pt.text(p));
        p.begin = static_cast<uint32_t>(pt.buf.size());
        pt.buf.append(pt.tmp);
        p.end = static_cast<uint32_t>(pt.buf.size());
      }
    }
    if (re_.valid()) {
      pt.next.clear();
      for (const Piece& p : pt.pieces) {
        pt.matches.clear();
        re_.find_all(pt.text(p), pt.matches);
        split_piece(pt, p, pt.matches, false, SplitBehavior::kIsolated);
      }
      pt.pieces.swap(pt.next);
    }
    if (!raw_) {
      for (Piece& p : pt.pieces) {
        pt.tmp = bytes_to_byte_level(pt.text(p));
        p.begin = static_cast<uint32_t>(pt.buf.size());
        pt.buf.append(pt.tmp);
        p.end = static_cast<uint32_t>(pt.buf.size());
      }
    }
  }

 private:
  bool add_prefix_space_;
  Regex re_;
  bool raw_ = false;
};

enum class PrependScheme { kAlways, kNever, kFirst };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : repl_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void apply(PreTokenized& pt) const override {
    pt.next.clear();
    for (Piece p : pt.pieces) {
      const std::string_view s = pt.text(p);
      pt.tmp.clear();
      for (char c : s) {
        if (c == ' ') {
          pt.tmp += repl_;
        } else {
          pt.tmp += c;
        }
      }
      const bool starts = pt.tmp.compare(0, repl_.size(), repl_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start))) {
        pt.tmp.insert(0, repl_);
      }
      p.begin = static_cast<uint32_t>(pt.buf.size());
      pt.buf.append(pt.tmp);
      p.end = static_cast<uint32_t>(pt.buf.size());
      if (!split_) {
        pt.next.push_back(p);
        continue;
      }
      pt.matches.clear();
      const std::string_view t = pt.text(p);
      for (size_t i = t.find(repl_); i != std::string_view::npos; i = t.find(repl_, i + repl_.size())) {
        pt.matches.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + repl_.size()));
      }
      split_piece(pt, p, pt.matches, false, SplitBehavior::kMergedWithNext);
    }
    pt.pieces.swap(pt.next);
  }

 private:
  std::string repl_;
  PrependScheme scheme_;
  bool split_;
};

// Splits off numeric characters: Rust's char::is_numeric, i.e. \p{N} (not only ASCII digits).
class Digits final : public PreTokenizer {
 public:
  explicit Digits(bool individual)
      : individual_(individual), re_(Regex::compile(R"(\p{N})", "Digits pre-tokenizer")) {}
  void apply(PreTokenized& pt) const override {
    pt.next.clear();
    for (const Piece& p : pt.pieces) {
      pt.matches.clear();
      re_.find_all(pt.text(p), pt.matches);  // one match per character
      split_piece(pt, p, pt.matches, false,
                  individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
    }
    pt.pieces.swap(pt.next);
  }

 private:
  bool individual_;
  Regex re_;
};

// HF Whitespace: keeps runs of \w+ and of [^\w\s]+, drops whitespace.
class Whitespace final : public PreTokenizer {
 public:
  Whitespace() : re_(Regex::compile(R"(\w+|[^\w\s]+)", "Whitespace pre-tokenizer")) {}
  void apply(PreTokenized& pt) const override {
    pt.next.clear();
    for (const Piece& p : pt.pieces) {
      pt.matches.clear();
      re_.find_all(pt.text(p), pt.matches);
      split_piece(pt, p, pt.matches, true, SplitBehavior::kRemoved);
    }
    pt.pieces.swap(pt.next);
  }

 private:
  Regex re_;
};

class WhitespaceSplit final : public PreTokenizer {
 public:
  void apply(PreTokenized& pt) const override {
    pt.next.clear();
    for (const Piece& p : pt.pieces) {
      char_matches(pt.text(p), [](const Utf8Char& c) { return c.valid && is_unicode_whitespace(c.cp); },
                   pt.matches);
      split_piece(pt, p, pt.matches, false, SplitBehavior::kRemoved);
    }
    pt.pieces.swap(pt.next);
  }
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::shared_ptr<PreTokenizer>> s) : steps_(std::move(s)) {}
  void apply(PreTokenized& pt) const override {
    for (const auto& s : steps_) s->apply(pt);
  }
  bool set_raw_byte_output() override { return !steps_.empty() && steps_.back()->set_raw_byte_output(); }

 private:
  std::vector<std::shared_ptr<PreTokenizer>> steps_;
};

SplitBehavior parse_behavior(const json& config, const std::string& where) {
  const std::string b = get_string(config, "behavior", where);
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  fail(where, ".behavior '", b,
       "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

}  // namespace

void split_piece(PreTokenized& pt, const Piece& piece,
                 const std::vector<std::pair<uint32_t, uint32_t>>& matches, bool invert,
                 SplitBehavior behavior) {
  const uint32_t len = piece.end - piece.begin;
  if (len == 0) return;
  // Segments covering the piece: gaps are non-matches (HF's Pattern::find_matches).
  thread_local std::vector<Segment> segs;
  segs.clear();
  uint32_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev < b) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < len) segs.push_back({prev, len, invert});

  // Resulting ranges (and whether to drop them), as HF's fold for each behaviour.
  thread_local std::vector<Segment> out;  // `match` reused as "remove"
  out.clear();
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Segment& s : segs) out.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::kRemoved:
      for (const Segment& s : segs) out.push_back({s.begin, s.end, s.match});
      break;
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (const Segment& s : segs) {
        if (s.match == prev_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const Segment& s : segs) {
        if (s.match && !prev_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev_match = false;
      for (size_t k = segs.size(); k-- > 0;) {
        const Segment& s = segs[k];
        if (s.match && !prev_match && !out.empty()) {
          out.back().begin = s.begin;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        prev_match = s.match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  for (const Segment& s : out) {
    if (s.match || s.end <= s.begin) continue;
    pt.next.push_back({piece.begin + s.begin, piece.begin + s.end, piece.at_start && s.begin == 0});
  }
}

std::shared_ptr<PreTokenizer> make_pre_tokenizer(const json& config, const std::string& where) {
  if (config.is_null()) return nullptr;
  if (!config.is_object()) fail(where, ": expected an object or null");
  const std::string type = get_string(config, "type", where);
  if (type == "Split") {
    return std::make_shared<Split>(get_pattern(config, where), parse_behavior(config, where),
                                   get_bool(config, "invert", false, where));
  }
  if (type == "ByteLevel") {
    return std::make_shared<ByteLevel>(get_bool(config, "add_prefix_space", true, where),
                                       get_bool(config, "use_regex", true, where));
  }
  if (type == "Metaspace") {
    const std::string repl = get_char(config, "replacement", "\u2581", where);
    PrependScheme scheme = PrependScheme::kAlways;
    if (const json* ps = find(config, "prepend_scheme")) {
      const std::string s = ps->is_string() ? ps->get<std::string>() : "";
      if (s == "always") {
        scheme = PrependScheme::kAlways;
      } else if (s == "never") {
        scheme = PrependScheme::kNever;
      } else if (s == "first") {
        scheme = PrependScheme::kFirst;
      } else {
        fail(where, ".prepend_scheme: expected \"always\", \"never\" or \"first\"");
      }
    } else if (find(config, "add_prefix_space")) {
      scheme = get_bool(config, "add_prefix_space", true, where) ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    return std::make_shared<Metaspace>(repl, scheme, get_bool(config, "split", true, where));
  }
  if (type == "Digits") return std::make_shared<Digits>(get_bool(config, "individual_digits", false, where));
  if (type == "Whitespace") return std::make_shared<Whitespace>();
  if (type == "WhitespaceSplit") return std::make_shared<WhitespaceSplit>();
  if (type == "Sequence") {
    const json* list = find(config, "pretokenizers");
    if (!list || !list->is_array()) fail(where, ".pretokenizers: expected an array");
    std::vector<std::shared_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      auto s = make_pre_tokenizer((*list)[i], str_cat(where, ".pretokenizers[", i, "]"));
      if (s) steps.push_back(std::move(s));
    }
    return std::make_shared<Sequence>(std::move(steps));
  }
  fail(where, ": pre-tokenizer type '", type,
       "' is not supported (supported: Split, ByteLevel, Metaspace, Digits, Whitespace, "
       "WhitespaceSplit, Sequence)");
}

}  // namespace illada::tokenizer
