// tokenizer.json <-> tokenizer.ggml.*: the vocabulary as llama.cpp's converter lays it out
// (one token per embedding row, "[PADi]" for unused ids, token types, "a b" merges) and the
// pre-tokenizer names that stand for the regular expressions both sides implement.
#include "tokenizer/gguf_vocab.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_level.h"
#include "util/check.h"
#include "util/file.h"

namespace illada::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// llama.cpp's token types (enum llama_token_type).
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// Qwen2's split expression, as its tokenizer.json spells it.
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json parse(std::string_view text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(where, ": invalid JSON: ", e.what());
  }
}

const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

bool is_type(const json* j, std::string_view type) {
  const json* t = j ? field(*j, "type") : nullptr;
  return t && t->is_string() && t->get<std::string>() == type;
}

// The components of a Sequence (or the component itself).
std::vector<const json*> steps(const json* j, const char* list_key) {
  std::vector<const json*> out;
  if (!j) return out;
  if (is_type(j, "Sequence")) {
    if (const json* l = field(*j, list_key); l && l->is_array()) {
      for (const json& s : *l) out.push_back(&s);
    }
  } else {
    out.push_back(j);
  }
  return out;
}

bool byte_level_bpe(const json& root) {
  const json* model = field(root, "model");
  if (!is_type(model, "BPE")) return false;
  bool pre = false, dec = false;
  for (const json* s : steps(field(root, "pre_tokenizer"), "pretokenizers")) pre |= is_type(s, "ByteLevel");
  for (const json* s : steps(field(root, "decoder"), "decoders")) dec |= is_type(s, "ByteLevel");
  return pre && dec;
}

std::string merge_text(const json& m, const std::string& where) {
  if (m.is_string()) return m.get<std::string>();
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  fail(where, ": model.merges: expected \"a b\" strings or [a, b] pairs");
}

// The pre-tokenizer JSON of a llama.cpp pre-tokenizer name and whether its BPE ignores merges
// for words already in the vocabulary.
bool pre_tokenizer_for(const std::string& pre, json* out, bool* ignore_merges) {
  auto split_then_bytes = [](std::string_view pattern) {
    return json{{"type", "Sequence"},
                 {"pretokenizers",
                  {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                   {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  };
  *ignore_merges = false;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    *out = split_then_bytes(kLlama3Pattern);
    *ignore_merges = true;
  } else if (pre == "smaug-bpe" || pre == "dbrx") {
    *out = split_then_bytes(kLlama3Pattern);
  } else if (pre == "qwen2") {
    *out = split_then_bytes(kQwen2Pattern);
  } else if (pre == "gpt-2" || pre == "gpt2") {
    *out = json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  } else {
    return false;
  }
  return true;
}

std::string read_optional(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec) ? read_file(p.string()) : std::string();
}

}  // namespace

std::string ggml_pre_tokenizer_name(std::string_view tokenizer_json) {
  const json root = parse(tokenizer_json, "tokenizer.json");
  const json* model = field(root, "model");
  const bool ignore = model && field(*model, "ignore_merges") && (*field(*model, "ignore_merges")) == true;
  const auto pre = steps(field(root, "pre_tokenizer"), "pretokenizers");
  // llama.cpp never adds a prefix space for these.
  auto prefix_space = [](const json* byte_level) {
    const json* p = field(*byte_level, "add_prefix_space");
    return !p || *p == true;  // HF's default is true
  };
  if (pre.size() == 1 && is_type(pre[0], "ByteLevel")) {
    const json* r = field(*pre[0], "use_regex");
    return (!r || *r == true) && !prefix_space(pre[0]) ? "gpt-2" : "";
  }
  if (pre.size() == 2 && is_type(pre[0], "Split") && is_type(pre[1], "ByteLevel")) {
    const json* r = field(*pre[1], "use_regex");
    if (!r || *r == true || prefix_space(pre[1])) return "";
    const json* pat = field(*pre[0], "pattern");
    const json* regex = pat ? field(*pat, "Regex") : nullptr;
    if (!regex || !regex->is_string()) return "";
    const std::string p = regex->get<std::string>();
    if (p == kLlama3Pattern) return ignore ? "llama-bpe" : "smaug-bpe";
    if (p == kQwen2Pattern && !ignore) return "qwen2";
  }
  return "";
}

GgufVocab gguf_vocab_from_dir(const std::string& model_dir, const GgufVocabOptions& o) {
  GgufVocab v;
  auto add = [&](const std::string& k, GgufValue val) { v.kv.emplace_back(k, std::move(val)); };
  const fs::path dir(model_dir);
  const fs::path tok_path = dir / "tokenizer.json";
  const std::string tok_text = read_optional(tok_path);
  if (tok_text.empty()) {
    add("tokenizer.ggml.model", GgufValue::str("none"));
    v.warnings.push_back(str_cat(model_dir, " has no tokenizer.json: the file carries no tokenizer "
                                            "(llama.cpp and illada will run on token ids only)"));
    return v;
  }
  const std::string where = tok_path.string();
  const json root = parse(tok_text, where);
  const std::string cfg_text = read_optional(dir / "tokenizer_config.json");
  const json cfg = cfg_text.empty() ? json::object() : parse(cfg_text, (dir / "tokenizer_config.json").string());
  std::string chat_template = read_optional(dir / "chat_template.jinja");
  if (chat_template.empty()) {
    if (const json* t = field(cfg, "chat_template"); t && t->is_string()) chat_template = t->get<std::string>();
  }

  if (!byte_level_bpe(root)) {
    add("tokenizer.ggml.model", GgufValue::str("none"));
    v.warnings.push_back(str_cat(where, " is not a byte-level BPE tokenizer: llama.cpp gets no "
                                        "vocabulary (it runs on token ids); illada keeps the "
                                        "tokenizer in tokenizer.huggingface.json"));
  } else {
    const json& model = *field(root, "model");
    const json* vocab = field(model, "vocab");
    if (!vocab || !vocab->is_object()) fail(where, ": model.vocab: expected an object of token -> id");
    std::vector<std::string> tokens(static_cast<size_t>(o.n_rows));
    std::vector<int32_t> types(static_cast<size_t>(o.n_rows), kUnused);
    std::vector<bool> set(static_cast<size_t>(o.n_rows), false);
    auto place = [&](const std::string& token, int64_t id, int32_t type) {
      if (id < 0 || id >= o.n_rows) {
        fail(where, ": token '", token, "' has id ", id, " but the model has ", o.n_rows, " embedding rows");
      }
      tokens[id] = token;
      types[id] = type;
      set[id] = true;
    };
    for (const auto& [token, id] : vocab->items()) {
      if (!id.is_number_integer()) fail(where, ": model.vocab['", token, "']: expected an integer id");
      place(token, id.get<int64_t>(), kNormal);
    }
    if (const json* added = field(root, "added_tokens"); added && added->is_array()) {
      for (const json& a : *added) {
        const json* content = field(a, "content");
        const json* id = field(a, "id");
        if (!content || !content->is_string() || !id || !id->is_number_integer()) {
          fail(where, ": added_tokens: expected {\"id\": integer, \"content\": string, ...}");
        }
        const json* special = field(a, "special");
        place(content->get<std::string>(), id->get<int64_t>(),
              special && *special == true ? kControl : kUserDefined);
      }
    }
    for (int64_t i = 0; i < o.n_rows; ++i) {
      if (!set[i]) tokens[i] = str_cat("[PAD", i, "]");
    }
    std::vector<std::string> merges;
    if (const json* m = field(model, "merges"); m && m->is_array()) {
      for (const json& x : *m) merges.push_back(merge_text(x, where));
    }
    std::string pre = ggml_pre_tokenizer_name(tok_text);
    if (pre.empty()) {
      pre = "default";
      v.warnings.push_back(str_cat(where, ": its pre-tokenizer is none llama.cpp names (gpt-2, "
                                          "llama-bpe, smaug-bpe, qwen2); tokenizer.ggml.pre = "
                                          "\"default\", so llama.cpp may split text differently "
                                          "(illada uses tokenizer.huggingface.json)"));
    }
    if (field(root, "normalizer")) {
      v.warnings.push_back(str_cat(where, ": its normalizer has no tokenizer.ggml.* equivalent; "
                                          "llama.cpp will not apply it"));
    }
    add("tokenizer.ggml.model", GgufValue::str("gpt2"));
    add("tokenizer.ggml.pre", GgufValue::str(pre));
    add("tokenizer.ggml.tokens", GgufValue::str_array(std::move(tokens)));
    add("tokenizer.ggml.token_type", GgufValue::i32_array(types));
    add("tokenizer.ggml.merges", GgufValue::str_array(std::move(merges)));
  }
  const json* add_bos = field(cfg, "add_bos_token");
  add("tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos && *add_bos == true));
  const json* add_eos = field(cfg, "add_eos_token");
  add("tokenizer.ggml.add_eos_token", GgufValue::boolean(add_eos && *add_eos == true));
  if (!chat_template.empty()) add("tokenizer.chat_template", GgufValue::str(chat_template));
  add("tokenizer.huggingface.json", GgufValue::str(tok_text));
  if (!cfg_text.empty()) add("illada.tokenizer_config", GgufValue::str(cfg_text));
  return v;
}

Tokenizer tokenizer_from_gguf(const GgufFile& f) {
  const std::string& src = f.path();
  auto str_key = [&](const char* key) -> const std::string* {
    const GgufValue* v = f.find(key);
    if (!v) return nullptr;
    if (v->array || !v->as_string()) fail(src, ": key '", key, "' must be a string, got ", v->describe());
    return v->as_string();
  };
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  auto token_text = [&](const char* key) -> std::optional<std::string> {
    const GgufValue* v = f.find(str_cat("tokenizer.ggml.", key));
    const auto id = v ? v->as_int() : std::nullopt;
    if (!id || !tokens) return std::nullopt;
    const std::string* t = tokens->as_string(static_cast<uint64_t>(*id));
    return t ? std::optional<std::string>(*t) : std::nullopt;
  };
  const std::string* chat_template = str_key("tokenizer.chat_template");

  // tokenizer_config.json: the one stored, else what the ggml keys say.
  json cfg = json::object();
  if (const std::string* c = str_key("illada.tokenizer_config")) {
    cfg = parse(*c, src + ": illada.tokenizer_config");
    if (!cfg.is_object()) fail(src, ": illada.tokenizer_config: expected a JSON object");
  } else {
    if (auto t = token_text("bos_token_id")) cfg["bos_token"] = *t;
    if (auto t = token_text("eos_token_id")) cfg["eos_token"] = *t;
    if (auto t = token_text("padding_token_id")) cfg["pad_token"] = *t;
    if (auto t = token_text("mask_token_id")) cfg["mask_token"] = *t;
    for (const char* k : {"add_bos_token", "add_eos_token"}) {
      const GgufValue* v = f.find(str_cat("tokenizer.ggml.", k));
      if (v && v->type == GgufType::BOOL && !v->array) cfg[k] = *v->as_int() != 0;
    }
  }
  if (chat_template && !cfg.contains("chat_template")) cfg["chat_template"] = *chat_template;
  const std::string cfg_text = cfg.dump();

  if (const std::string* hf = str_key("tokenizer.huggingface.json")) {
    return Tokenizer::from_json(*hf, cfg_text, src + ": tokenizer.huggingface.json");
  }
  const std::string* model = str_key("tokenizer.ggml.model");
  if (!model || *model == "none" || *model == "no_vocab") {
    fail(src, ": the file carries no tokenizer (tokenizer.ggml.model is ",
         model ? "\"" + *model + "\"" : std::string("absent"),
         "); give token ids (--prompt-ids) or a tokenizer directory (--tokenizer DIR)");
  }
  if (*model != "gpt2") {
    fail(src, ": tokenizer.ggml.model \"", *model,
         "\" is not supported (illada rebuilds byte-level BPE, \"gpt2\", tokenizers)");
  }
  const std::string* pre_name = str_key("tokenizer.ggml.pre");
  json pre;
  bool ignore_merges = false;
  if (!pre_name || !pre_tokenizer_for(*pre_name, &pre, &ignore_merges)) {
    fail(src, ": tokenizer.ggml.pre \"", pre_name ? *pre_name : std::string("(absent)"),
         "\" is not supported (illada knows gpt-2, llama-bpe/llama3, smaug-bpe/dbrx and qwen2)");
  }
  if (!tokens || !tokens->array || tokens->type != GgufType::STRING) {
    fail(src, ": tokenizer.ggml.tokens must be an array of strings");
  }
  const GgufValue* types = f.find("tokenizer.ggml.token_type");
  if (types && (!types->array || types->count() != tokens->count() || !types->as_int())) {
    fail(src, ": tokenizer.ggml.token_type must be an integer array as long as tokenizer.ggml.tokens");
  }
  // (nlohmann's ordered_json would insert 128k tokens in quadratic time.)
  json vocab = json::object(), added = json::array();
  for (uint64_t i = 0; i < tokens->count(); ++i) {
    const std::string& t = tokens->strings[i];
    const int64_t type = types ? *types->as_int(i) : int64_t{kNormal};
    if (type == kUnused) continue;
    if (type == kControl || type == kUserDefined) {
      added.push_back({{"id", i}, {"content", t}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", type != kControl}, {"special", type == kControl}});
    } else {
      vocab[t] = i;
    }
  }
  json merges = json::array();
  if (const GgufValue* m = f.find("tokenizer.ggml.merges")) {
    if (!m->array || m->type != GgufType::STRING) fail(src, ": tokenizer.ggml.merges must be an array of strings");
    for (const std::string& s : m->strings) merges.push_back(s);
  }
  const json tok = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
        {"ignore_merges", ignore_merges}, {"vocab", vocab}, {"merges", merges}}},
  };
  return Tokenizer::from_json(tok.dump(), cfg_text, src + ": tokenizer.ggml.*");
}

}  // namespace illada::tokenizer
