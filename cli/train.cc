// `illada data prepare` and `illada train`: thin wrappers over src/train (dataset
// preparation, the training run). Flags and config-file keys are the same options:
// --seq-len on the command line is "seq_len" in the file; a flag given overrides the file.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
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
  prep->add_option("--tokenizer", *tok_dir, "Directory with tokenizer.json (+ tokenizer_config.json)")->required();
  prep->add_option("--input", po->inputs, "Text files (a document per blank-line-separated paragraph) or .jsonl files")
      ->required()->expected(1, -1);
  prep->add_option("--out", po->out, "Output dataset directory")->required();
  prep->add_flag("--sft", po->sft, "SFT JSONL: {\"prompt\",\"response\"} or {\"messages\": [...]} per line");
  prep->add_flag("--doc-per-line", po->doc_per_line, "Plain text: one document per line");
  prep->add_option("--shard-tokens", po->shard_tokens, "Tokens per shard file (default 67108864)");
  prep->add_option("--chat-template", po->chat_template, "SFT: chat template instead of the tokenizer's (llada, llama3, none)");
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
  auto no_progress = std::make_shared<bool>(false);
  cmd->add_option("--config", *config_file, "JSON file with the options below as keys (flags override it)");
  std::vector<CLI::Option*> opts = {
      cmd->add_option("--model-config", f->model_config, "LLaDA config.json: train from random weights"),
      cmd->add_option("--init", f->init, "Model directory to start from"),
      cmd->add_option("--tokenizer", f->tokenizer, "Tokenizer directory (copied into the outputs)"),
      cmd->add_option("--data", f->data, "Dataset directory from `illada data prepare`"),
      cmd->add_option("--out", f->out, "Run directory (checkpoints, metrics.jsonl, final/)"),
      cmd->add_option("--steps", f->steps, "Optimizer steps"),
      cmd->add_option("--epochs", f->epochs, "Passes over the data instead of --steps"),
      cmd->add_option("--seq-len", f->seq_len, "Tokens per window"),
      cmd->add_option("--batch-size", f->batch_size, "Windows per step"),
      cmd->add_option("--micro-batches", f->micro_batches, "Gradient accumulation: micro-batches per step"),
      cmd->add_flag("--sft", f->sft, "SFT run (SFT schedule by default)"),
      cmd->add_flag("--prompt-clean", f->prompt_clean, "LLaDA SFT ablation: never mask prompt tokens"),
      cmd->add_option("--split-prob", f->split_prob, "Probability of splitting a window in two (0.3)"),
      cmd->add_flag("--split-documents", f->split_documents, "Also separate documents inside a window"),
      cmd->add_option("--schedule", f->schedule, "pretrain | sft"),
      cmd->add_option("--lr", f->lr, "Peak learning rate"),
      cmd->add_option("--min-lr", f->min_lr, "Final learning rate of the decay"),
      cmd->add_option("--warmup", f->warmup, "Warm-up steps"),
      cmd->add_option("--decay-start", f->decay_start, "Pretrain: first step of the cosine decay (-1: none)"),
      cmd->add_option("--decay-steps", f->decay_steps, "Pretrain: length of the decay (0: to the end)"),
      cmd->add_option("--plateau-window", f->plateau_window, "Pretrain: start the decay when the mean loss of a window of this many steps improves by less than --plateau-threshold (0: off)"),
      cmd->add_option("--plateau-threshold", f->plateau_threshold, "Pretrain: relative improvement that counts as a plateau (0.01)"),
      cmd->add_option("--decay-fraction", f->decay_fraction, "SFT: final fraction of steps with linear decay"),
      cmd->add_option("--weight-decay", f->weight_decay, "AdamW weight decay (0.1)"),
      cmd->add_option("--beta1", f->beta1, "AdamW beta1"),
      cmd->add_option("--beta2", f->beta2, "AdamW beta2"),
      cmd->add_option("--adam-eps", f->adam_eps, "AdamW epsilon"),
      cmd->add_option("--grad-clip", f->grad_clip, "Clip the global gradient norm (<= 0: off)"),
      cmd->add_option("--dtype", f->dtype, "Compute precision: bf16 | f32"),
      cmd->add_option("--save-dtype", f->save_dtype, "Precision of OUT/final: bf16 | f32"),
      cmd->add_option("--seed", f->seed, "Seed of the initial weights, data order and masks"),
      cmd->add_option("--checkpoint-every", f->checkpoint_every, "Steps between checkpoints (0: none)"),
      cmd->add_option("--keep-checkpoints", f->keep_checkpoints, "Checkpoints kept (3)"),
      cmd->add_option("--eval-every", f->eval_every, "Steps between held-out evaluations"),
      cmd->add_option("--eval-batches", f->eval_batches, "Held-out batches per evaluation"),
      cmd->add_option("--eval-fraction", f->eval_fraction, "Fraction of the data held out (0.05)"),
      cmd->add_flag("--resume", f->resume, "Continue from the newest checkpoint in --out"),
  };
  cmd->add_flag("--no-progress", *no_progress, "No progress bar on stderr");
  cmd->callback([f, config_file, no_progress, opts] {
    train::RunConfig cfg;
    if (!config_file->empty()) cfg = train::load_run_config(*config_file);
    const nlohmann::json flags = f->to_json();
    nlohmann::json given = nlohmann::json::object();
    for (const CLI::Option* o : opts) {
      if (o->count() > 0) given[key_of(o)] = flags.at(key_of(o));
    }
    if (*no_progress) given["progress"] = false;
    cfg.apply_json(given, "command line");
    const train::RunResult r = train::run_training(cfg);
    std::printf("{\"final\": \"%s\", \"steps\": %lld, \"first_eval_loss\": %.6f, \"last_eval_loss\": %.6f}\n",
                r.final_dir.c_str(), static_cast<long long>(r.steps), r.first_eval_loss, r.last_eval_loss);
  });
}

}  // namespace illada::cli
