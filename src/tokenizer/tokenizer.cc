// Tokenizer pipeline: added tokens -> normalizer -> normalized added tokens -> pre-tokenizer ->
// BPE -> post-processor; and ids -> tokens -> decoder.
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "util/check.h"
#include "util/file.h"

namespace illada::tokenizer {

using nlohmann::json;
using namespace json_util;

namespace {

// Tokenizer files are files on disk; the cap is far above real ones (gemma3's tokenizer.json
// is 33 MB) and stops an endless stream or a mistaken huge file.
std::string read_file(const std::filesystem::path& p) {
  return illada::read_file(p.string(), {.max_bytes = uint64_t{1} << 30, .what = "tokenizer file"});
}

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail(source, ": invalid JSON: ", e.what());
  }
}

// Single-sequence post-processing: ids added before and after the encoded text.
struct PostProcess {
  std::vector<int32_t> prefix, suffix;
};

void parse_post_processor(const json& cfg, const std::string& where, PostProcess& pp) {
  if (cfg.is_null()) return;
  if (!cfg.is_object()) fail(where, ": expected an object or null");
  const std::string type = get_string(cfg, "type", where);
  if (type == "ByteLevel") return;  // only trims offsets
  if (type == "TemplateProcessing") {
    const json* single = find(cfg, "single");
    if (!single || !single->is_array()) fail(where, ".single: expected an array");
    const json* specials = find(cfg, "special_tokens");
    std::vector<int32_t> pre, suf;
    bool seen_a = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const json& item = (*single)[i];
      const std::string w = str_cat(where, ".single[", i, "]");
      if (const json* seq = item.is_object() ? find(item, "Sequence") : nullptr) {
        if (seen_a) fail(w, ": more than one Sequence in a single template is not supported");
        if (get_string(*seq, "id", w + ".Sequence") != "A") fail(w, ": the single template may only use sequence A");
        seen_a = true;
      } else if (const json* sp = item.is_object() ? find(item, "SpecialToken") : nullptr) {
        const std::string name = get_string(*sp, "id", w + ".SpecialToken");
        const json* entry = specials ? find(*specials, name.c_str()) : nullptr;
        const json* ids = entry ? find(*entry, "ids") : nullptr;
        if (!ids || !ids->is_array()) fail(where, ".special_tokens['", name, "'].ids: expected an array of ids");
        for (const json& id : *ids) {
          if (!id.is_number_integer()) fail(where, ".special_tokens['", name, "'].ids: expected integers");
          (seen_a ? suf : pre).push_back(id.get<int32_t>());
        }
      } else {
        fail(w, ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    pp.prefix.insert(pp.prefix.begin(), pre.begin(), pre.end());
    pp.suffix.insert(pp.suffix.end(), suf.begin(), suf.end());
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto token_id = [&](const char* key) {
      const json* v = find(cfg, key);
      if (!v || !v->is_array() || v->size() != 2 || !(*v)[1].is_number_integer()) {
        fail(where, ".", key, ": expected [token, id]");
      }
      return (*v)[1].get<int32_t>();
    };
    pp.prefix.insert(pp.prefix.begin(), token_id("cls"));
    pp.suffix.push_back(token_id("sep"));
    return;
  }
  if (type == "Sequence") {
    const json* list = find(cfg, "processors");
    if (!list || !list->is_array()) fail(where, ".processors: expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      parse_post_processor((*list)[i], str_cat(where, ".processors[", i, "]"), pp);
    }
    return;
  }
  fail(where, ": post-processor type '", type,
       "' is not supported (supported: TemplateProcessing, ByteLevel, BertProcessing, "
       "RobertaProcessing, Sequence)");
}

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  BpeModel model;
  std::shared_ptr<const Normalizer> normalizer;
  std::shared_ptr<PreTokenizer> pre_tokenizer;
  std::shared_ptr<const Decoder> decoder;
  PostProcess post;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  StringIdMap added_by_content;
  std::unordered_set<std::string> special_contents;
  AddedTokenMatcher raw_matcher;         // tokens matched on the original text
  AddedTokenMatcher normalized_matcher;  // tokens matched after normalization
  TokenizerConfig config;
  int32_t vocab_size = 0;

  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
};

Tokenizer Tokenizer::load(const std::string& dir_or_file) {
  namespace fs = std::filesystem;
  fs::path path(dir_or_file);
  fs::path dir;
  std::error_code ec;
  // A GGUF model file carries its tokenizer (tokenizer/gguf_vocab.h).
  if (!fs::is_directory(path, ec) && is_gguf_file(dir_or_file)) {
    return tokenizer_from_gguf(*GgufFile::open(dir_or_file));
  }
  if (fs::is_directory(path, ec)) {
    dir = path;
    path /= "tokenizer.json";
  } else {
    dir = path.parent_path();
  }
  if (!fs::exists(path, ec)) fail(path.string(), ": no such file (expected a tokenizer.json or a directory holding one)");
  const std::string tok_json = read_file(path);
  std::string cfg_json;
  const fs::path cfg_path = dir / "tokenizer_config.json";
  if (fs::exists(cfg_path, ec)) cfg_json = read_file(cfg_path);
  // transformers >= 4.43 may keep the template in its own file.
  std::string jinja;
  if (const fs::path j = dir / "chat_template.jinja"; fs::exists(j, ec)) jinja = read_file(j);
  return build(tok_json, cfg_json, path.string(), jinja);
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               const std::string& source) {
  return build(tokenizer_json, config_json, source, "");
}

Tokenizer Tokenizer::build(std::string_view tokenizer_json, std::string_view config_json,
                           const std::string& source, const std::string& chat_template_file) {
  const json root = parse_json(tokenizer_json, source);
  if (!root.is_object()) fail(source, ": expected a JSON object");
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  const json* model = find(root, "model");
  if (!model) fail(source, ": missing field 'model'");
  try {
    impl->model = BpeModel::from_json(*model);
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.rfind("tokenizer.json", 0) == 0) msg = source + msg.substr(14);
    throw Error(msg);
  }
  const json null_json;
  auto field = [&](const char* key) -> const json& {
    const json* v = find(root, key);
    return v ? *v : null_json;
  };
  impl->normalizer = make_normalizer(field("normalizer"), source + ": normalizer");
  impl->pre_tokenizer = make_pre_tokenizer(field("pre_tokenizer"), source + ": pre_tokenizer");
  impl->decoder = make_decoder(field("decoder"), source + ": decoder");
  parse_post_processor(field("post_processor"), source + ": post_processor", impl->post);
  // A trailing ByteLevel step hands raw bytes to the model (same ids, no re-encoding).
  if (impl->pre_tokenizer && impl->pre_tokenizer->set_raw_byte_output()) impl->model.set_raw_byte_input(true);

  if (const json* added = find(root, "added_tokens")) {
    if (!added->is_array()) fail(source, ": added_tokens: expected an array");
    for (size_t i = 0; i < added->size(); ++i) {
      const json& a = (*added)[i];
      const std::string w = str_cat(source, ": added_tokens[", i, "]");
      if (!a.is_object()) fail(w, ": expected an object");
      AddedToken t;
      t.content = get_string(a, "content", w);
      const int64_t id = get_int(a, "id", -1, w);
      if (id < 0 || id > INT32_MAX) fail(w, ".id: expected a non-negative integer");
      t.id = static_cast<int32_t>(id);
      t.special = get_bool(a, "special", false, w);
      t.lstrip = get_bool(a, "lstrip", false, w);
      t.rstrip = get_bool(a, "rstrip", false, w);
      t.single_word = get_bool(a, "single_word", false, w);
      t.normalized = get_bool(a, "normalized", !t.special, w);
      if (t.content.empty()) continue;
      impl->added.push_back(std::move(t));
    }
  }
  int32_t max_id = impl->model.max_id();
  std::vector<std::string> raw_patterns, norm_patterns;
  std::vector<const AddedToken*> raw_tokens, norm_tokens;
  // HF matches special tokens before other added tokens of the same content.
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& t : impl->added) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized && impl->normalizer) {
        norm_patterns.push_back(impl->normalizer->normalize(t.content));
        norm_tokens.push_back(&t);
      } else if (t.normalized) {
        norm_patterns.push_back(t.content);
        norm_tokens.push_back(&t);
      } else {
        raw_patterns.push_back(t.content);
        raw_tokens.push_back(&t);
      }
    }
  }
  for (size_t i = 0; i < impl->added.size(); ++i) {
    const AddedToken& t = impl->added[i];
    impl->added_by_id.emplace(t.id, i);
    impl->added_by_content.emplace(t.content, t.id);
    if (t.special) impl->special_contents.insert(t.content);
    max_id = std::max(max_id, t.id);
  }
  impl->raw_matcher.build(raw_patterns, raw_tokens);
  impl->normalized_matcher.build(norm_patterns, norm_tokens);
  impl->vocab_size = max_id + 1;

  if (!config_json.empty()) {
    const std::string where = source + " (tokenizer_config.json)";
    impl->config = TokenizerConfig::parse(parse_json(config_json, where), where);
  }
  if (impl->config.chat_template.empty()) impl->config.chat_template = chat_template_file;
  Tokenizer tok;
  tok.impl_ = impl;
  TokenizerConfig& c = impl->config;
  c.bos_id = c.bos_token ? tok.token_to_id(*c.bos_token) : -1;
  c.eos_id = c.eos_token ? tok.token_to_id(*c.eos_token) : -1;
  c.pad_id = c.pad_token ? tok.token_to_id(*c.pad_token) : -1;
  c.unk_id = c.unk_token ? tok.token_to_id(*c.unk_token) : -1;
  c.mask_id = c.mask_token ? tok.token_to_id(*c.mask_token) : -1;
  return tok;
}

void Tokenizer::Impl::encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  thread_local PreTokenized pt;
  pt.reset(text, at_start);
  if (pre_tokenizer) pre_tokenizer->apply(pt);
  for (const Piece& p : pt.pieces) model.encode_word(pt.text(p), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  encode_into(text, add_special_tokens, ids);
  return ids;
}

void Tokenizer::encode_into(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const {
  const Impl& m = *impl_;
  if (add_special_tokens) out.insert(out.end(), m.post.prefix.begin(), m.post.prefix.end());
  std::vector<AddedSplit> sections, subs;
  if (m.raw_matcher.empty()) {
    sections.push_back({0, static_cast<uint32_t>(text.size()), -1});
  } else {
    m.raw_matcher.split(text, sections);
  }
  for (const AddedSplit& s : sections) {
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    const std::string_view piece = text.substr(s.begin, s.end - s.begin);
    const bool at_start = s.begin == 0;
    if (!m.normalizer && m.normalized_matcher.empty()) {
      m.encode_text(piece, at_start, out);
      continue;
    }
    const std::string normalized = m.normalizer ? m.normalizer->normalize(piece) : std::string(piece);
    if (m.normalized_matcher.empty()) {
      m.encode_text(normalized, at_start, out);
      continue;
    }
    m.normalized_matcher.split(normalized, subs);
    for (const AddedSplit& t : subs) {
      if (t.id >= 0) {
        out.push_back(t.id);
      } else {
        m.encode_text(std::string_view(normalized).substr(t.begin, t.end - t.begin), at_start && t.begin == 0, out);
      }
    }
  }
  if (add_special_tokens) out.insert(out.end(), m.post.suffix.begin(), m.post.suffix.end());
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const auto it = m.added_by_id.find(id); it != m.added_by_id.end()) {
      const AddedToken& t = m.added[it->second];
      if (!(skip_special_tokens && t.special)) tokens.push_back(t.content);
      continue;
    }
    const std::string* tok = m.model.id_to_token(id);
    if (!tok) continue;
    if (skip_special_tokens && m.special_contents.count(*tok)) continue;
    tokens.push_back(*tok);
  }
  if (!m.decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  m.decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) return it->second;
  return impl_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
    return impl_->added[it->second].content;
  }
  if (const std::string* t = impl_->model.id_to_token(id)) return *t;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const {
  const auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
const TokenizerConfig& Tokenizer::config() const { return impl_->config; }
const std::string& Tokenizer::source() const { return impl_->source; }

std::string clean_up_tokenization(std::string_view text) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  std::string s(text);
  for (const auto& [from, to] : kRules) {
    std::string out;
    size_t prev = 0;
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, prev)) {
      out.append(s, prev, pos - prev);
      out.append(to);
      prev = pos + from.size();
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace illada::tokenizer
