// The masked-diffusion training objective of docs/numerics.md §2: per packed sequence (document) draw
// t ~ U(0,1), p = (1 - eps) t + eps, replace each token by the mask token with probability p,
// and score cross-entropy on the masked positions weighted 1/p, summed and divided by the
// number of tokens in the batch. This file turns clean packed ids into a LossBatch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "train/trainable.h"

namespace illada::train {

struct MaskingOptions {
  double eps = 1e-3;          // p = (1 - eps) t + eps
  int32_t mask_token_id = -1;
  // LLaDA's older SFT: rows flagged as prompt are never masked (iLLaDA masks the whole window).
  bool prompt_clean = false;
};

// A corrupted micro-batch and its loss targets; batch() views it as a LossBatch.
struct MaskedBatch {
  std::vector<int32_t> input_ids;      // [T] x_t
  std::vector<int32_t> cu_seqlens;     // [n_seqs + 1]
  std::vector<int32_t> target_rows;    // [M] masked rows whose clean token is a target
  std::vector<int32_t> targets;        // [M] clean tokens
  std::vector<float> target_weights;   // [M] 1 / (p_seq * normaliser)
  std::vector<double> t;               // [n_seqs] drawn (or given) t per sequence
  std::vector<uint8_t> masked;         // [T] 1 where x_t holds a mask that replaced a token
  LossBatch batch() const {
    return {input_ids, cu_seqlens, target_rows, targets, target_weights};
  }
};

// Draws t and the mask with the counter-based RNG: t of sequence s is
// random_uniform(seed, kStreamT ^ batch_key, s), and row i is masked when
// random_uniform(seed, kStreamMask ^ batch_key, i) < p of its sequence; batch_key names the
// micro-batch (e.g. step * n_micro + micro, times ranks for data parallelism), so results do
// not depend on threads or on what was drawn before. normaliser: the divisor of the summed loss
// (0 = the number of tokens T of this micro-batch; pass the whole step's token count when
// accumulating micro-batches). prompt: empty, or [T] flags used with prompt_clean.
// A clean token equal to the mask token is never a target. Throws Error on malformed input.
MaskedBatch mask_batch(std::span<const int32_t> clean_ids, std::span<const int32_t> cu_seqlens,
                       const MaskingOptions& opts, uint64_t seed, uint64_t batch_key,
                       double normaliser = 0.0, std::span<const uint8_t> prompt = {});

// The same with t per sequence and the mask given (fixtures, tests): mask [T] flags.
MaskedBatch mask_batch_explicit(std::span<const int32_t> clean_ids,
                                std::span<const int32_t> cu_seqlens, const MaskingOptions& opts,
                                std::span<const double> t, std::span<const uint8_t> mask,
                                double normaliser = 0.0, std::span<const uint8_t> prompt = {});

constexpr uint64_t kStreamMaskT = 0x7444'0000'0000'0000ull;     // "tD": t per sequence
constexpr uint64_t kStreamMaskRow = 0x6d44'0000'0000'0000ull;   // "mD": mask per row

}  // namespace illada::train
