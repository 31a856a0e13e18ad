// `illada data prepare` and `illada train`: thin wrappers over src/train (dataset
// preparation, the training run). Flags and config-file keys are the same options:
// --seq-len on the command line is "seq_len" in the file; a flag given overrides the file.
#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "tokenizer/tokenizer.h"
#include "train/data_prepare.h"
#include "train/run_config.h"
#include "train/train_run.h"
#include "util/check.h"

namespace illada::cli {
namespace {

std::string key_of(const CLI::Option* o) {
  std::string k = o->get_name(false, true);  // long name without dashes
  while (!k.empty() && k[0] == '-') k.erase(0, 1);
  for (char& c : k) {
    if (c == '-') c = '_';
  }
  return k;
}

}  // namespace

void register_train(CLI::App& app) {
  // ---------------------------------------------------------------------- data prepare
  CLI::App* data = app.add_subcommand("data", "Training data tools");
  data->require_subcommand(1);
  auto po = std::make_shared<train::PrepareOptions>();
  auto tok_dir = std::make_shared<std::string>();
  CLI::App* prep = data->add_subcommand("prepare", "Tokenize text / JSONL into token shards for `illada train`");
  required_text(prep, "--tokenizer", *tok_dir, "Directory with tokenizer.json (+ tokenizer_config.json)");
  required_texts(prep, "--input", po->inputs, "Text files (a document per blank-line-separated paragraph) or .jsonl files")->expected(1, -1);
  required_text(prep, "--out", po->out, "Output dataset directory");
  flag(prep, "--sft", po->sft, "SFT JSONL: {\"prompt\",\"response\"} or {\"messages\": [...]} per line");
  flag(prep, "--doc-per-line", po->doc_per_line, "Plain text: one document per line");
  num(prep, "--shard-tokens", po->shard_tokens, Range<int64_t>{1, int64_t{1} << 32}, "Tokens per shard file");
  text(prep, "--chat-template", po->chat_template, "SFT: chat template instead of the tokenizer's (llada, llama3, none)");
  add_threads_flag(prep);
  prep->callback([po, tok_dir] {
    const auto tok = tokenizer::Tokenizer::load(*tok_dir);
    const train::DatasetInfo info = train::prepare_dataset(tok, *po);
    std::printf("{\"out\": \"%s\", \"tokens\": %lld, \"documents\": %lld, \"shards\": %zu, \"sft\": %s}\n",
                po->out.c_str(), static_cast<long long>(info.n_tokens), static_cast<long long>(info.n_documents),
                info.shards.size(), info.sft ? "true" : "false");
  });

  // ----------------------------------------------------------------------------- train
  CLI::App* cmd = app.add_subcommand("train", "Masked-diffusion pre-training or SFT (see docs/training.md)");
  auto f = std::make_shared<train::RunConfig>();
  auto config_file = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  text(cmd, "--config", *config_file, "JSON file with the options below as keys (flags override it)");
  constexpr int64_t kBig = int64_t{1} << 40;
  const Range<double> positive{0, std::numeric_limits<double>::max(), true};
  const Range<double> non_negative{0, std::numeric_limits<double>::max()};
  const Range<double> unit{0, 1};
  std::vector<CLI::Option*> opts = {
      text(cmd, "--model-config", f->model_config, "LLaDA config.json: train from random weights"),
      text(cmd, "--init", f->init, "Model directory to start from"),
      text(cmd, "--tokenizer", f->tokenizer, "Tokenizer directory (copied into the outputs)"),
      text(cmd, "--data", f->data, "Dataset directory from `illada data prepare`"),
      text(cmd, "--out", f->out, "Run directory (checkpoints, metrics.jsonl, final/)"),
      num(cmd, "--steps", f->steps, Range<int64_t>{1, kBig}, "Optimizer steps", "none: give --steps or --epochs"),
      num(cmd, "--epochs", f->epochs, positive, "Passes over the data instead of --steps", "none"),
      num(cmd, "--seq-len", f->seq_len, Range<int64_t>{2, int64_t{1} << 24}, "Tokens per window", "none (required)"),
      num(cmd, "--batch-size", f->batch_size, Range<int64_t>{1, int64_t{1} << 24}, "Windows per optimizer step",
          "none (required)"),
      num(cmd, "--micro-batches", f->micro_batches, Range<int64_t>{1, int64_t{1} << 24},
          "Gradient accumulation: micro-batches per step"),
      flag(cmd, "--sft", f->sft, "SFT run (SFT schedule by default)"),
      flag(cmd, "--prompt-clean", f->prompt_clean, "LLaDA SFT ablation: never mask prompt tokens"),
      num(cmd, "--split-prob", f->split_prob, unit, "Probability of splitting a window in two"),
      flag(cmd, "--split-documents", f->split_documents, "Also separate documents inside a window"),
      choice(cmd, "--schedule", f->schedule, {"pretrain", "sft"}, "Learning-rate schedule [default sft with --sft, else pretrain]"),
      num(cmd, "--lr", f->lr, positive, "Peak learning rate", "2e-4 (pretrain schedule) or 5e-6 (sft)"),
      num(cmd, "--min-lr", f->min_lr, non_negative, "Final learning rate of the decay", "5e-6 (pretrain) or 5e-7 (sft)"),
      num(cmd, "--warmup", f->warmup, Range<int64_t>{0, kBig}, "Warm-up steps",
          "min(2000, steps/10) (pretrain) or min(50, steps/10) (sft)"),
      num(cmd, "--decay-start", f->decay_start, Range<int64_t>{-1, kBig}, "Pretrain: first step of the cosine decay (-1: none)"),
      num(cmd, "--decay-steps", f->decay_steps, Range<int64_t>{0, kBig}, "Pretrain: length of the decay (0: to the end)"),
      num(cmd, "--plateau-window", f->plateau_window, Range<int64_t>{0, kBig},
          "Pretrain: start the decay when the mean loss of a window of this many steps improves by less than "
          "--plateau-threshold (0: off)"),
      num(cmd, "--plateau-threshold", f->plateau_threshold, Range<double>{0, 0.999999},
          "Pretrain: relative improvement that counts as a plateau"),
      num(cmd, "--decay-fraction", f->decay_fraction, Range<double>{0, 1, true}, "SFT: final fraction of steps with linear decay"),
      num(cmd, "--weight-decay", f->weight_decay, non_negative, "AdamW weight decay"),
      num(cmd, "--beta1", f->beta1, Range<double>{0, 0.999999}, "AdamW beta1"),
      num(cmd, "--beta2", f->beta2, Range<double>{0, 0.999999999}, "AdamW beta2"),
      num(cmd, "--adam-eps", f->adam_eps, Range<double>{0, 1, true}, "AdamW epsilon"),
      num(cmd, "--grad-clip", f->grad_clip, non_negative, "Clip the global gradient norm (0: off)"),
      choice(cmd, "--dtype", f->dtype, {"bf16", "f32"}, "Compute precision"),
      choice(cmd, "--save-dtype", f->save_dtype, {"bf16", "f32"}, "Precision of OUT/final"),
      num(cmd, "--seed", f->seed, Range<uint64_t>{}, "Seed of the initial weights, data order and masks"),
      num(cmd, "--checkpoint-every", f->checkpoint_every, Range<int64_t>{0, kBig}, "Steps between checkpoints (0: none)"),
      num(cmd, "--keep-checkpoints", f->keep_checkpoints, Range<int64_t>{1, kBig}, "Checkpoints kept"),
      num(cmd, "--eval-every", f->eval_every, Range<int64_t>{0, kBig}, "Steps between held-out evaluations (0: first and last)"),
      num(cmd, "--eval-batches", f->eval_batches, Range<int64_t>{0, kBig}, "Held-out batches per evaluation"),
      num(cmd, "--eval-fraction", f->eval_fraction, Range<double>{0, 0.999999}, "Fraction of the data held out"),
      flag(cmd, "--resume", f->resume, "Continue from the newest checkpoint in --out"),
      flag(cmd, "--force", f->force, "Replace the previous run in --out (its checkpoints, metrics and final model)"),
  };
  add_quiet_flag(cmd, *quiet);
  add_threads_flag(cmd);
  cmd->callback([f, config_file, quiet, opts] {
    train::RunConfig cfg;
    if (!config_file->empty()) cfg = train::load_run_config(*config_file);
    const nlohmann::json flags = f->to_json();
    nlohmann::json given = nlohmann::json::object();
    for (const CLI::Option* o : opts) {
      if (o->count() > 0) given[key_of(o)] = flags.at(key_of(o));
    }
    if (*quiet) given["progress"] = false;
    cfg.apply_json(given, "command line");
    const train::RunResult r = train::run_training(cfg);
    std::printf("{\"final\": \"%s\", \"steps\": %lld, \"first_eval_loss\": %.6f, \"last_eval_loss\": %.6f}\n",
                r.final_dir.c_str(), static_cast<long long>(r.steps), r.first_eval_loss, r.last_eval_loss);
  });
}

}  // namespace illada::cli
