// One training step of the masked-diffusion objective: mask the micro-batches, accumulate
// their gradients in the model's flat gradient buffer, sum them over the data-parallel ranks,
// clip, AdamW, refresh the bf16 weights. Same seed and data -> same bits.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "dist/communicator.h"
#include "model/config.h"
#include "model/weights.h"
#include "train/adamw.h"
#include "train/diffusion_loss.h"
#include "train/trainable.h"

namespace illada::train {

struct TrainerOptions {
  ComputeType compute = ComputeType::kBF16;
  AdamWOptions adamw;
  MaskingOptions masking;  // mask_token_id: the model config's (leave it unset)
  uint64_t seed = 0;
  // Data parallelism: each rank passes its own micro-batches of the step (rank r holds the
  // step's micro-batches r*k .. r*k+k-1 of k*size in all); gradients, loss and token counts
  // are summed over ranks, so every rank takes the same update, equal (up to the order of
  // floating-point sums) to one process taking all k*size micro-batches. Null: one process.
  dist::Communicator* comm = nullptr;
};

// Clean packed documents of one micro-batch.
struct PackedBatch {
  std::span<const int32_t> ids;         // [T]
  std::span<const int32_t> cu_seqlens;  // [n_seqs + 1]; empty = one sequence
  std::span<const uint8_t> prompt;      // [T] or empty; used with MaskingOptions::prompt_clean
};

struct StepStats {
  int64_t step = 0;        // index of the step just taken (0-based)
  double loss = 0.0;       // masked-diffusion loss of the whole step (all micro-batches and ranks)
  double grad_norm = 0.0;  // before clipping
  double lr = 0.0;
  int64_t tokens = 0;      // tokens in the step (all ranks)
  int64_t targets = 0;     // masked positions scored (all ranks)
};

class Trainer {
 public:
  Trainer(const ModelConfig& c, const ModelWeights& init, const TrainerOptions& opts);

  // One optimizer step at learning rate lr over the micro-batches (gradient accumulation; the
  // loss is divided by the tokens of all of them, over all ranks). Throws Error on a non-finite loss, naming
  // the step; the parameters are then left as they were before the step.
  StepStats train_step(std::span<const PackedBatch> micro_batches, double lr);
  StepStats train_step(const PackedBatch& batch, double lr) { return train_step({&batch, 1}, lr); }

  // The loss of a batch with masks drawn from `key` (held-out evaluation), no update.
  double eval_loss(const PackedBatch& batch, uint64_t key);

  TrainableModel& model() { return model_; }
  const TrainableModel& model() const { return model_; }
  AdamW& optimizer() { return opt_; }
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t s) { step_ = s; opt_.set_steps_taken(s); }

 private:
  TrainerOptions opts_;
  TrainableModel model_;
  AdamW opt_;
  TrainActivations act_;
  int64_t step_ = 0;
};

}  // namespace illada::train
