// Data preparation and the window loader: shard/dataset round trip, SFT formatting with one
// EOS and prompt flags, the 30% split rate, no padding, determinism and resume position.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/data_prepare.h"
#include "util/check.h"

namespace illada::train {
namespace {

namespace fs = std::filesystem;

TokenStream synthetic_stream(int64_t n, int32_t eos, int64_t doc_len) {
  TokenStream s;
  s.info.vocab_size = 100;
  s.info.eos_token_id = eos;
  for (int64_t i = 0; i < n; ++i) s.ids.push_back((i + 1) % doc_len == 0 ? eos : static_cast<int32_t>(2 + i % 90));
  s.info.n_tokens = n;
  return s;
}

TEST(DataLoader, SplitRateNoPaddingAndOffsets) {
  const TokenStream s = synthetic_stream(100000, 1, 37);
  const DataLoader dl(s, {.seq_len = 64, .batch_size = 8, .seed = 3});
  int64_t windows = 0, split = 0;
  for (int64_t step = 0; step < 500; ++step) {
    const LoaderBatch b = dl.batch(step);
    ASSERT_EQ(b.ids.size(), 8u * 64);  // no padding, every window full
    ASSERT_EQ(b.cu_seqlens.front(), 0);
    ASSERT_EQ(b.cu_seqlens.back(), 8 * 64);
    for (size_t i = 1; i < b.cu_seqlens.size(); ++i) ASSERT_LT(b.cu_seqlens[i - 1], b.cu_seqlens[i]);
    // Every window boundary is a segment boundary; at most one more per window.
    const std::set<int32_t> cu(b.cu_seqlens.begin(), b.cu_seqlens.end());
    for (int w = 0; w <= 8; ++w) ASSERT_TRUE(cu.count(w * 64));
    split += static_cast<int64_t>(b.cu_seqlens.size()) - 1 - 8;
    windows += 8;
    for (int w = 0; w < 8; ++w) {
      for (int i = 0; i < 64; ++i) ASSERT_EQ(b.ids[w * 64 + i], s.ids[b.starts[w] + i]);
    }
  }
  EXPECT_NEAR(static_cast<double>(split) / windows, 0.3, 0.02);
}

TEST(DataLoader, DeterministicAndResumable) {
  const TokenStream s = synthetic_stream(20000, 1, 50);
  const LoaderOptions o{.seq_len = 32, .batch_size = 4, .seed = 11};
  const DataLoader a(s, o);
  std::vector<LoaderBatch> run;
  for (int step = 0; step < 400; ++step) run.push_back(a.batch(step));  // crosses epochs
  // A fresh loader (a resumed run) starting at step 250 sees exactly the same batches.
  const DataLoader b(s, o);
  for (int step = 250; step < 400; ++step) {
    const LoaderBatch x = b.batch(step);
    ASSERT_EQ(x.ids, run[step].ids) << step;
    ASSERT_EQ(x.cu_seqlens, run[step].cu_seqlens) << step;
  }
  // Another seed, other batches.
  const DataLoader c(s, {.seq_len = 32, .batch_size = 4, .seed = 12});
  EXPECT_NE(c.batch(0).starts, run[0].starts);
  // Micro-batches are the step's windows in order.
  const LoaderBatch m1 = a.batch(7, 1, 2);
  EXPECT_EQ(m1.starts, std::vector<int64_t>(run[7].starts.begin() + 2, run[7].starts.end()));
}

TEST(DataLoader, EpochCoversEveryWindowOnce) {
  const TokenStream s = synthetic_stream(32 * 100 + 7, 1, 50);
  const DataLoader dl(s, {.seq_len = 32, .batch_size = 5, .seed = 2});
  EXPECT_EQ(dl.windows_per_epoch(), 100);
  EXPECT_EQ(dl.steps_for_epochs(1.0), 21);   // ceil(3207 / 160)
  EXPECT_EQ(dl.steps_for_epochs(12.0), 241);  // ceil(12 * 3207 / 160)
  std::set<int64_t> starts;
  for (int64_t g = 0; g < 100; ++g) starts.insert(dl.window_start(g));
  EXPECT_EQ(starts.size(), 100u);
  for (int64_t st : starts) EXPECT_EQ((st - *starts.begin()) % 32, 0);
}

TEST(DataLoader, DocumentSplittingKeepsEosWithItsDocument) {
  const TokenStream s = synthetic_stream(5000, 1, 10);
  const DataLoader dl(s, {.seq_len = 40, .batch_size = 2, .seed = 1, .split_prob = 0.0,
                          .split_documents = true, .eos_token_id = 1});
  const LoaderBatch b = dl.batch(0);
  for (size_t i = 1; i + 1 < b.cu_seqlens.size(); ++i) {
    const int32_t cut = b.cu_seqlens[i];
    if (cut % 40 != 0) {
      EXPECT_EQ(b.ids[cut - 1], 1) << cut;  // a cut inside a window follows EOS
    }
  }
  EXPECT_GE(b.cu_seqlens.size(), 2u + 2 * 3);
}

TEST(DataLoader, ErrorsForTooLittleData) {
  const TokenStream s = synthetic_stream(30, 1, 10);
  EXPECT_THROW(DataLoader(s, {.seq_len = 64, .batch_size = 1}), Error);
  EXPECT_THROW(DataLoader(s, {.seq_len = 1, .batch_size = 1}), Error);
}

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("illada_prep_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    tokenizer::BpeTrainer t({.vocab_size = 300, .reserved_tokens = 2});
    std::string text;
    for (int i = 0; i < 50; ++i) text += "the quick brown fox jumps over the lazy dog. What is two plus two? Four.\n";
    t.add_text(text);
    t.train();
    t.save((dir_ / "tok").string());
    tok_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load((dir_ / "tok").string()));
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
};

TEST_F(PrepareTest, ParagraphsBecomeDocumentsEndedByEos) {
  const std::string in = write("a.txt", "the quick fox\njumps\n\n\nthe lazy dog\n");
  const std::string out = (dir_ / "data").string();
  const DatasetInfo info = prepare_dataset(*tok_, {.inputs = {in}, .out = out, .shard_tokens = 3});
  EXPECT_EQ(info.n_documents, 2);
  EXPECT_GT(info.shards.size(), 1u);  // cut into 3-token shards
  const TokenStream s = load_dataset(out);
  const int32_t eos = tok_->config().eos_id;
  std::vector<int32_t> want = tok_->encode("the quick fox\njumps", false);
  want.push_back(eos);
  for (int32_t id : tok_->encode("the lazy dog", false)) want.push_back(id);
  want.push_back(eos);
  EXPECT_EQ(s.ids, want);
  EXPECT_TRUE(s.prompt.empty());
}

TEST_F(PrepareTest, SftExampleIsPromptResponseAndOneEos) {
  const std::string in = write("s.jsonl",
                               "{\"prompt\": \"What is two plus two?\", \"response\": \"Four.\"}\n"
                               "{\"messages\": [{\"role\": \"user\", \"content\": \"the fox\"}, "
                               "{\"role\": \"assistant\", \"content\": \"jumps\"}]}\n");
  const std::string out = (dir_ / "sft").string();
  const DatasetInfo info = prepare_dataset(*tok_, {.inputs = {in}, .out = out, .sft = true});
  EXPECT_EQ(info.n_documents, 2);
  const TokenStream s = load_dataset(out);
  ASSERT_EQ(s.prompt.size(), s.ids.size());
  const int32_t eos = tok_->config().eos_id;
  int64_t n_eos = 0;
  for (int32_t id : s.ids) n_eos += id == eos;
  EXPECT_EQ(n_eos, 2);
  EXPECT_EQ(s.ids.back(), eos);
  EXPECT_EQ(s.prompt.back(), 0);
  EXPECT_EQ(s.prompt.front(), 1);
  // The first example: the prompt with the assistant header, flagged; then "Four." and EOS.
  const std::string text = tok_->decode(s.ids);
  EXPECT_NE(text.find("<|start_header_id|>assistant<|end_header_id|>\n\nFour.<|endoftext|>"), std::string::npos) << text;
  int64_t first_eos = 0;
  while (s.ids[first_eos] != eos) ++first_eos;
  const int64_t resp = static_cast<int64_t>(tok_->encode("Four.", false).size());
  for (int64_t i = 0; i < first_eos - resp; ++i) EXPECT_EQ(s.prompt[i], 1) << i;
  for (int64_t i = first_eos - resp; i <= first_eos; ++i) EXPECT_EQ(s.prompt[i], 0) << i;
}

TEST_F(PrepareTest, MalformedJsonlNamesTheLine) {
  const std::string in = write("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": oops}\n");
  try {
    prepare_dataset(*tok_, {.inputs = {in}, .out = (dir_ / "x").string()});
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:3: malformed JSON"), std::string::npos) << e.what();
  }
  const std::string in2 = write("bad2.jsonl", "{\"prompt\": \"hi\"}\n");
  try {
    prepare_dataset(*tok_, {.inputs = {in2}, .out = (dir_ / "y").string(), .sft = true});
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad2.jsonl:1: missing key \"response\""), std::string::npos) << e.what();
  }
}

TEST_F(PrepareTest, CorruptShardIsReported) {
  const std::string in = write("a.txt", "the quick fox\n");
  const std::string out = (dir_ / "data").string();
  prepare_dataset(*tok_, {.inputs = {in}, .out = out});
  fs::resize_file(out + "/shard-00000.tok", fs::file_size(out + "/shard-00000.tok") - 1);
  try {
    load_dataset(out);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-00000.tok: truncated"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace illada::train
