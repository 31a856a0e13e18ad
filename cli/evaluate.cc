// `illada score` (one prompt, several choices) and `illada eval` (a task file): the
// likelihood and confidence rules of docs/numerics.md §4 and generation tasks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/parse_util.h"
#include "cli/progress.h"
#include "cli/sampling.h"
#include "eval/harness.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/utf8.h"
#include "util/check.h"
#include "util/file.h"

namespace illada::cli {
namespace {

// The scoring flags score and eval share.
struct ScoringFlags {
  std::string method = "confidence";
  int64_t mc_num = 128;
  std::optional<int64_t> mc_batch_size;
  double cfg_scale = 0.0;
  bool normalize = false, append_eos = false, add_bos = false;
  uint64_t seed = 0;
};

void add_scoring_flags(CLI::App* cmd, ScoringFlags& f) {
  choice(cmd, "--method", f.method, {"confidence", "likelihood"}, "Multiple-choice scoring rule");
  flag(cmd, "--normalize", f.normalize, "Confidence: divide the score by the answer length");
  num(cmd, "--mc-num", f.mc_num, Range<int64_t>{1, kMaxMcSamples}, "Likelihood: Monte-Carlo samples per choice");
  // --batch-size: the old spelling (train's --batch-size counts windows, not samples).
  num(cmd, "--mc-batch-size,--batch-size", f.mc_batch_size, Range<int64_t>{1, kMaxMcSamples},
      "Likelihood: samples per stratified batch (one forward pass)", "the largest divisor of --mc-num up to 16");
  num(cmd, "--cfg-scale", f.cfg_scale, Range<double>{0, 1e6}, "Classifier-free guidance scale for both rules (0: off)");
  num(cmd, "--seed", f.seed, Range<uint64_t>{}, "Random seed (likelihood masks, sampling)");
  flag(cmd, "--append-eos", f.append_eos, "Append one EOS to every model input when scoring (eval_illada.py padd_eos)");
  flag(cmd, "--add-bos", f.add_bos,
       "A BOS before the context (eval_illada.py add_bos_token), unless the tokenizer adds one itself");
}

LikelihoodOptions likelihood_options(const ScoringFlags& f) {
  int64_t batch = 0;
  if (f.mc_batch_size) {
    batch = *f.mc_batch_size;
    if (f.mc_num % batch != 0) {
      fail("--mc-num (", f.mc_num, ") must be a multiple of --mc-batch-size (", batch, ")");
    }
  } else {
    for (int64_t b = std::min<int64_t>(16, f.mc_num); b >= 1; --b) {
      if (f.mc_num % b == 0) {
        batch = b;
        break;
      }
    }
  }
  return {.mc_num = f.mc_num, .batch_size = batch, .cfg_scale = f.cfg_scale, .append_eos = f.append_eos,
          .seed = f.seed};
}

// layout: kChunks where batch-invariant generation runs (its products then read the packed
// chunks, and a mapped checkpoint's plain pages are not faulted back in; kernels/gemm.h).
Model load_model(const ModelFlags& f, WeightsLayout layout = WeightsLayout::kWhole) {
  return Model::load(f.model, parse_compute_type(f.dtype), /*pack=*/true, f.check_tensors, layout);
}

void require_finite(const std::vector<double>& scores, const char* what) {
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) fail(what, ": the score of choice ", i, " is not finite (", scores[i], ")");
  }
}

// ---------------------------------------------------------------------------------- score

struct ScoreFlags {
  ModelFlags model;
  ChatFlags chat;
  ScoringFlags scoring;
  std::string format = "text", prompt, prompt_ids, choice_ids;
  std::vector<std::string> choices;
  bool quiet = false;
};

void run_score(const ScoreFlags& f, const CLI::App* cmd) {
  const bool text_prompt = cmd->count("--prompt") > 0, id_prompt = cmd->count("--prompt-ids") > 0;
  if (text_prompt == id_prompt) fail("give the prompt as --prompt TEXT (may be empty) or --prompt-ids 1,2,3 (one of them)");
  const bool text_choices = cmd->count("--choices") > 0, id_choices = cmd->count("--choice-ids") > 0;
  if (text_choices == id_choices) fail("give the choices as --choices TEXT... or --choice-ids \"1,2;3,4\" (one of them)");
  if (id_prompt && text_choices) fail("--choices (text) needs a text prompt (--prompt); with --prompt-ids give --choice-ids");
  if (f.chat.chat && !text_prompt) fail("--chat needs a text prompt (--prompt TEXT)");
  const auto method = eval::parse_mc_method(f.scoring.method);
  const LikelihoodOptions lo = likelihood_options(f.scoring);
  const Model model = load_model(f.model);
  std::vector<std::vector<int32_t>> prompts, answers;
  if (text_prompt) {
    const auto tok = tokenizer::Tokenizer::load(f.model.tokenizer.empty() ? f.model.model : f.model.tokenizer);
    std::vector<int32_t> chat_ids;
    if (f.chat.chat) {
      std::vector<tokenizer::ChatMessage> msgs;
      if (!f.chat.system.empty()) msgs.push_back({"system", f.chat.system});
      msgs.push_back({"user", f.prompt});
      const auto tmpl = tokenizer::ChatTemplate::from_config(tok.config(), f.chat.chat_template);
      chat_ids = tok.encode(tmpl.render(msgs, {.bos_token = tok.config().bos_token.value_or("")}), false);
    }
    for (const auto& c : f.choices) {
      std::vector<int32_t> ctx, cont;
      if (f.chat.chat) {
        ctx = chat_ids;
        cont = tok.encode(c, false);
      } else if (text_choices) {
        eval::split_context_continuation(tok, f.prompt, " " + c, f.scoring.add_bos, ctx, cont);
      }
      if (cont.empty()) fail("--choices: '", c, "' encodes to no tokens");
      prompts.push_back(std::move(ctx));
      answers.push_back(std::move(cont));
    }
    if (!text_choices) {
      prompts.assign(1, f.chat.chat ? chat_ids : tok.encode(f.prompt, true));
      if (f.scoring.add_bos && !f.chat.chat) {
        if (const int32_t bos = eval::bos_to_add(tok); bos >= 0) prompts[0].insert(prompts[0].begin(), bos);
      }
    }
  } else {
    if (f.scoring.add_bos) fail("--add-bos needs a text prompt (--prompt); with ids, put the BOS id in --prompt-ids");
    prompts.assign(1, parse_id_list(f.prompt_ids, "--prompt-ids"));
  }
  if (id_choices) {
    size_t i = 0;
    while (i <= f.choice_ids.size()) {
      size_t j = f.choice_ids.find(';', i);
      if (j == std::string::npos) j = f.choice_ids.size();
      answers.push_back(parse_id_list(f.choice_ids.substr(i, j - i), "--choice-ids"));
      i = j + 1;
    }
    const std::vector<int32_t> p0 = prompts[0];
    prompts.assign(answers.size(), p0);
  }
  const int64_t ctx = model.config().max_sequence_length;
  for (size_t c = 0; c < answers.size(); ++c) {
    const size_t n_ids = prompts[c].size() + answers[c].size() + (lo.append_eos ? 1 : 0);
    if (static_cast<int64_t>(n_ids) > ctx) {
      fail("the prompt and choice ", c, " take ", n_ids,
           " tokens, more than the model's context of ", ctx, " (max_sequence_length)");
    }
  }
  std::vector<double> scores;
  if (method == eval::McMethod::kConfidence) {
    const bool shared = std::all_of(prompts.begin(), prompts.end(), [&](const auto& p) { return p == prompts[0]; });
    const ConfidenceOptions co{.cfg_scale = f.scoring.cfg_scale, .append_eos = f.scoring.append_eos};
    std::vector<ConfidenceScore> cs;
    if (shared) {
      cs = confidence_scores(model, prompts[0], answers, co);
    } else {
      for (size_t c = 0; c < answers.size(); ++c) cs.push_back(confidence_scores(model, prompts[c], {answers[c]}, co)[0]);
    }
    for (const auto& c : cs) scores.push_back(f.scoring.normalize ? c.normalized : c.sum);
  } else {
    const int64_t per_choice = lo.mc_num / lo.batch_size;
    ProgressBar bar("score", per_choice * static_cast<int64_t>(answers.size()), !f.quiet);
    int64_t done = 0;
    LikelihoodOptions o = lo;
    o.on_batch = [&] { bar.update(++done); };
    for (size_t c = 0; c < answers.size(); ++c) scores.push_back(log_likelihood(model, prompts[c], answers[c], o));
    bar.finish();
  }
  require_finite(scores, "score");
  const int64_t best = std::max_element(scores.begin(), scores.end()) - scores.begin();
  if (f.format == "json") {
    std::printf("%s\n", nlohmann::json({{"scores", scores}, {"best", best}, {"method", f.scoring.method}}).dump().c_str());
    return;
  }
  for (size_t c = 0; c < scores.size(); ++c) {
    std::printf("%s %2zu  %12.5f  %s\n", (int64_t)c == best ? "*" : " ", c, scores[c],
                c < f.choices.size() ? f.choices[c].c_str() : "");
  }
}

// ----------------------------------------------------------------------------------- eval

struct EvalFlags {
  ModelFlags model;
  ChatFlags chat;
  ScoringFlags scoring;
  SamplingFlags sampling;
  std::string task, out, on_error = "skip", format = "json";
  int64_t limit = 0;
  bool quiet = false;
};

void run_eval(const EvalFlags& f) {
  const auto task = eval::load_task(f.task, f.on_error == "fail");
  for (const auto& e : task.errors) std::fprintf(stderr, "illada eval: skipped %s\n", e.c_str());
  eval::EvalOptions o;
  o.method = eval::parse_mc_method(f.scoring.method);
  o.length_normalized = f.scoring.normalize;
  o.likelihood = likelihood_options(f.scoring);
  // Lengths do not depend on a prompt here: an example that does not fit is skipped.
  SamplingFlags sf = f.sampling;
  sf.cfg_scale = f.scoring.cfg_scale;
  sf.seed = f.scoring.seed;
  const SamplingLengths len = derive_lengths(sf, 64, -1, 0);
  // A task with generation examples packs for the batch-invariant products they run; a pure
  // multiple-choice task (or --no-batch-invariant) keeps the whole layout its scoring runs fastest on.
  const bool invariant_generation =
      !sf.no_batch_invariant && std::any_of(task.examples.begin(), task.examples.end(), [](const auto& e) {
        return e.kind == eval::ExampleKind::kGeneration;
      });
  const Model model =
      load_model(f.model, invariant_generation ? WeightsLayout::kChunks : WeightsLayout::kWhole);
  const auto tok = tokenizer::Tokenizer::load(f.model.tokenizer.empty() ? f.model.model : f.model.tokenizer);
  o.generation = sampling_options(sf, len, model, &tok);
  // The harness ends answers as the released generate_until: each example's until strings and
  // the EOS text; --stop adds more.
  o.generation.stop_strings = sf.stops;
  o.append_eos = f.scoring.append_eos;
  o.add_bos = f.scoring.add_bos;
  o.chat = f.chat.chat;
  o.chat_template = f.chat.chat_template;
  o.system = f.chat.system;
  o.limit = f.limit;
  // Written to a temporary file and renamed at the end: a failed run leaves no partial file.
  std::optional<OutputFile> out;
  if (!f.out.empty()) out.emplace(f.out, "--out");
  const int64_t total = f.limit > 0 ? std::min<int64_t>(f.limit, task.examples.size())
                                    : static_cast<int64_t>(task.examples.size());
  ProgressBar bar("eval", total, !f.quiet);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0, correct = 0, evaluated = 0;
  const auto summary = eval::evaluate(model, tok, task, o, [&](const eval::ExampleResult& r) {
    ++done;
    if (!r.skipped.empty()) {
      bar.finish();
      std::fprintf(stderr, "illada eval: skipped %s: %s\n", f.task.c_str(), r.skipped.c_str());
    } else {
      ++evaluated;
      correct += r.correct;
      require_finite(r.scores, str_cat(f.task, ": line ", r.example->line).c_str());
    }
    if (out && r.skipped.empty()) {
      nlohmann::json j = {{"id", r.example->id}, {"line", r.example->line}, {"correct", r.correct},
                          {"nfe", r.nfe}};
      if (r.example->kind == eval::ExampleKind::kMultipleChoice) {
        j["scores"] = r.scores;
        j["predicted"] = r.predicted;
        j["gold"] = r.example->gold;
      } else {
        j["generated_tokens"] = r.generated_tokens;
        j["generated"] = tokenizer::utf8_lossy(r.generated);  // JSON needs valid UTF-8
        j["reference"] = r.example->reference;
      }
      out->write(j.dump() + "\n");
    }
    bar.update(done, str_cat("acc ", evaluated ? static_cast<double>(correct) / evaluated : 0.0));
  });
  bar.finish();
  if (summary.n == 0) {
    fail(f.task, ": nothing could be evaluated (", summary.too_long, " of ", total,
         " examples do not fit the model's context of ", model.config().max_sequence_length, " tokens)");
  }
  if (out) out->commit();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j = {{"task", task.header.name.empty() ? f.task : task.header.name},
                      {"method", f.scoring.method}, {"n", summary.n}, {"correct", summary.correct},
                      {"accuracy", summary.accuracy}, {"stderr", summary.stderr_},
                      {"skipped_lines", summary.skipped}, {"skipped_too_long", summary.too_long},
                      {"nfe", summary.nfe}, {"seconds", secs}};
  if (summary.generated_tokens > 0) {
    j["generated_tokens"] = summary.generated_tokens;
    j["tokens_per_second"] = summary.generated_tokens / std::max(secs, 1e-9);
  }
  if (f.format == "json") {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: accuracy %.4f +- %.4f (%lld of %lld correct; %lld skipped as malformed, %lld as too long), "
              "%lld forward passes, %.1f s\n",
              j["task"].get<std::string>().c_str(), summary.accuracy, summary.stderr_, (long long)summary.correct,
              (long long)summary.n, (long long)summary.skipped, (long long)summary.too_long, (long long)summary.nfe,
              secs);
}

}  // namespace

void register_evaluate(CLI::App& app) {
  auto s = std::make_shared<ScoreFlags>();
  auto* score = app.add_subcommand("score", "Score answer choices for a prompt (likelihood or confidence)");
  add_model_flags(score, s->model);
  text(score, "--prompt", s->prompt, "Prompt text (may be empty)");
  text(score, "--prompt-ids", s->prompt_ids, "Prompt token ids, e.g. 1,2,3");
  texts(score, "--choices", s->choices, "Answer choices (text)");
  text(score, "--choice-ids", s->choice_ids, "Answer choices as ids, e.g. \"1,2;3,4\"");
  add_chat_flags(score, s->chat);
  add_scoring_flags(score, s->scoring);
  choice(score, "--format", s->format, {"text", "json"}, "Output format (json keys: scores, best, method)");
  add_quiet_flag(score, s->quiet);
  score->callback([s, score] { run_score(*s, score); });

  auto e = std::make_shared<EvalFlags>();
  auto* ev = app.add_subcommand("eval", "Evaluate a model on a task file (docs/eval.md)");
  add_model_flags(ev, e->model);
  required_text(ev, "--task", e->task, "Task file (JSONL, docs/eval.md)");
  num(ev, "--limit", e->limit, Range<int64_t>{0, INT64_MAX}, "Evaluate the first N examples only (0: all)");
  text(ev, "--out", e->out, "Per-example results (JSONL; '-' for standard output)");
  choice(ev, "--on-error", e->on_error, {"skip", "fail"}, "Malformed task lines: skip (reported) or fail");
  add_chat_flags(ev, e->chat);
  add_scoring_flags(ev, e->scoring);
  add_sampling_flags(ev, e->sampling, "64", /*with_cfg_and_seed=*/false);
  choice(ev, "--format", e->format, {"json", "text"}, "Summary format");
  add_quiet_flag(ev, e->quiet);
  ev->callback([e] { run_eval(*e); });
}

}  // namespace illada::cli
