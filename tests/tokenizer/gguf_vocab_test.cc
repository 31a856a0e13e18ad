// Tokenizers in GGUF files: the tokenizer.ggml.* keys written for the real Llama-3 tokenizer
// and a trained one, the pre-tokenizer names, and that a tokenizer read back from a file (from
// tokenizer.huggingface.json, or rebuilt from tokenizer.ggml.* alone as in files llama.cpp's
// converter wrote) encodes the whole test corpus exactly as the original.
#include "tokenizer/gguf_vocab.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"
#include "test_util.h"
#include "../test_util.h"

namespace illada::tokenizer {
namespace {

namespace fs = std::filesystem;
using testing::llama3_available;
using testing::llama3_dir;
using testing::read_file;
using testing::source_dir;

using test::error_of;

std::vector<std::string> corpus() {
  const auto j = nlohmann::json::parse(read_file(source_dir() + "/tests/fixtures/tokenizer/corpus.json"));
  std::vector<std::string> out;
  for (const auto& t : j) out.push_back(t.get<std::string>());
  return out;
}

const GgufValue& key(const GgufVocab& v, const std::string& k) {
  for (const auto& [name, value] : v.kv) {
    if (name == k) return value;
  }
  throw Error("no key " + k);
}

class GgufVocabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("illada_gguf_vocab_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A GGUF file holding only the given keys (minus those in `drop`), as a tokenizer source.
  std::string file_with(const GgufVocab& v, const std::vector<std::string>& drop = {},
                        const std::function<void(GgufWriter&)>& edit = {}) {
    GgufWriter w;
    w.set("general.architecture", GgufValue::str("llada"));
    for (const auto& [k, val] : v.kv) {
      if (std::find(drop.begin(), drop.end(), k) == drop.end()) w.set(k, val);
    }
    if (edit) edit(w);
    const std::string p = (dir_ / str_cat("t", n_++, ".gguf")).string();
    w.write(p);
    return p;
  }

  void expect_same_ids(const Tokenizer& want, const Tokenizer& got) {
    int n = 0;
    for (const std::string& text : corpus()) {
      const std::vector<int32_t> ids = want.encode(text, false);
      ASSERT_EQ(got.encode(text, false), ids) << text;
      ASSERT_EQ(got.decode(ids), want.decode(ids)) << text;
      ++n;
    }
    EXPECT_GT(n, 300);
  }

  fs::path dir_;
  int n_ = 0;
};

TEST_F(GgufVocabTest, Llama3KeysAreWhatLlamaCppsConverterWrites) {
  ASSERT_TRUE(llama3_available());
  const GgufVocab v = gguf_vocab_from_dir(llama3_dir(), {.n_rows = 128256});
  EXPECT_TRUE(v.warnings.empty()) << v.warnings[0];
  EXPECT_EQ(*key(v, "tokenizer.ggml.model").as_string(), "gpt2");
  EXPECT_EQ(*key(v, "tokenizer.ggml.pre").as_string(), "llama-bpe");
  const GgufValue& tokens = key(v, "tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.count(), 128256u);
  EXPECT_EQ(tokens.strings[9906], "Hello");
  EXPECT_EQ(tokens.strings[128000], "<|begin_of_text|>");
  const GgufValue& types = key(v, "tokenizer.ggml.token_type");
  EXPECT_EQ(*types.as_int(9906), 1);    // normal
  EXPECT_EQ(*types.as_int(128000), 3);  // control (a special added token)
  const auto hf = nlohmann::json::parse(read_file(llama3_dir() + "/tokenizer.json"));
  EXPECT_EQ(key(v, "tokenizer.ggml.merges").count(), hf["model"]["merges"].size());
  EXPECT_EQ(*key(v, "tokenizer.huggingface.json").as_string(), read_file(llama3_dir() + "/tokenizer.json"));
  EXPECT_FALSE(key(v, "tokenizer.chat_template").as_string()->empty());

  // More embedding rows than tokens: the converter's [PADi] placeholders, type unused.
  const GgufVocab padded = gguf_vocab_from_dir(llama3_dir(), {.n_rows = 128260});
  EXPECT_EQ(key(padded, "tokenizer.ggml.tokens").strings[128258], "[PAD128258]");
  EXPECT_EQ(*key(padded, "tokenizer.ggml.token_type").as_int(128258), 5);
  EXPECT_NE(error_of([&] { gguf_vocab_from_dir(llama3_dir(), {.n_rows = 1000}); }).find("has id"),
            std::string::npos);
}

TEST_F(GgufVocabTest, Llama3ReadsBackExactlyFromEitherForm) {
  ASSERT_TRUE(llama3_available());
  const Tokenizer want = Tokenizer::load(llama3_dir());
  const GgufVocab v = gguf_vocab_from_dir(llama3_dir(), {.n_rows = 128256});
  const std::string with_hf = file_with(v);
  expect_same_ids(want, Tokenizer::load(with_hf));  // Tokenizer::load takes a .gguf too
  EXPECT_EQ(Tokenizer::load(with_hf).config().chat_template, want.config().chat_template);
  // What a file from llama.cpp's converter carries: tokenizer.ggml.* only.
  const std::string ggml_only = file_with(v, {"tokenizer.huggingface.json", "illada.tokenizer_config"});
  const Tokenizer rebuilt = Tokenizer::load(ggml_only);
  expect_same_ids(want, rebuilt);
  EXPECT_EQ(rebuilt.token_to_id("<|eot_id|>"), 128009);
  EXPECT_TRUE(rebuilt.is_special(128009));
}

TEST_F(GgufVocabTest, TrainedTokenizerIsSmaugBpeAndRoundTrips) {
  // illada's trainer: the Llama-3 split without ignore_merges, which llama.cpp calls smaug-bpe.
  BpeTrainerOptions o;
  o.vocab_size = 600;
  BpeTrainer trainer(o);
  for (const std::string& t : corpus()) trainer.add_text(t);
  trainer.train();
  const fs::path model = dir_ / "tok";
  trainer.save(model.string());
  const Tokenizer want = Tokenizer::load(model.string());
  const GgufVocab v = gguf_vocab_from_dir(model.string(), {.n_rows = 700});
  EXPECT_EQ(*key(v, "tokenizer.ggml.pre").as_string(), "smaug-bpe");
  expect_same_ids(want, Tokenizer::load(file_with(v)));
  expect_same_ids(want, Tokenizer::load(file_with(v, {"tokenizer.huggingface.json", "illada.tokenizer_config"})));
}

TEST(GgufVocabPre, NamesTheRegexesLlamaCppImplements) {
  const std::string gpt2 =
      read_file(source_dir() + "/tests/fixtures/tokenizer/synthetic/bytelevel_gpt2.tokenizer.json");
  EXPECT_EQ(ggml_pre_tokenizer_name(gpt2), "");  // add_prefix_space: true has no llama.cpp name
  auto j = nlohmann::json::parse(gpt2);
  j["pre_tokenizer"]["add_prefix_space"] = false;
  EXPECT_EQ(ggml_pre_tokenizer_name(j.dump()), "gpt-2");
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(kLlama3Pattern)}}}, {"behavior", "Isolated"}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(ggml_pre_tokenizer_name(j.dump()), "llama-bpe");
  j["model"]["ignore_merges"] = false;
  EXPECT_EQ(ggml_pre_tokenizer_name(j.dump()), "smaug-bpe");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+";
  EXPECT_EQ(ggml_pre_tokenizer_name(j.dump()), "");
}

TEST_F(GgufVocabTest, FilesWithoutAUsableTokenizerSaySo) {
  GgufVocab none;
  none.kv.emplace_back("tokenizer.ggml.model", GgufValue::str("none"));
  EXPECT_NE(error_of([&] { Tokenizer::load(file_with(none)); }).find("carries no tokenizer"), std::string::npos);
  GgufVocab spm;
  spm.kv.emplace_back("tokenizer.ggml.model", GgufValue::str("llama"));
  EXPECT_NE(error_of([&] { Tokenizer::load(file_with(spm)); }).find("tokenizer.ggml.model \"llama\" is not supported"),
            std::string::npos);
  ASSERT_TRUE(llama3_available());
  const GgufVocab v = gguf_vocab_from_dir(llama3_dir(), {.n_rows = 128256});
  const std::vector<std::string> hf = {"tokenizer.huggingface.json", "illada.tokenizer_config"};
  const std::string pre = file_with(v, hf, [](GgufWriter& w) { w.set("tokenizer.ggml.pre", GgufValue::str("default")); });
  EXPECT_NE(error_of([&] { Tokenizer::load(pre); }).find("tokenizer.ggml.pre \"default\" is not supported"),
            std::string::npos);
  const std::string types = file_with(v, hf, [](GgufWriter& w) { w.set("tokenizer.ggml.token_type", GgufValue::i32_array({1, 1})); });
  EXPECT_NE(error_of([&] { Tokenizer::load(types); }).find("as long as tokenizer.ggml.tokens"), std::string::npos);
  const std::string bad_json = file_with(v, {}, [](GgufWriter& w) { w.set("tokenizer.huggingface.json", GgufValue::str("{")); });
  EXPECT_NE(error_of([&] { Tokenizer::load(bad_json); }).find("tokenizer.huggingface.json"), std::string::npos);
}

}  // namespace
}  // namespace illada::tokenizer
