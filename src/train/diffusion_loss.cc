// Masking for the masked-diffusion loss (see diffusion_loss.h).
#include "train/diffusion_loss.h"

#include "model/block.h"
#include "util/check.h"
#include "util/rng.h"

namespace illada::train {
namespace {

// The sequence offsets of a packed batch, checked by the validator the model uses (clean ids
// are not checked against a vocabulary here; the model checks what it reads).
std::vector<int32_t> checked_cu(std::span<const int32_t> ids, std::span<const int32_t> cu) {
  PackedLayout layout;
  validate_packed(layout, ids, cu, -1, INT64_MAX, {}, "mask_batch");
  return std::move(layout.cu);
}

// Builds the batch from t per sequence and a predicate "row i would be masked".
template <class MaskFn>
MaskedBatch build(std::span<const int32_t> ids, std::vector<int32_t> cu, const MaskingOptions& o,
                  std::vector<double> t, MaskFn&& masked_at, double normaliser,
                  std::span<const uint8_t> prompt) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (o.mask_token_id < 0) fail("mask_batch: mask_token_id is not set");
  if (!prompt.empty() && static_cast<int64_t>(prompt.size()) != n) {
    fail("mask_batch: ", prompt.size(), " prompt flags for ", n, " ids");
  }
  if (!(o.eps > 0.0 && o.eps < 1.0)) fail("mask_batch: eps must be in (0, 1), got ", o.eps);
  const double norm = normaliser > 0.0 ? normaliser : static_cast<double>(n);
  MaskedBatch mb;
  mb.input_ids.assign(ids.begin(), ids.end());
  mb.masked.assign(static_cast<size_t>(n), 0);
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    if (!(t[s] >= 0.0 && t[s] <= 1.0)) fail("mask_batch: t of sequence ", s, " = ", t[s]);
    const double p = (1.0 - o.eps) * t[s] + o.eps;
    const float w = static_cast<float>(1.0 / (p * norm));
    for (int64_t i = cu[s]; i < cu[s + 1]; ++i) {
      if (o.prompt_clean && !prompt.empty() && prompt[i]) continue;
      if (ids[i] == o.mask_token_id) continue;  // the mask token is never a target
      if (!masked_at(i, p)) continue;
      mb.input_ids[i] = o.mask_token_id;
      mb.masked[i] = 1;
      mb.target_rows.push_back(static_cast<int32_t>(i));
      mb.targets.push_back(ids[i]);
      mb.target_weights.push_back(w);
    }
  }
  mb.cu_seqlens = std::move(cu);
  mb.t = std::move(t);
  return mb;
}

}  // namespace

MaskedBatch mask_batch(std::span<const int32_t> clean_ids, std::span<const int32_t> cu_seqlens,
                       const MaskingOptions& opts, uint64_t seed, uint64_t batch_key,
                       double normaliser, std::span<const uint8_t> prompt) {
  auto cu = checked_cu(clean_ids, cu_seqlens);
  std::vector<double> t(cu.size() - 1);
  for (size_t s = 0; s < t.size(); ++s) t[s] = random_uniform(seed, kStreamMaskT ^ batch_key, s);
  auto fn = [&](int64_t i, double p) {
    return random_uniform(seed, kStreamMaskRow ^ batch_key, static_cast<uint64_t>(i)) < p;
  };
  return build(clean_ids, std::move(cu), opts, std::move(t), fn, normaliser, prompt);
}

MaskedBatch mask_batch_explicit(std::span<const int32_t> clean_ids,
                                std::span<const int32_t> cu_seqlens, const MaskingOptions& opts,
                                std::span<const double> t, std::span<const uint8_t> mask,
                                double normaliser, std::span<const uint8_t> prompt) {
  auto cu = checked_cu(clean_ids, cu_seqlens);
  if (t.size() != cu.size() - 1) fail("mask_batch: ", t.size(), " t for ", cu.size() - 1, " sequences");
  if (mask.size() != clean_ids.size()) fail("mask_batch: ", mask.size(), " mask flags for ", clean_ids.size(), " ids");
  auto fn = [&](int64_t i, double) { return mask[i] != 0; };
  return build(clean_ids, std::move(cu), opts, std::vector<double>(t.begin(), t.end()), fn,
               normaliser, prompt);
}

}  // namespace illada::train
