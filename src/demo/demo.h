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
#include <string_view>

namespace illada::demo {

struct DemoOptions {
  uint64_t seed = 1;
  std::string out = "demo_out";
  bool quick = false;       // ~1 minute smoke version (tiny model, few steps, few questions)
  int64_t steps = 0;        // pre-training steps (0: the preset's)
  double sft_epochs = 0;    // SFT epochs (0: the preset's)
  // Ablations (scripts/reproduce.sh): reuse a pre-trained model of an earlier run with the same
  // seed and preset instead of pre-training again; mask the prompt in SFT or not; the
  // probability of the random split of pre-training windows.
  std::string pretrained;   // "" : pre-train; else a model dir (OUT/pretrained of a demo run)
  bool prompt_clean = false;  // LLaDA's SFT masking (prompt never masked) instead of iLLaDA's
  double split_prob = 0.3;
  bool progress = true;     // stage headers always; progress bars on stderr
};

struct DemoResult {
  double open_accuracy = 0, open_city_accuracy = 0;
  double mc_confidence_accuracy = 0, mc_likelihood_accuracy = 0;
  double wall_seconds = 0;
};

// The demo tokenizer's pre-tokenization regex: Llama-3's, except that a word never absorbs the
// whitespace before it, so an answer's first word (right after the assistant header's "\n\n")
// is the same token as that word inside a sentence of the corpus.
std::string_view demo_split_pattern();

// A trained question and its answer as the demo writes them into the pre-training corpus:
// the LLaDA chat template's rendering of the question (BOS, headers) followed by the answer,
// exactly the text SFT trains on and generation continues.
std::string render_chat_qa(const std::string& question, const std::string& answer);

// Runs the pipeline; throws Error on failure (a stage names itself in the message).
DemoResult run_demo(const DemoOptions& opts);

}  // namespace illada::demo
