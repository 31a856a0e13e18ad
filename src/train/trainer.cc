// The training step (see trainer.h).
#include "train/trainer.h"

#include <cmath>

#include "util/check.h"

namespace illada::train {

namespace {
// Micro-batch m of step s: its own random streams for t and the mask.
uint64_t batch_key(int64_t step, size_t micro) {
  return (static_cast<uint64_t>(step) << 16) ^ static_cast<uint64_t>(micro);
}
}  // namespace

Trainer::Trainer(const ModelConfig& c, const ModelWeights& init, const TrainerOptions& opts)
    : opts_(opts), model_(c, opts.compute), opt_(model_.layout(), opts.adamw) {
  // The model's config owns the mask id (model/special_tokens.h); a caller may not give another.
  ILLADA_CHECK(opts_.masking.mask_token_id < 0 || opts_.masking.mask_token_id == c.mask_token_id,
               "masking.mask_token_id ", opts_.masking.mask_token_id, " differs from the model's ", c.mask_token_id);
  opts_.masking.mask_token_id = c.mask_token_id;
  model_.load(init);
}

StepStats Trainer::train_step(std::span<const PackedBatch> micro_batches, double lr) {
  if (micro_batches.empty()) fail("train_step: no micro-batches");
  StepStats st{.step = step_, .lr = lr};
  dist::Communicator* comm = opts_.comm && opts_.comm->size() > 1 ? opts_.comm : nullptr;
  // The loss is a mean over the step's tokens on all ranks, so each rank needs the total first.
  double tokens = 0;
  for (const auto& mb : micro_batches) tokens += static_cast<double>(mb.ids.size());
  if (comm) comm->all_reduce_sum(std::span<double>(&tokens, 1));
  st.tokens = static_cast<int64_t>(tokens);
  // Masks are keyed by the micro-batch's index in the whole step, whichever rank holds it.
  const size_t first = comm ? static_cast<size_t>(comm->rank()) * micro_batches.size() : 0;
  model_.zero_grad();
  double sums[2] = {0.0, 0.0};  // loss, targets
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const PackedBatch& mb = micro_batches[i];
    const MaskedBatch masked =
        mask_batch(mb.ids, mb.cu_seqlens, opts_.masking, opts_.seed, batch_key(step_, first + i), tokens, mb.prompt);
    sums[1] += static_cast<double>(masked.target_rows.size());
    sums[0] += model_.forward_backward(masked.batch(), act_);
  }
  if (comm) {
    comm->all_reduce_sum(model_.grads());
    comm->all_reduce_sum(std::span<double>(sums, 2));
  }
  const double loss = sums[0];
  st.targets = static_cast<int64_t>(sums[1]);
  st.loss = loss;
  if (!std::isfinite(loss)) fail("train_step: loss is ", loss, " at step ", step_);
  // AdamW writes the bf16 compute copy of the weights in its own pass (see refresh).
  const auto info = opt_.step(model_.params(), model_.grads(), lr, model_.compute_weights());
  if (!std::isfinite(info.grad_norm)) {
    // AdamW skipped the update: the parameters are those before the step.
    fail("train_step: gradient norm is ", info.grad_norm, " at step ", step_);
  }
  st.grad_norm = info.grad_norm;
  ++step_;
  return st;
}

double Trainer::eval_loss(const PackedBatch& batch, uint64_t key) {
  const MaskedBatch masked = mask_batch(batch.ids, batch.cu_seqlens, opts_.masking, opts_.seed,
                                        key ^ 0x8000'0000'0000'0000ull, 0.0, batch.prompt);
  return model_.loss(masked.batch(), act_);
}

}  // namespace illada::train
