// `illada score` (one prompt, several choices) and `illada eval` (a task file): the
// likelihood and confidence rules of SPEC §4 and generation tasks.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/parse_util.h"
#include "eval/harness.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::cli {
namespace {

struct ScoreFlags {
  std::string model, tokenizer, dtype = "bf16", method = "confidence", format = "text";
  std::string prompt, prompt_ids, choice_ids;
  std::vector<std::string> choices;
  int64_t mc_num = 128, batch_size = 16;
  double cfg_scale = 0.0;
  bool normalize = false, append_eos = false, add_bos = false;
  uint64_t seed = 0;
};

void run_score(const ScoreFlags& f) {
  if (f.prompt.empty() == f.prompt_ids.empty()) fail("give --prompt TEXT or --prompt-ids IDS");
  if (f.choices.empty() == f.choice_ids.empty()) fail("give --choices TEXT... or --choice-ids \"1,2;3,4\"");
  const Model model = Model::load(f.model, parse_compute_type(f.dtype));
  std::vector<int32_t> prompt;
  std::vector<std::vector<int32_t>> answers;
  if (!f.prompt.empty() || !f.choices.empty()) {
    const auto tok = tokenizer::Tokenizer::load(f.tokenizer.empty() ? f.model : f.tokenizer);
    for (const auto& c : f.choices) {
      std::vector<int32_t> ctx, cont;
      eval::split_context_continuation(tok, f.prompt, " " + c, f.add_bos, ctx, cont);
      prompt = ctx;
      answers.push_back(cont);
    }
    if (f.choices.empty()) {
      prompt = tok.encode(f.prompt, true);
      if (f.add_bos) {
        if (const int32_t bos = eval::bos_to_add(tok); bos >= 0) prompt.insert(prompt.begin(), bos);
      }
    }
  } else if (f.add_bos) {
    fail("--add-bos needs text (--prompt / --choices); with ids, put the BOS id in --prompt-ids");
  }
  if (!f.prompt_ids.empty()) prompt = parse_id_list(f.prompt_ids, "--prompt-ids");
  if (!f.choice_ids.empty()) {
    size_t i = 0;
    while (i <= f.choice_ids.size()) {
      size_t j = f.choice_ids.find(';', i);
      if (j == std::string::npos) j = f.choice_ids.size();
      answers.push_back(parse_id_list(f.choice_ids.substr(i, j - i), "--choice-ids"));
      i = j + 1;
    }
  }
  std::vector<double> scores;
  const auto method = eval::parse_mc_method(f.method);
  if (method == eval::McMethod::kConfidence) {
    for (const auto& c : confidence_scores(model, prompt, answers,
                                           {.cfg_scale = f.cfg_scale, .append_eos = f.append_eos})) {
      scores.push_back(f.normalize ? c.normalized : c.sum);
    }
  } else {
    for (const auto& a : answers) {
      scores.push_back(log_likelihood(model, prompt, a,
                                      {.mc_num = f.mc_num, .batch_size = std::min(f.batch_size, f.mc_num),
                                       .cfg_scale = f.cfg_scale, .append_eos = f.append_eos,
                                       .seed = f.seed}));
    }
  }
  const int64_t best = std::max_element(scores.begin(), scores.end()) - scores.begin();
  if (f.format == "json") {
    std::printf("%s\n", nlohmann::json({{"scores", scores}, {"best", best}, {"method", f.method}}).dump().c_str());
    return;
  }
  for (size_t c = 0; c < scores.size(); ++c) {
    std::printf("%s %2zu  %12.5f  %s\n", (int64_t)c == best ? "*" : " ", c, scores[c],
                c < f.choices.size() ? f.choices[c].c_str() : "");
  }
}

struct EvalFlags {
  std::string model, tokenizer, task, dtype = "bf16", method = "confidence", out, on_error = "skip";
  std::string chat_template, system, remasking = "low_confidence", cache = "none";
  int64_t limit = 0, mc_num = 128, batch_size = 16;
  int64_t gen_length = 64, block_length = 32, steps = 64;
  double cfg_scale = 0.0, end_think_boost = 0.0, end_think_power = 2.0;
  std::string end_think_text = "</think>";
  std::vector<std::string> stops;
  bool chat = false, normalize = false, variable_length = false, quiet = false;
  bool append_eos = false, add_bos = false;
  std::optional<double> threshold;
  uint64_t seed = 0;
};

void progress(int64_t done, int64_t total, int64_t correct, double secs) {
  const int width = 30;
  const int filled = total > 0 ? static_cast<int>(width * done / total) : width;
  std::string bar(filled, '#');
  bar.resize(width, '.');
  const double eta = done > 0 ? secs / done * (total - done) : 0.0;
  std::fprintf(stderr, "\r[%s] %lld/%lld  acc %.3f  %.1f s  eta %.0f s ", bar.c_str(),
               (long long)done, (long long)total, done ? (double)correct / done : 0.0, secs, eta);
  std::fflush(stderr);
}

void run_eval(const EvalFlags& f) {
  const auto task = eval::load_task(f.task, f.on_error == "fail");
  for (const auto& e : task.errors) std::fprintf(stderr, "illada eval: skipped %s\n", e.c_str());
  const Model model = Model::load(f.model, parse_compute_type(f.dtype));
  const auto tok = tokenizer::Tokenizer::load(f.tokenizer.empty() ? f.model : f.tokenizer);
  // Field by field: GCC 12 misreports the std::function inside a nested designated
  // initializer as maybe-uninitialised.
  eval::EvalOptions o;
  o.method = eval::parse_mc_method(f.method);
  o.length_normalized = f.normalize;
  o.likelihood = {.mc_num = f.mc_num, .batch_size = std::min(f.batch_size, f.mc_num),
                  .cfg_scale = f.cfg_scale, .seed = f.seed};
  o.append_eos = f.append_eos;
  o.add_bos = f.add_bos;
  o.generation.cfg_scale = f.cfg_scale;
  o.generation.stop_strings = f.stops;
  o.generation.end_think_boost = f.end_think_boost;
  o.generation.end_think_power = f.end_think_power;
  if (f.end_think_boost > 0) o.generation.end_think_ids = tok.encode(f.end_think_text, false);
  o.generation.gen_length = f.gen_length;
  o.generation.block_length = f.block_length;
  o.generation.steps = f.steps;
  o.generation.remasking = parse_remasking(f.remasking);
  o.generation.variable_length = f.variable_length;
  o.generation.threshold = f.threshold;
  o.generation.cache = parse_cache_mode(f.cache);
  o.generation.seed = f.seed;
  o.chat = f.chat;
  o.chat_template = f.chat_template;
  o.system = f.system;
  o.limit = f.limit;
  std::optional<std::ofstream> out;
  if (!f.out.empty()) {
    out.emplace(f.out);
    if (!*out) fail("--out: cannot write ", f.out);
  }
  const int64_t total = f.limit > 0 ? std::min<int64_t>(f.limit, task.examples.size())
                                    : static_cast<int64_t>(task.examples.size());
  const bool show = !f.quiet && isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0, correct = 0;
  const auto summary = eval::evaluate(model, tok, task, o, [&](const eval::ExampleResult& r) {
    ++done;
    correct += r.correct;
    if (out) {
      nlohmann::json j = {{"id", r.example->id}, {"line", r.example->line}, {"correct", r.correct},
                          {"nfe", r.nfe}};
      if (r.example->kind != eval::ExampleKind::kMultipleChoice) j["generated_tokens"] = r.generated_tokens;
      if (r.example->kind == eval::ExampleKind::kMultipleChoice) {
        j["scores"] = r.scores;
        j["predicted"] = r.predicted;
        j["gold"] = r.example->gold;
      } else {
        j["generated"] = tokenizer::utf8_lossy(r.generated);  // JSON needs valid UTF-8
        j["reference"] = r.example->reference;
      }
      *out << j.dump() << "\n";
    }
    if (show) {
      progress(done, total, correct,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  });
  if (show) std::fprintf(stderr, "\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j = {{"task", task.header.name.empty() ? f.task : task.header.name},
                      {"method", f.method}, {"n", summary.n}, {"correct", summary.correct},
                      {"accuracy", summary.accuracy}, {"stderr", summary.stderr_},
                      {"skipped_lines", summary.skipped}, {"nfe", summary.nfe}, {"seconds", secs}};
  if (summary.generated_tokens > 0) {
    j["generated_tokens"] = summary.generated_tokens;
    j["tokens_per_second"] = summary.generated_tokens / std::max(secs, 1e-9);
  }
  std::printf("%s\n", j.dump(2).c_str());
}

}  // namespace

void register_evaluate(CLI::App& app) {
  auto s = std::make_shared<ScoreFlags>();
  auto* score = app.add_subcommand("score", "Score answer choices for a prompt (likelihood or confidence)");
  score->add_option("--model", s->model, "Hugging Face style model directory")->required();
  score->add_option("--tokenizer", s->tokenizer, "Directory with tokenizer.json (default: --model)");
  score->add_option("--dtype", s->dtype, "Compute precision")->check(CLI::IsMember({"f32", "bf16"}));
  score->add_option("--prompt", s->prompt, "Prompt text");
  score->add_option("--prompt-ids", s->prompt_ids, "Prompt token ids, e.g. 1,2,3");
  score->add_option("--choices", s->choices, "Answer choices (text)");
  score->add_option("--choice-ids", s->choice_ids, "Answer choices as ids, e.g. \"1,2;3,4\"");
  score->add_option("--method", s->method, "Scoring rule")->check(CLI::IsMember({"likelihood", "confidence"}));
  score->add_option("--mc-num", s->mc_num, "Likelihood: Monte-Carlo samples");
  score->add_option("--batch-size", s->batch_size, "Likelihood: samples per stratified batch");
  score->add_option("--cfg-scale", s->cfg_scale, "Classifier-free guidance (both rules)");
  score->add_flag("--append-eos", s->append_eos,
                  "Append one EOS to every model input (eval_illada.py padd_eos)");
  score->add_flag("--add-bos", s->add_bos,
                  "Put a BOS before the prompt unless the tokenizer adds one (add_bos_token)");
  score->add_flag("--normalize", s->normalize, "Confidence: divide by the answer length");
  score->add_option("--seed", s->seed, "Random seed");
  score->add_option("--format", s->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  score->callback([s] { run_score(*s); });

  auto e = std::make_shared<EvalFlags>();
  auto* ev = app.add_subcommand("eval", "Evaluate a model on a task file (docs/eval.md)");
  ev->add_option("--model", e->model, "Hugging Face style model directory")->required();
  ev->add_option("--tokenizer", e->tokenizer, "Directory with tokenizer.json (default: --model)");
  ev->add_option("--task", e->task, "Task file (JSONL)")->required();
  ev->add_option("--dtype", e->dtype, "Compute precision")->check(CLI::IsMember({"f32", "bf16"}));
  ev->add_option("--method", e->method, "Multiple-choice rule")->check(CLI::IsMember({"likelihood", "confidence"}));
  ev->add_flag("--normalize", e->normalize, "Confidence: length-normalised scores");
  ev->add_option("--mc-num", e->mc_num, "Likelihood: Monte-Carlo samples");
  ev->add_option("--batch-size", e->batch_size, "Likelihood: samples per stratified batch");
  ev->add_option("--limit", e->limit, "Evaluate the first N examples only");
  ev->add_option("--out", e->out, "Per-example results (JSONL)");
  ev->add_option("--on-error", e->on_error, "Malformed lines: skip (reported) or fail")
      ->check(CLI::IsMember({"skip", "fail"}));
  ev->add_flag("--chat", e->chat, "Wrap contexts and prompts in the chat template");
  ev->add_option("--chat-template", e->chat_template, "Override the chat template by name");
  ev->add_option("--system", e->system, "System message for --chat");
  ev->add_option("--cfg-scale", e->cfg_scale, "Classifier-free guidance (scoring and generation)");
  ev->add_flag("--append-eos", e->append_eos,
               "Scoring: one EOS appended to every model input (padd_eos; also a header key)");
  ev->add_flag("--add-bos", e->add_bos, "A BOS before every context/prompt (add_bos_token; also a header key)");
  ev->add_option("--stop", e->stops, "Generation tasks: more stop strings (besides each example's until and EOS)");
  ev->add_option("--end-think-boost", e->end_think_boost, "Generation tasks: end-of-thinking logit boost (0: off)");
  ev->add_option("--end-think-power", e->end_think_power, "Generation tasks: exponent of the progress in the boost");
  ev->add_option("--end-think-text", e->end_think_text, "Generation tasks: the end-of-thinking text");
  ev->add_option("--gen-length", e->gen_length,
                 "Generation tasks: tokens (max with --variable-length; cut to fit the context in whole blocks)");
  ev->add_option("--block-length", e->block_length, "Generation tasks: block length");
  ev->add_option("--steps", e->steps, "Generation tasks: steps (per block with --variable-length)");
  ev->add_option("--remasking", e->remasking, "Generation tasks: confidence measure");
  ev->add_flag("--variable-length", e->variable_length, "Generation tasks: iLLaDA variable length");
  ev->add_option("--threshold", e->threshold, "Generation tasks: parallel decoding threshold");
  ev->add_option("--cache", e->cache, "Generation tasks: KV cache")->check(CLI::IsMember({"none", "prefix", "dual"}));
  ev->add_option("--seed", e->seed, "Random seed");
  ev->add_flag("--quiet", e->quiet, "No progress bar");
  ev->callback([e] { run_eval(*e); });
}

}  // namespace illada::cli
