// Scoring an answer given a prompt: LLaDA's Monte-Carlo likelihood (an ELBO on
// log p(answer | prompt), as the official get_log_likelihood.py) and iLLaDA's confidence-based
// score (docs/numerics.md §4), for multiple-choice evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/transformer.h"

namespace illada {

struct LikelihoodOptions {
  int64_t mc_num = 128;     // Monte-Carlo samples in all (a multiple of batch_size)
  int64_t batch_size = 16;  // samples per stratified batch (one packed forward each)
  double cfg_scale = 0.0;   // classifier-free guidance on the logits (prompt masked for u)
  // eval_illada.py's padd_eos: one EOS appended to every model input (its logits unused);
  // the released evaluation uses it for ARC-C and HellaSwag.
  bool append_eos = false;
  uint64_t seed = 0;
  std::function<void()> on_batch;  // after each batch's forward pass (progress displays)
};

// Options of confidence scoring (get_loglikelihood_confidence with eval_illada.py's
// get_logits: the same CFG and padd_eos as the likelihood).
struct ConfidenceOptions {
  double cfg_scale = 0.0;
  bool append_eos = false;
};

// The mask counts of one stratified batch (official forward_process): k ~ U{1..A}, then
// x_i = round(linspace(k, k + (b-1) A / b, b)) wrapped into 1..A.
std::vector<int64_t> stratified_mask_counts(int64_t k, int64_t answer_len, int64_t batch);

// Estimate of log p(answer | prompt): mean over mc_num/batch_size batches of
// -(1/b) sum_i (A / x_i) * sum of cross-entropies on the x_i masked answer tokens of sample i.
// The prompt is never masked. Deterministic in seed.
double log_likelihood(const Model& m, std::span<const int32_t> prompt,
                      std::span<const int32_t> answer, const LikelihoodOptions& opts);

struct ConfidenceScore {
  double sum = 0.0;         // sum of the log-probabilities of the unmasked answer tokens
  double normalized = 0.0;  // sum / A
  int64_t forward_passes = 0;
};

// iLLaDA confidence scoring: mask the whole answer; A times, run the model, among the
// still-masked answer positions pick the one whose own token has the highest probability,
// add its log-probability and unmask it (lowest position on ties, as torch.min). Several answers (choices) of one prompt are scored
// together, their canvases packed into each forward pass.
std::vector<ConfidenceScore> confidence_scores(const Model& m, std::span<const int32_t> prompt,
                                               const std::vector<std::vector<int32_t>>& answers,
                                               const ConfidenceOptions& opts = {});

}  // namespace illada
