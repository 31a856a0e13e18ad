// Text -> token shards (see data_prepare.h).
#include "train/data_prepare.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/token_shards.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "model/special_tokens.h"
#include "util/check.h"

namespace illada::train {
namespace {

using nlohmann::json;

// Buffers the stream and writes a shard each time shard_tokens are collected.
class ShardWriter {
 public:
  ShardWriter(const PrepareOptions& o, DatasetInfo& info) : o_(o), info_(info) {}

  void add(const std::vector<int32_t>& ids, int64_t n_prompt) {
    for (size_t i = 0; i < ids.size(); ++i) {
      tokens_.push_back(static_cast<uint32_t>(ids[i]));
      if (o_.sft) prompt_.push_back(static_cast<int64_t>(i) < n_prompt ? 1 : 0);
      if (static_cast<int64_t>(tokens_.size()) >= o_.shard_tokens) flush();
    }
    info_.n_tokens += static_cast<int64_t>(ids.size());
    ++info_.n_documents;
  }
  void flush() {
    if (tokens_.empty()) return;
    char name[32];
    std::snprintf(name, sizeof(name), "shard-%05zu.tok", info_.shards.size());
    write_token_shard(o_.out + "/" + name, tokens_, prompt_, static_cast<uint32_t>(info_.vocab_size));
    info_.shards.push_back(name);
    info_.shard_tokens.push_back(static_cast<int64_t>(tokens_.size()));
    tokens_.clear();
    prompt_.clear();
  }

 private:
  const PrepareOptions& o_;
  DatasetInfo& info_;
  std::vector<uint32_t> tokens_;
  std::vector<uint8_t> prompt_;
};

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

bool is_jsonl(const std::string& path) {
  const auto ext = std::filesystem::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json";
}

// Calls fn(line_number, line) for every non-blank line.
template <class Fn>
void for_each_line(const std::string& text, Fn&& fn) {
  size_t pos = 0;
  int64_t line = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    ++line;
    std::string_view l(text.data() + pos, nl - pos);
    if (!trim(l).empty()) fn(line, l);
    pos = nl + 1;
  }
}

std::string get_string(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) fail(where, ": missing key \"", key, "\"");
  if (!it->is_string()) fail(where, ": key \"", key, "\" must be a string");
  return it->get<std::string>();
}

// One JSONL line that must be a JSON object; errors name `where` (file:line).
json parse_object_line(std::string_view line, const std::string& where, const char* expected) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    fail(where, ": malformed JSON: ", e.what());
  }
  if (!j.is_object()) fail(where, ": expected ", expected);
  return j;
}

}  // namespace

DatasetInfo prepare_dataset(const tokenizer::Tokenizer& tok, const PrepareOptions& o) {
  if (o.inputs.empty()) fail("data prepare: no --input files");
  if (o.shard_tokens < 1) fail("--shard-tokens must be positive, got ", o.shard_tokens);
  const auto& cfg = tok.config();
  DatasetInfo info;
  info.sft = o.sft;
  info.vocab_size = tok.vocab_size();
  const SpecialTokens special = tokenizer_special_tokens(tok);
  info.eos_token_id = special.eos;
  info.mask_token_id = special.mask;
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) fail(o.out, ": cannot create the dataset directory: ", ec.message());
  // A previous dataset.json must not describe the new shards while they are being written.
  std::filesystem::remove(o.out + "/" + kDatasetManifest, ec);

  ShardWriter writer(o, info);
  const int32_t eos = info.eos_token_id;
  std::vector<int32_t> ids;
  auto add_document = [&](std::string_view text) {
    ids.clear();
    tok.encode_into(text, false, ids);
    ids.push_back(eos);
    writer.add(ids, 0);
  };
  std::unique_ptr<tokenizer::ChatTemplate> tmpl;
  if (o.sft) tmpl = std::make_unique<tokenizer::ChatTemplate>(tokenizer::ChatTemplate::from_config(cfg, o.chat_template));
  const std::string bos = cfg.bos_token.value_or("");

  for (const std::string& path : o.inputs) {
    const std::string text = read_file(path, kTextInputLimits);
    check_text(text, path);  // a binary file would tokenize "fine" into byte soup
    if (trim(text).empty()) fail(path, ": the file is empty (expected text or JSONL)");
    if (o.sft) {
      if (!is_jsonl(path)) fail(path, ": SFT data must be JSONL (.jsonl) with prompt/response or messages");
      for_each_line(text, [&](int64_t line, std::string_view l) {
        const std::string where = path + ":" + std::to_string(line);
        const json j = parse_object_line(l, where, "a JSON object");
        std::vector<tokenizer::ChatMessage> prompt;
        std::string response;
        if (j.contains("messages")) {
          const json& m = j["messages"];
          if (!m.is_array() || m.size() < 2) fail(where, ": \"messages\" must be an array of at least 2 messages");
          for (size_t i = 0; i < m.size(); ++i) {
            const std::string w = where + ": messages[" + std::to_string(i) + "]";
            if (!m[i].is_object()) fail(w, ": expected an object with role and content");
            prompt.push_back({get_string(m[i], "role", w), get_string(m[i], "content", w)});
          }
          if (prompt.back().role != "assistant") fail(where, ": the last message must have role \"assistant\"");
          response = prompt.back().content;
          prompt.pop_back();
        } else {
          prompt.push_back({"user", get_string(j, "prompt", where)});
          response = get_string(j, "response", where);
        }
        ids.clear();
        tok.encode_into(tmpl->render(prompt, {.bos_token = bos, .add_generation_prompt = true}), false, ids);
        const int64_t n_prompt = static_cast<int64_t>(ids.size());
        tok.encode_into(trim(response), false, ids);
        ids.push_back(eos);
        writer.add(ids, n_prompt);
      });
    } else if (is_jsonl(path)) {
      for_each_line(text, [&](int64_t line, std::string_view l) {
        const std::string where = path + ":" + std::to_string(line);
        const json j = parse_object_line(l, where, "a JSON object with a \"text\" key");
        add_document(get_string(j, "text", where));
      });
    } else if (o.doc_per_line) {
      for_each_line(text, [&](int64_t, std::string_view l) { add_document(l); });
    } else {
      // Paragraphs: runs of non-blank lines, separated by blank lines.
      std::string doc;
      size_t pos = 0;
      auto flush_doc = [&] {
        if (!trim(doc).empty()) add_document(trim(doc));
        doc.clear();
      };
      while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string_view l(text.data() + pos, nl - pos);
        if (trim(l).empty()) {
          flush_doc();
        } else {
          if (!doc.empty()) doc += '\n';
          doc += l;
        }
        pos = nl + 1;
      }
      flush_doc();
    }
  }
  writer.flush();
  if (info.n_tokens == 0) fail("data prepare: the inputs hold no documents");
  write_dataset_info(o.out, info);
  return info;
}

}  // namespace illada::train
