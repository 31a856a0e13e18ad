// The C API in the build tree: versions, loading and its errors, every entry point on the tiny
// fixture model (with and without a tokenizer), options checked by field name, the step
// callback's cancel, the busy guard, the log callback, and the quantiser against the CLI's.
#include <gtest/gtest.h>
#include <illada/illada.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
const std::string kSource = ILLADA_SOURCE_DIR;
const std::string kModel = kSource + "/tests/fixtures/tiny_gqa";

// The tiny model with the tiny tokenizer beside it (same 128-token vocabulary).
std::string text_model_dir() {
  static const std::string dir = [] {
    const fs::path d = fs::temp_directory_path() / ("illada_capi_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    for (const char* f : {"config.json", "model.safetensors"}) {
      fs::copy_file(kModel + "/" + f, d / f, fs::copy_options::overwrite_existing);
    }
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      fs::copy_file(kSource + "/tests/fixtures/generate/tiny_tokenizer/" + f, d / f,
                    fs::copy_options::overwrite_existing);
    }
    return d.string();
  }();
  return dir;
}

struct Loaded {
  illada_model* model = nullptr;
  illada_context* ctx = nullptr;
  explicit Loaded(const std::string& path, illada_dtype dtype = ILLADA_DTYPE_F32) {
    illada_model_params p = illada_model_default_params();
    p.dtype = dtype;
    p.n_threads = 1;  // no OpenMP hand-offs: fast on a loaded machine (two_threads.c covers more)
    char err[512];
    EXPECT_EQ(illada_model_load(path.c_str(), &p, &model, err, sizeof err), ILLADA_OK) << err;
    EXPECT_EQ(illada_context_new(model, nullptr, &ctx), ILLADA_OK);
  }
  ~Loaded() {
    illada_context_free(ctx);
    illada_model_free(model);
  }
};

std::vector<illada_token> ids(const illada_generation& g) { return {g.ids, g.ids + g.n_ids}; }

illada_generate_params small_params() {
  illada_generate_params p = illada_generate_default_params();
  p.gen_length = 16;
  p.block_length = 8;
  p.steps = 8;
  return p;
}

TEST(CApi, VersionsAndStructSizes) {
  EXPECT_STREQ(illada_version(), "0.1.0");
  EXPECT_EQ(illada_abi_version(), ILLADA_ABI_VERSION);
  EXPECT_EQ(illada_struct_size("illada_generate_params"), sizeof(illada_generate_params));
  EXPECT_EQ(illada_struct_size("illada_generation"), sizeof(illada_generation));
  EXPECT_EQ(illada_struct_size("no_such_struct"), 0u);
  EXPECT_STREQ(illada_status_name(ILLADA_ERROR_LOAD), "ILLADA_ERROR_LOAD");
}

TEST(CApi, LoadErrorsNameThePath) {
  illada_model* m = reinterpret_cast<illada_model*>(0x1);
  char err[512];
  EXPECT_EQ(illada_model_load("/no/such/model", nullptr, &m, err, sizeof err), ILLADA_ERROR_LOAD);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(err).find("/no/such/model"), std::string::npos) << err;
  // A short buffer gets a cut, terminated message.
  char small[8];
  EXPECT_EQ(illada_model_load("/no/such/model", nullptr, &m, small, sizeof small), ILLADA_ERROR_LOAD);
  EXPECT_EQ(std::string(small).size(), 7u);
  illada_model_params p = illada_model_default_params();
  p.dtype = static_cast<illada_dtype>(7);
  EXPECT_EQ(illada_model_load(kModel.c_str(), &p, &m, err, sizeof err), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("dtype"), std::string::npos) << err;
  p = illada_model_default_params();
  p.pack_weights = 3;
  EXPECT_EQ(illada_model_load(kModel.c_str(), &p, &m, err, sizeof err), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("pack_weights"), std::string::npos) << err;
  p = illada_model_default_params();
  p.tokenizer_path = "/no/such/tokenizer";
  EXPECT_EQ(illada_model_load(kModel.c_str(), &p, &m, err, sizeof err), ILLADA_ERROR_LOAD);
  EXPECT_NE(std::string(err).find("/no/such/tokenizer"), std::string::npos) << err;
}

// bf16 weights packed in chunks (the default) and whole: batch-invariant generation computes
// the same bits from both.
TEST(CApi, PackedInChunksOrWholeGeneratesTheSameIds) {
  std::vector<std::vector<illada_token>> answers;
  for (int32_t pack : {1, 2}) {
    illada_model_params p = illada_model_default_params();
    p.n_threads = 1;
    p.pack_weights = pack;
    illada_model* m = nullptr;
    illada_context* ctx = nullptr;
    char err[512];
    ASSERT_EQ(illada_model_load(kModel.c_str(), &p, &m, err, sizeof err), ILLADA_OK) << err;
    ASSERT_EQ(illada_context_new(m, nullptr, &ctx), ILLADA_OK);
    const illada_token prompt[] = {1, 2, 3};
    const illada_tokens t{prompt, 3};
    illada_generation g[1];
    const auto gp = small_params();
    ASSERT_EQ(illada_generate(ctx, &t, 1, &gp, g), ILLADA_OK) << illada_context_error(ctx);
    answers.push_back(ids(g[0]));
    illada_generation_clear(g, 1);
    illada_context_free(ctx);
    illada_model_free(m);
  }
  ASSERT_EQ(answers[0].size(), 16u);
  EXPECT_EQ(answers[0], answers[1]);
}

TEST(CApi, ModelWithoutTokenizerWorksOnIds) {
  Loaded l(kModel);
  EXPECT_EQ(illada_model_has_tokenizer(l.model), 0);
  EXPECT_EQ(illada_model_n_vocab(l.model), 128);
  EXPECT_EQ(illada_model_max_sequence_length(l.model), 256);
  EXPECT_EQ(illada_model_mask_token(l.model), 5);
  EXPECT_EQ(illada_model_eos_token(l.model), 1);
  EXPECT_EQ(illada_model_dtype(l.model), ILLADA_DTYPE_F32);
  illada_token* out = nullptr;
  size_t n = 0;
  EXPECT_EQ(illada_tokenize(l.ctx, "hi", 2, 1, &out, &n), ILLADA_ERROR_NO_TOKENIZER);
  EXPECT_NE(std::string(illada_context_error(l.ctx)).find("tokenizer.json"), std::string::npos)
      << illada_context_error(l.ctx);
  const illada_token prompt[] = {1, 2, 3};
  const illada_tokens t{prompt, 3};
  illada_generation g[1];
  const auto p = small_params();
  ASSERT_EQ(illada_generate(l.ctx, &t, 1, &p, g), ILLADA_OK) << illada_context_error(l.ctx);
  EXPECT_STREQ(illada_context_error(l.ctx), "");
  EXPECT_EQ(g[0].n_ids, 16u);
  EXPECT_EQ(g[0].nfe, 8);
  EXPECT_EQ(g[0].text, nullptr);
  illada_generation again[1];
  ASSERT_EQ(illada_generate(l.ctx, &t, 1, &p, again), ILLADA_OK);
  EXPECT_EQ(ids(g[0]), ids(again[0]));
  illada_generation_clear(g, 1);
  illada_generation_clear(again, 1);
  EXPECT_EQ(g[0].ids, nullptr);
  // Stop strings need text.
  illada_generate_params ps = small_params();
  const char* stops[] = {"x"};
  ps.stop_strings = stops;
  ps.n_stop_strings = 1;
  EXPECT_EQ(illada_generate(l.ctx, &t, 1, &ps, g), ILLADA_ERROR_NO_TOKENIZER);
}

TEST(CApi, OptionErrorsNameTheField) {
  Loaded l(kModel);
  const illada_token prompt[] = {1, 2, 3};
  const illada_tokens t{prompt, 3};
  illada_generation g[1];
  auto expect_error = [&](illada_generate_params p, const std::string& field) {
    EXPECT_EQ(illada_generate(l.ctx, &t, 1, &p, g), ILLADA_ERROR_INVALID_ARGUMENT) << field;
    EXPECT_NE(std::string(illada_context_error(l.ctx)).find(field), std::string::npos) << illada_context_error(l.ctx);
  };
  auto p = small_params();
  p.gen_length = 10;
  expect_error(p, "block_length");
  p = small_params();
  p.temperature = -1;
  expect_error(p, "temperature");
  p = small_params();
  p.temperature = NAN;
  expect_error(p, "temperature");
  p = small_params();
  p.threshold = 2;
  expect_error(p, "threshold");
  p = small_params();
  p.remasking = static_cast<illada_remasking>(9);
  expect_error(p, "remasking");
  p = small_params();
  p.gen_length = 512;
  p.block_length = 32;
  p.steps = 16;
  expect_error(p, "max_sequence_length");
  p = small_params();
  p.gen_length = -4;
  expect_error(p, "gen_length");
  const illada_token bad[] = {1, 999};
  const illada_tokens tb{bad, 2};
  EXPECT_EQ(illada_generate(l.ctx, &tb, 1, nullptr, g), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(illada_context_error(l.ctx)).find("999"), std::string::npos) << illada_context_error(l.ctx);
  EXPECT_EQ(illada_generate(nullptr, &t, 1, nullptr, g), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(illada_generate(l.ctx, nullptr, 1, nullptr, g), ILLADA_ERROR_INVALID_ARGUMENT);
}

TEST(CApi, DerivedLengthsAsTheCli) {
  Loaded l(kModel);
  const illada_token prompt[] = {1, 2, 3};
  const illada_tokens t{prompt, 3};
  illada_generation g[1];
  // Defaults: 128 tokens, blocks of 32, one token per step.
  ASSERT_EQ(illada_generate(l.ctx, &t, 1, nullptr, g), ILLADA_OK) << illada_context_error(l.ctx);
  EXPECT_EQ(g[0].n_ids, 128u);
  EXPECT_EQ(g[0].nfe, 128);
  illada_generation_clear(g, 1);
  // A prompt of 200 tokens leaves 56 of the context of 256: 32 tokens (whole blocks).
  std::vector<illada_token> long_prompt(200, 7);
  const illada_tokens tl{long_prompt.data(), long_prompt.size()};
  ASSERT_EQ(illada_generate(l.ctx, &tl, 1, nullptr, g), ILLADA_OK) << illada_context_error(l.ctx);
  EXPECT_EQ(g[0].n_ids, 32u);
  illada_generation_clear(g, 1);
}

struct StepLog {
  int steps = 0;
  size_t committed = 0;
  int cancel_after = -1;
  std::vector<illada_token> last_canvas;
  illada_context* ctx = nullptr;
  illada_status reentry = ILLADA_OK;
};

int32_t on_step(const illada_step* s, void* user) {
  auto* log = static_cast<StepLog*>(user);
  ++log->steps;
  log->committed += s->n_committed;
  log->last_canvas.assign(s->canvas, s->canvas + s->canvas_length);
  if (log->ctx) {  // a second call on the busy context is refused, not raced
    illada_token* out = nullptr;
    size_t n = 0;
    log->reentry = illada_tokenize(log->ctx, "a", 1, 0, &out, &n);
  }
  return log->cancel_after >= 0 && log->steps >= log->cancel_after;
}

TEST(CApi, StepCallbackReportsAndCancels) {
  Loaded l(kModel);
  const illada_token prompt[] = {1, 2, 3};
  const illada_tokens t{prompt, 3};
  illada_generation g[1];
  StepLog log;
  log.ctx = l.ctx;
  auto p = small_params();
  p.step_callback = on_step;
  p.step_user_data = &log;
  ASSERT_EQ(illada_generate(l.ctx, &t, 1, &p, g), ILLADA_OK) << illada_context_error(l.ctx);
  EXPECT_EQ(log.reentry, ILLADA_ERROR_BUSY);
  EXPECT_EQ(log.steps, 8);
  EXPECT_EQ(log.committed, 16u);  // every generated position once
  ASSERT_EQ(log.last_canvas.size(), 19u);
  EXPECT_EQ(std::vector<illada_token>(log.last_canvas.begin() + 3, log.last_canvas.end()), ids(g[0]));
  EXPECT_EQ(g[0].cancelled, 0);
  illada_generation_clear(g, 1);

  StepLog stop;
  stop.cancel_after = 3;
  p.step_user_data = &stop;
  ASSERT_EQ(illada_generate(l.ctx, &t, 1, &p, g), ILLADA_OK);
  EXPECT_EQ(stop.steps, 3);
  EXPECT_EQ(g[0].cancelled, 1);
  EXPECT_EQ(g[0].nfe, 3);
  illada_generation_clear(g, 1);
}

TEST(CApi, LogitsAndScores) {
  Loaded l(kModel);
  const illada_token prompt[] = {1, 2, 3};
  std::vector<float> logits(3 * 128);
  EXPECT_EQ(illada_logits(l.ctx, prompt, 3, logits.data(), logits.size() - 1), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(illada_context_error(l.ctx)).find("capacity"), std::string::npos);
  ASSERT_EQ(illada_logits(l.ctx, prompt, 3, logits.data(), logits.size()), ILLADA_OK) << illada_context_error(l.ctx);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  const illada_token a[] = {4, 6}, b[] = {7}, c[] = {8, 9};
  const illada_tokens choices[] = {{a, 2}, {b, 1}, {c, 2}};
  double scores[3];
  ASSERT_EQ(illada_score(l.ctx, {prompt, 3}, choices, 3, nullptr, scores), ILLADA_OK) << illada_context_error(l.ctx);
  for (double s : scores) EXPECT_LT(s, 0);
  illada_score_params sp = illada_score_default_params();
  sp.method = ILLADA_SCORE_LIKELIHOOD;
  sp.mc_num = 8;
  sp.mc_batch_size = 3;
  EXPECT_EQ(illada_score(l.ctx, {prompt, 3}, choices, 3, &sp, scores), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(illada_context_error(l.ctx)).find("mc_batch_size"), std::string::npos);
  sp.mc_batch_size = 4;
  ASSERT_EQ(illada_score(l.ctx, {prompt, 3}, choices, 3, &sp, scores), ILLADA_OK) << illada_context_error(l.ctx);
}

int32_t stop_at_first(int64_t done, int64_t total, void* user) {
  *static_cast<int64_t*>(user) = total;
  return 1;
}

TEST(CApi, ProgressCallbackCancelsScoring) {
  Loaded l(kModel);
  const illada_token prompt[] = {1, 2, 3}, a[] = {4, 6};
  const illada_tokens choice{a, 2};
  illada_score_params sp = illada_score_default_params();
  sp.method = ILLADA_SCORE_LIKELIHOOD;
  sp.mc_num = 8;
  int64_t total = 0;
  sp.progress_callback = stop_at_first;
  sp.progress_user_data = &total;
  double score = 0;
  EXPECT_EQ(illada_score(l.ctx, {prompt, 3}, &choice, 1, &sp, &score), ILLADA_ERROR_CANCELLED);
  EXPECT_EQ(total, 1);  // 8 samples in one batch of 8
}

TEST(CApi, TextFunctions) {
  Loaded l(text_model_dir());
  ASSERT_EQ(illada_model_has_tokenizer(l.model), 1);
  illada_token* out = nullptr;
  size_t n = 0;
  // The tiny vocabulary has no space token: spaces are dropped, letters round-trip.
  ASSERT_EQ(illada_tokenize(l.ctx, "hello world", 11, 0, &out, &n), ILLADA_OK) << illada_context_error(l.ctx);
  ASSERT_GT(n, 0u);
  char* text = nullptr;
  size_t len = 0;
  ASSERT_EQ(illada_detokenize(l.ctx, out, n, 0, &text, &len), ILLADA_OK);
  EXPECT_EQ(std::string(text, len), "helloworld");
  illada_free(text);
  illada_free(out);
  illada_token eot = 0;
  ASSERT_EQ(illada_token_lookup(l.ctx, "<|eot_id|>", &eot), ILLADA_OK);
  EXPECT_EQ(eot, 10);
  const illada_chat_message msgs[] = {{"user", "hi"}};
  ASSERT_EQ(illada_chat_apply(l.ctx, msgs, 1, "llada", 1, &text, &len), ILLADA_OK) << illada_context_error(l.ctx);
  EXPECT_EQ(std::string(text, len), "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                                    "<|start_header_id|>assistant<|end_header_id|>\n\n");
  illada_free(text);
  EXPECT_EQ(illada_chat_apply(l.ctx, msgs, 1, "no-such-template", 1, &text, &len), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(illada_context_error(l.ctx)).find("no-such-template"), std::string::npos);
  // The tokenizer_config has no template of its own: chat needs one by name.
  illada_prompt_params pp = illada_prompt_default_params();
  pp.chat = 1;
  EXPECT_EQ(illada_prompt_encode(l.ctx, "hi", &pp, &out, &n), ILLADA_ERROR_INVALID_ARGUMENT);
  pp.chat_template = "llada";
  ASSERT_EQ(illada_prompt_encode(l.ctx, "hi", &pp, &out, &n), ILLADA_OK) << illada_context_error(l.ctx);
  EXPECT_EQ(out[0], 0);  // the BOS of the template
  illada_free(out);
  // Generation returns the text up to the first stop.
  ASSERT_EQ(illada_prompt_encode(l.ctx, "hello", nullptr, &out, &n), ILLADA_OK);
  const illada_tokens t{out, n};
  illada_generation g[1];
  auto p = small_params();
  p.variable_length = 1;
  ASSERT_EQ(illada_generate(l.ctx, &t, 1, &p, g), ILLADA_OK) << illada_context_error(l.ctx);
  ASSERT_NE(g[0].text, nullptr);
  EXPECT_EQ(std::string(g[0].text), std::string(g[0].text, g[0].text_length));
  illada_generation_clear(g, 1);
  illada_free(out);
  const char* choices[] = {"world", "cat"};
  double scores[2];
  ASSERT_EQ(illada_score_text(l.ctx, "hello", choices, 2, nullptr, nullptr, scores), ILLADA_OK)
      << illada_context_error(l.ctx);
}

struct Messages {
  std::vector<std::pair<illada_log_level, std::string>> all;
};

void collect(illada_log_level level, const char* message, void* user) {
  static_cast<Messages*>(user)->all.emplace_back(level, message);
}

TEST(CApi, LogCallbackOfModelAndContext) {
  Messages model_log, ctx_log;
  illada_model_params p = illada_model_default_params();
  p.dtype = ILLADA_DTYPE_F32;
  p.log_callback = collect;
  p.log_user_data = &model_log;
  illada_model* m = nullptr;
  ASSERT_EQ(illada_model_load(kModel.c_str(), &p, &m, nullptr, 0), ILLADA_OK);
  ASSERT_EQ(model_log.all.size(), 1u);
  EXPECT_EQ(model_log.all[0].first, ILLADA_LOG_INFO);
  EXPECT_NE(model_log.all[0].second.find("3 layers"), std::string::npos) << model_log.all[0].second;
  illada_context_params cp = illada_context_default_params();
  cp.log_callback = collect;
  cp.log_user_data = &ctx_log;
  illada_context* ctx = nullptr;
  ASSERT_EQ(illada_context_new(m, &cp, &ctx), ILLADA_OK);
  const illada_token prompt[] = {1, 2, 3};
  const illada_tokens t{prompt, 3};
  illada_generation g[1];
  auto gp = small_params();
  gp.steps = 32;  // more steps than tokens: a warning
  ASSERT_EQ(illada_generate(ctx, &t, 1, &gp, g), ILLADA_OK) << illada_context_error(ctx);
  illada_generation_clear(g, 1);
  ASSERT_GE(ctx_log.all.size(), 2u);
  EXPECT_EQ(ctx_log.all[0].first, ILLADA_LOG_WARN);
  EXPECT_NE(ctx_log.all[0].second.find("steps 32"), std::string::npos) << ctx_log.all[0].second;
  EXPECT_EQ(model_log.all.size(), 1u);  // the context's own callback took them
  gp.temperature = -1;
  EXPECT_EQ(illada_generate(ctx, &t, 1, &gp, g), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(ctx_log.all.back().first, ILLADA_LOG_ERROR);
  illada_context_free(ctx);
  illada_model_free(m);
}


std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A fresh directory for output files.
fs::path out_dir(const char* name) {
  const fs::path d = fs::temp_directory_path() / (std::string("illada_capi_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

int32_t count_tensors(int64_t done, int64_t total, void* user) {
  auto* seen = static_cast<std::vector<std::pair<int64_t, int64_t>>*>(user);
  seen->emplace_back(done, total);
  return 0;
}

TEST(CApi, QuantizeWritesTheBytesOfTheCli) {
  const fs::path d = out_dir("quantize");
  for (const char* type : {"q8_0", "q4_k_m", "f16"}) {
    const std::string cli_out = (d / (std::string("cli-") + type + ".gguf")).string();
    const std::string api_out = (d / (std::string("api-") + type + ".gguf")).string();
    const std::string cmd = std::string(ILLADA_CLI) + " quantize --quiet --model '" + text_model_dir() + "' --type " +
                            type + " --tensor-type 'attn_v=q8_0' --out '" + cli_out + "' > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    illada_quantize_params p = illada_quantize_default_params();
    EXPECT_STREQ(p.type, "q8_0");
    p.type = type;
    const char* overrides[] = {"attn_v=q8_0"};
    p.tensor_types = overrides;
    p.n_tensor_types = 1;
    p.n_threads = 1;
    std::vector<std::pair<int64_t, int64_t>> seen;
    p.progress_callback = count_tensors;
    p.progress_user_data = &seen;
    char err[512];
    ASSERT_EQ(illada_quantize(text_model_dir().c_str(), api_out.c_str(), &p, err, sizeof err), ILLADA_OK) << err;
    EXPECT_STREQ(err, "");
    const std::string want = file_bytes(cli_out), got = file_bytes(api_out);
    ASSERT_GT(want.size(), 1000u);
    EXPECT_TRUE(got == want) << type << ": " << got.size() << " bytes against the CLI's " << want.size();
    ASSERT_FALSE(seen.empty());
    for (size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i], std::make_pair(static_cast<int64_t>(i), static_cast<int64_t>(seen.size()))) << i;
    }
  }
  // The file runs, with the tokenizer the directory gave it.
  Loaded q((d / "api-q4_k_m.gguf").string());
  ASSERT_NE(q.model, nullptr);
  EXPECT_EQ(illada_model_has_tokenizer(q.model), 1);
  const illada_token prompt[] = {1, 2, 3};
  std::vector<float> logits(3 * illada_model_n_vocab(q.model));
  ASSERT_EQ(illada_logits(q.ctx, prompt, 3, logits.data(), logits.size()), ILLADA_OK) << illada_context_error(q.ctx);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  fs::remove_all(d);
}

TEST(CApi, QuantizeErrorsNameTheFieldAndLeaveNoFile) {
  const fs::path d = out_dir("quantize_errors");
  const std::string out = (d / "m.gguf").string();
  struct Case {
    std::function<void(illada_quantize_params&)> set;
    const char* path;
    std::string out_path;
    illada_status status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](illada_quantize_params& p) { p.type = "q3_k"; }, kModel.c_str(), out, ILLADA_ERROR_INVALID_ARGUMENT,
       "type 'q3_k': expected one of"},
      {[](illada_quantize_params& p) { p.type = nullptr; }, kModel.c_str(), out, ILLADA_ERROR_INVALID_ARGUMENT,
       "type is NULL"},
      {[](illada_quantize_params& p) {
         static const char* bad[] = {"attn_v=q8_0", "ffn_(=q8_0"};
         p.tensor_types = bad;
         p.n_tensor_types = 2;
       },
       kModel.c_str(), out, ILLADA_ERROR_INVALID_ARGUMENT, "tensor_types[1]"},
      {[](illada_quantize_params& p) { p.n_tensor_types = 1; }, kModel.c_str(), out, ILLADA_ERROR_INVALID_ARGUMENT,
       "tensor_types is NULL"},
      {[](illada_quantize_params& p) { p.n_threads = -2; }, kModel.c_str(), out, ILLADA_ERROR_INVALID_ARGUMENT,
       "n_threads -2"},
      {[](illada_quantize_params&) {}, "/no/such/model", out, ILLADA_ERROR_LOAD, "/no/such/model"},
      {[](illada_quantize_params&) {}, kModel.c_str(), (d / "missing" / "m.gguf").string(),
       ILLADA_ERROR_INVALID_ARGUMENT, "does not exist"},
      {[](illada_quantize_params&) {}, kModel.c_str(), "", ILLADA_ERROR_INVALID_ARGUMENT, "out_path is NULL or empty"},
      {[](illada_quantize_params&) {}, kModel.c_str(), fs::temp_directory_path().string(), ILLADA_ERROR_INVALID_ARGUMENT,
       "is a directory"},
  };
  for (const Case& c : cases) {
    illada_quantize_params p = illada_quantize_default_params();
    c.set(p);
    char err[512];
    EXPECT_EQ(illada_quantize(c.path, c.out_path.c_str(), &p, err, sizeof err), c.status) << c.message;
    EXPECT_NE(std::string(err).find(c.message), std::string::npos) << err;
    EXPECT_EQ(std::string(err).rfind("illada_quantize: ", 0), 0u) << err;
    EXPECT_TRUE(fs::is_empty(d)) << c.message << ": a file was left";
  }
  // A model whose weights hold a NaN: the tensor named, ILLADA_ERROR_LOAD.
  const fs::path bad = d / "nan_model";
  fs::create_directories(bad);
  fs::copy_file(kModel + "/config.json", bad / "config.json");
  std::string st = file_bytes(kModel + "/model.safetensors");
  const uint64_t header = *reinterpret_cast<const uint64_t*>(st.data());
  const size_t at = st.find("\"model.transformer.blocks.1.ff_proj.weight\"");
  ASSERT_NE(at, std::string::npos);
  const size_t off = st.find("data_offsets", at);
  const uint64_t begin = std::strtoull(st.c_str() + st.find('[', off) + 1, nullptr, 10);
  st[8 + header + begin + 2 * 5] = '\xc0';  // bf16 element 5 -> 0x7fc0 (NaN)
  st[8 + header + begin + 2 * 5 + 1] = '\x7f';
  std::ofstream(bad / "model.safetensors", std::ios::binary) << st;
  char err[512];
  illada_quantize_params p = illada_quantize_default_params();
  EXPECT_EQ(illada_quantize(bad.c_str(), out.c_str(), &p, err, sizeof err), ILLADA_ERROR_LOAD);
  EXPECT_NE(std::string(err).find("ff_proj.weight' holds a non-finite value (nan) at row 0, column 5"),
            std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(out));
  // The input as the output.
  const fs::path gguf = d / "in.gguf";
  ASSERT_EQ(illada_quantize(kModel.c_str(), gguf.c_str(), nullptr, err, sizeof err), ILLADA_OK) << err;
  EXPECT_EQ(illada_quantize(gguf.c_str(), gguf.c_str(), nullptr, err, sizeof err), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("is the input model"), std::string::npos) << err;
  p.name = "renamed";
  EXPECT_EQ(illada_quantize(gguf.c_str(), out.c_str(), &p, err, sizeof err), ILLADA_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("keeps its general.name"), std::string::npos) << err;
  fs::remove_all(d);
}

int32_t stop_at_third(int64_t done, int64_t, void*) { return done == 2 ? 1 : 0; }

TEST(CApi, QuantizeCancelledKeepsTheOldFile) {
  const fs::path d = out_dir("quantize_cancel");
  const std::string out = (d / "m.gguf").string();
  std::ofstream(out) << "the previous file";
  illada_quantize_params p = illada_quantize_default_params();
  p.progress_callback = stop_at_third;
  Messages log;
  p.log_callback = collect;
  p.log_user_data = &log;
  char err[512];
  EXPECT_EQ(illada_quantize(kModel.c_str(), out.c_str(), &p, err, sizeof err), ILLADA_ERROR_CANCELLED);
  EXPECT_NE(std::string(err).find("cancelled by the progress callback"), std::string::npos) << err;
  EXPECT_EQ(file_bytes(out), "the previous file");
  EXPECT_EQ(std::distance(fs::directory_iterator(d), fs::directory_iterator()), 1) << "a temporary file was left";
  ASSERT_FALSE(log.all.empty());
  EXPECT_EQ(log.all.back().first, ILLADA_LOG_ERROR);
  // Without the callback the same call succeeds and says what it wrote.
  p.progress_callback = nullptr;
  log.all.clear();
  ASSERT_EQ(illada_quantize(kModel.c_str(), out.c_str(), &p, err, sizeof err), ILLADA_OK) << err;
  ASSERT_FALSE(log.all.empty());
  EXPECT_EQ(log.all.back().first, ILLADA_LOG_INFO);
  EXPECT_NE(log.all.back().second.find("wrote " + out + ": q8_0"), std::string::npos) << log.all.back().second;
  for (const auto& [level, message] : log.all) EXPECT_NE(level, ILLADA_LOG_ERROR) << message;
  EXPECT_NE(file_bytes(out), "the previous file");
  fs::remove_all(d);
}

}  // namespace
