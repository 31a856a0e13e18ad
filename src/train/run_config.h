// The options of one training run (`illada train`): one struct that the JSON config file and
// the command-line flags both fill, key for key (flag --seq-len <-> key "seq_len"). Unknown
// keys are an error naming the key. docs/training.md documents every key.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace illada::train {

struct RunConfig {
  // What to train and where.
  std::string model_config;  // a LLaDA config.json: train from random weights
  std::string init;          // or a model directory to start from (SFT, continued training)
  std::string tokenizer;     // tokenizer directory (copied into checkpoints and final/)
  std::string data;          // dataset directory from `illada data prepare`
  std::string out;           // run directory
  // Length of the run.
  int64_t steps = 0;         // optimizer steps (0: from epochs)
  double epochs = 0.0;       // passes over the training part of the data (SFT)
  int64_t seq_len = 0;
  int64_t batch_size = 0;    // windows per step
  int64_t micro_batches = 1; // gradient accumulation: the step's windows in this many parts
  // Objective and data sampling.
  bool sft = false;          // SFT run (default schedule sft)
  bool prompt_clean = false; // LLaDA's SFT ablation: prompt tokens never masked
  double split_prob = 0.3;
  bool split_documents = false;
  // Optimiser and schedule.
  std::string schedule;      // "pretrain" | "sft" ("" = sft when sft is set, else pretrain)
  double lr = -1.0;          // peak; default 2e-4 (pretrain) or 5e-6 (sft)
  double min_lr = -1.0;      // floor of the decay; default 5e-6 (pretrain) or 5e-7 (sft)
  int64_t warmup = -1;       // default min(2000, steps/10) (pretrain) or min(50, steps/10) (sft)
  int64_t decay_start = -1;  // pretrain: step where the cosine decay starts (-1: never)
  int64_t decay_steps = 0;   // pretrain: length of the decay (0: to the end of the run)
  double decay_fraction = 0.1;  // sft: linear decay over this last fraction of the steps
  int64_t plateau_window = 0;   // pretrain: start the decay when the loss plateaus (0: off)
  double plateau_threshold = 0.01;  // relative improvement between windows that counts as one
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double grad_clip = 1.0;
  // Numerics and randomness.
  std::string dtype = "bf16";       // compute precision (bf16 matmuls, fp32 master weights)
  std::string save_dtype = "bf16";  // precision of OUT/final (checkpoints are always fp32)
  uint64_t seed = 0;
  // Checkpoints, evaluation, logging.
  int64_t checkpoint_every = 0;  // steps between checkpoints (0: only the final model)
  int64_t keep_checkpoints = 3;
  int64_t eval_every = 0;        // steps between held-out evaluations (0: first and last only)
  int64_t eval_batches = 4;
  double eval_fraction = 0.05;   // tail of the data held out from training
  bool resume = false;           // continue from the newest checkpoint in OUT/checkpoints
  bool force = false;            // replace a previous run in OUT (else refused without resume)
  bool progress = true;          // progress bar on stderr

  // Fills the keys present in `j` (an object); throws Error naming `source` and an unknown
  // key or a value of the wrong type.
  void apply_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_json() const;
  // Checks the combination (required keys, ranges); throws Error naming the key.
  void validate() const;
};

// Reads a JSON config file into a RunConfig (defaults for absent keys).
RunConfig load_run_config(const std::string& path);

}  // namespace illada::train
