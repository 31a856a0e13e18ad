// Component-level tests: Unicode normalization against Python's unicodedata, regex dialect
// translation, UTF-8 helpers, bad tokenizer.json input, and invalid UTF-8 text.
#include <atomic>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/id_list.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_norm.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/tokenizer";

TEST(UnicodeNorm, MatchesPythonUnicodedata) {
  const json v = json::parse(testing::read_file(kFixtures + "/normalization_vectors.json"));
  EXPECT_EQ(v.at("unicode").get<std::string>(), unicode_tables_version());
  int bad = 0;
  for (const json& row : v.at("rows")) {
    const std::string in = row[0].get<std::string>();
    const std::pair<NormalForm, int> forms[] = {
        {NormalForm::kNFC, 1}, {NormalForm::kNFD, 2}, {NormalForm::kNFKC, 3}, {NormalForm::kNFKD, 4}};
    for (auto [form, col] : forms) {
      if (unicode_normalize(in, form) != row[col].get<std::string>() && ++bad < 20) {
        ADD_FAILURE() << "form " << col << " of " << json(in).dump() << ": got "
                      << json(unicode_normalize(in, form)).dump() << ", want " << row[col].dump();
      }
    }
    if (unicode_lowercase(in) != row[5].get<std::string>() && ++bad < 20) {
      ADD_FAILURE() << "lowercase of " << json(in).dump();
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(v.at("rows").size(), 500u);
}

TEST(UnicodeNorm, InvalidBytesPassThrough) {
  const std::string s = "e\xCC\x81\xFF" "e\xCC\x81\xC3";
  EXPECT_EQ(unicode_normalize(s, NormalForm::kNFC), "\xC3\xA9\xFF\xC3\xA9\xC3");
  EXPECT_EQ(unicode_lowercase("A\xFF" "B"), "a\xFF" "b");
}

TEST(Utf8, DecodeAndLossy) {
  EXPECT_TRUE(utf8_is_valid("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8_is_valid("\xC0\xAF"));          // overlong
  EXPECT_FALSE(utf8_is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8_is_valid("\xF4\x90\x80\x80"));  // > U+10FFFF
  // Maximal subparts, as Rust's from_utf8_lossy and WHATWG TextDecoder.
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(python_strip("\x1c \t\xC2\xA0x y\xE3\x80\x80\n"), "x y");
}

TEST(ByteLevel, AlphabetIsABijection) {
  for (int b = 0; b < 256; ++b) EXPECT_EQ(char_to_byte(byte_to_char(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(bytes_to_byte_level(" \n"), "\xC4\xA0\xC4\x8A");  // "ĠĊ"
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(byte_level_to_bytes(bytes_to_byte_level(all), back));
  EXPECT_EQ(back, all);
}

TEST(Regex, OnigurumaDialect) {
  EXPECT_EQ(translate_onig_pattern(R"(\s+(?!\S))"),
            R"([\t-\r\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+(?![^\t-\r\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]))");
  EXPECT_EQ(translate_onig_pattern(R"([^\s\p{L}])"),
            R"([^\t-\r\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\p{L}])");
  EXPECT_EQ(translate_onig_pattern(R"([]\s])"), R"([]\t-\r\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}])");
  EXPECT_EQ(translate_onig_pattern(R"(\h\\s)"), R"([0-9a-fA-F]\\s)");
  const Regex ws = Regex::compile(R"(\s)", "test");
  size_t b, e;
  EXPECT_TRUE(ws.search("\xC2\x85", 0, b, e));       // U+0085 is White_Space
  EXPECT_FALSE(ws.search("\xE1\xA0\x8E", 0, b, e));  // U+180E is not (PCRE2 says it is)
  EXPECT_FALSE(ws.search("\xEF\xBB\xBF", 0, b, e));  // U+FEFF is not
  const Regex word = Regex::compile(R"(\w+)", "test");
  ASSERT_TRUE(word.search("\xE0\xA4\xB9\xE0\xA4\xBF x", 0, b, e));  // "हि": letter + mark
  EXPECT_EQ(e, 6u);
}

TEST(Regex, InvalidUtf8IsSkippedNotFatal) {
  const Regex re = Regex::compile(R"(\p{L}+|[^\p{L}]+)", "test");
  std::vector<std::pair<uint32_t, uint32_t>> m;
  re.find_all("ab\xFF" "cd\xC3", m);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], std::make_pair(0u, 2u));
  EXPECT_EQ(m[1], std::make_pair(3u, 5u));
  EXPECT_THROW(Regex::compile("(unclosed", "tokenizer.json: pre_tokenizer"), Error);
}

// A minimal valid tokenizer.json with the given overrides.
std::string tiny_tokenizer(const json& overrides) {
  json t = {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"normalizer", nullptr},
            {"pre_tokenizer", nullptr},
            {"post_processor", nullptr},
            {"decoder", nullptr},
            {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
  for (const auto& [k, v] : overrides.items()) t[k] = v;
  return t.dump();
}

std::string load_error(const std::string& tokenizer_json) {
  try {
    Tokenizer::from_json(tokenizer_json, "", "my/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BadInput, ErrorsNameTheComponent) {
  EXPECT_EQ(Tokenizer::from_json(tiny_tokenizer(json::object())).encode("abab", false), (std::vector<int32_t>{2, 2}));
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos ? ::testing::AssertionSuccess()
                                               : ::testing::AssertionFailure() << "'" << msg << "' lacks '" << part << "'";
  };
  EXPECT_TRUE(has(load_error("{not json"), "my/tokenizer.json: invalid JSON"));
  EXPECT_TRUE(has(load_error("{}"), "missing field 'model'"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"pre_tokenizer", {{"type", "BertPreTokenizer"}}}})),
                  "pre_tokenizer: pre-tokenizer type 'BertPreTokenizer' is not supported"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"normalizer", {{"type", "Precompiled"}}}})),
                  "normalizer: normalizer type 'Precompiled' is not supported"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"decoder", {{"type", "CTC"}}}})), "decoder type 'CTC' is not supported"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"post_processor", {{"type", "Unknown"}}}})),
                  "post-processor type 'Unknown' is not supported"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"model", {{"type", "Unigram"}, {"vocab", json::array()}}}})),
                  "my/tokenizer.json: model.type 'Unigram' is not supported"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"a b"}}}}})),
                  "model.merges[0] 'a b': token 'b' is not in model.vocab"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"a b c"}}}}})),
                  "expected two tokens separated by one space"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"model", {{"type", "BPE"}, {"vocab", {{"a", -3}}}}}})),
                  "model.vocab['a']: expected a non-negative integer id"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"dropout", 0.1}}}})),
                  "dropout 0.1 is not supported"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"pre_tokenizer",
                                              {{"type", "Split"}, {"pattern", {{"Regex", "(("}}}, {"behavior", "Isolated"}}}})),
                  "pre_tokenizer.pattern: cannot compile regex '(('"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"pre_tokenizer",
                                              {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}}}})),
                  "pre_tokenizer.behavior 'Sideways' is not one of"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Nope"}}}}}}})),
                  "pre_tokenizer.pretokenizers[0]: pre-tokenizer type 'Nope'"));
  EXPECT_TRUE(has(load_error(tiny_tokenizer({{"added_tokens", {{{"content", "<x>"}}}}})), "added_tokens[0].id"));
  try {
    Tokenizer::load("/nonexistent/dir");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), "/nonexistent/dir: no such file"));
  }
}

TEST(BadInput, ConfigErrorsNameTheFile) {
  try {
    Tokenizer::from_json(tiny_tokenizer(json::object()), R"({"bos_token": 7})", "d/tokenizer.json");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json).bos_token"), std::string::npos) << e.what();
  }
}

// Random bytes, including invalid UTF-8, never crash and round-trip exactly through a
// byte-level tokenizer.
TEST(InvalidUtf8, RandomBytesRoundTrip) {
  ASSERT_TRUE(testing::llama3_available());
  const Tokenizer tok = Tokenizer::load(testing::llama3_dir());
  const Tokenizer split = Tokenizer::load(kFixtures + "/synthetic/split_mergedwithnext.tokenizer.json");
  const Tokenizer spm = Tokenizer::load(kFixtures + "/synthetic/spm_llama2.tokenizer.json");
  std::mt19937 rng(42);
  const char* pieces[] = {"a", " ", "\n", "\xFF", "\xC3", "\xA9", "\xE2\x82", "\xF0\x9F\x98\x80", "<|eot_id|>",
                          "\xED\xA0\x80", "12", "'s", "\xC0\xAF", "\t", "\xE4\xB8\xAD"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      if (rng() % 3 == 0) {
        s.push_back(static_cast<char>(rng() % 256));
      } else {
        s += pieces[rng() % std::size(pieces)];
      }
    }
    const auto ids = tok.encode(s, false);
    ASSERT_EQ(tok.decode(ids), s) << json::binary(std::vector<uint8_t>(s.begin(), s.end())).dump();
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
    // Another byte-level tokenizer (Split + ByteLevel, no regex); the SentencePiece one
    // byte-falls-back.
    ASSERT_EQ(split.decode(split.encode(s, false)), s);
    (void)spm.decode(spm.encode(s, true));
  }
  // All 256 single bytes.
  for (int b = 0; b < 256; ++b) {
    const std::string s(1, static_cast<char>(b));
    EXPECT_EQ(tok.decode(tok.encode(s, false)), s);
  }
}

TEST(Tokenizer, Llama3ConfigAndLookups) {
  ASSERT_TRUE(testing::llama3_available());
  const Tokenizer tok = Tokenizer::load(testing::llama3_dir());
  EXPECT_EQ(tok.vocab_size(), 128256);
  EXPECT_EQ(tok.config().bos_token.value_or(""), "<|begin_of_text|>");
  EXPECT_EQ(tok.config().bos_id, 128000);
  EXPECT_EQ(tok.config().eos_id, 128001);
  EXPECT_EQ(tok.token_to_id("<|eot_id|>"), 128009);
  EXPECT_EQ(tok.id_to_token(9906).value_or(""), "Hello");
  EXPECT_TRUE(tok.is_special(128009));
  EXPECT_FALSE(tok.is_special(9906));
  EXPECT_EQ(tok.token_to_id("no such token"), -1);
  const std::vector<int32_t> ids = {128000, 9906, 128009, 999999999, -5};
  EXPECT_EQ(tok.decode(ids), "<|begin_of_text|>Hello<|eot_id|>");  // unknown ids are skipped
  EXPECT_EQ(tok.decode(ids, true), "Hello");
  EXPECT_EQ(clean_up_tokenization("Hello , world . I 'm here n't"), "Hello, world. I'm heren't");
}

TEST(Tokenizer, CopiesShareStateAndThreadsAgree) {
  const Tokenizer a = Tokenizer::load(kFixtures + "/synthetic/bytelevel_gpt2.tokenizer.json");
  const Tokenizer b = a;
  const std::string text = "The quick brown fox jumps over the lazy dog 12345 times.";
  const auto want = a.encode(text, false);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (b.encode(text, false) != want) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace illada::tokenizer

namespace illada::tokenizer {
namespace {

TEST(IdList, ParseAndFormat) {
  EXPECT_EQ(parse_id_list("1,2,3", "--ids"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_id_list(" [1, 2 3]\n", "--ids"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_id_list("", "--ids"), (std::vector<int32_t>{}));
  EXPECT_THROW(parse_id_list("1,x", "--ids"), Error);
  EXPECT_THROW(parse_id_list("1;2", "--ids"), Error);
  EXPECT_THROW(parse_id_list("-1", "--ids"), Error);
  EXPECT_THROW(parse_id_list("10", "--ids", 10), Error);
  EXPECT_THROW(parse_id_list("99999999999", "--ids"), Error);
  const std::vector<int32_t> ids = {5, 6};
  EXPECT_EQ(format_ids(ids, false), "5 6");
  EXPECT_EQ(format_ids(ids, true), "{\"ids\": [5, 6]}");
}

}  // namespace
}  // namespace illada::tokenizer
