// Per-position decisions of the samplers: the predicted token x0 and its confidence from one
// row of logits, and the commit rules (fixed count per step, or Fast-dLLM's threshold/factor).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace illada {

enum class Remasking { kLowConfidence, kRandom, kMargin, kEntropy };
Remasking parse_remasking(const std::string& s);  // low_confidence|random|margin|entropy
const char* remasking_name(Remasking r);

struct PickOptions {
  double temperature = 0.0;  // 0: argmax; > 0: Gumbel-max in float64
  Remasking remasking = Remasking::kLowConfidence;
  // Tokens whose logit is -inf before the pick: EOS under logits_eos_inf, and the mask token
  // (never a training target, so its logit means nothing) unless the official behaviour of
  // allowing it is asked for.
  int32_t suppress_token = -1;
  int32_t suppress_token_b = -1;
  // confidence_eos_eot_inf, as the official code does it: after x0 is chosen these tokens'
  // logits are set to -inf for the confidence only, so the softmax is renormalised without
  // them and a pick of one of them gets confidence 0 (committed last).
  int32_t no_confidence_token_a = -1, no_confidence_token_b = -1;
};

struct Pick {
  int32_t token = 0;
  double confidence = 0.0;
};

// x0 and its confidence for one row of `vocab` logits. `noise_key` seeds the Gumbel noise and
// the random confidence (counter-based: the same key gives the same draw whatever the thread).
Pick pick_token(const float* logits, int64_t vocab, const PickOptions& opts, uint64_t seed,
                uint64_t noise_key);

// The commit schedule of one block (official get_num_transfer_tokens): `masks` spread over
// `steps`, the first masks % steps steps taking one extra.
std::vector<int64_t> num_transfer_tokens(int64_t masks, int64_t steps);

// Indices (into `confidence`) of the k most confident candidates, highest first; ties go to
// the lower index. -inf candidates are only taken when fewer than k are finite.
std::vector<int64_t> top_k(std::span<const double> confidence, int64_t k);

// Fast-dLLM's parallel rules over the candidates of one step (all masked positions of the
// block): with a threshold, every candidate whose confidence >= tau, and at least the most
// confident one; with a factor, the largest n such that (n + 1) * (1 - c_n) < factor over the
// sorted confidences c_1 >= c_2 >= ..., at least one.
std::vector<int64_t> select_threshold(std::span<const double> confidence, double threshold);
std::vector<int64_t> select_factor(std::span<const double> confidence, double factor);

}  // namespace illada
