// `illada demo`: the whole iLLaDA pipeline on the built-in synthetic data, as library calls —
// data -> BPE tokenizer -> token shards -> pre-training -> whole-sequence SFT -> held-out open
// questions (variable-length generation, exact match) -> multiple choice by both rules
// (confidence and likelihood) -> a report directory:
//   OUT/report.md        settings, losses, accuracies with chance levels, sample generations
//   OUT/summary.json     the same numbers as one JSON object
//   OUT/metrics.jsonl    one line per stage and per (evaluation, kind)
//   OUT/curves.svg       loss and learning-rate curves of both training runs
//   OUT/pretrained/, OUT/sft/   Hugging Face style model dirs with the tokenizer files
//   OUT/data/, OUT/tokenizer/, OUT/runs/   the generated data, tokenizer, training runs
#pragma once

#include <cstdint>
#include <string>

namespace illada::demo {

struct DemoOptions {
  uint64_t seed = 1;
  std::string out = "demo_out";
  bool quick = false;       // ~1 minute smoke version (tiny model, few steps, few questions)
  int64_t steps = 0;        // pre-training steps (0: the preset's)
  double sft_epochs = 0;    // SFT epochs (0: the preset's)
  bool progress = true;     // stage headers always; progress bars on stderr
};

struct DemoResult {
  double open_accuracy = 0, open_city_accuracy = 0;
  double mc_confidence_accuracy = 0, mc_likelihood_accuracy = 0;
  double wall_seconds = 0;
};

// Runs the pipeline; throws Error on failure (a stage names itself in the message).
DemoResult run_demo(const DemoOptions& opts);

}  // namespace illada::demo
