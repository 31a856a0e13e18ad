// Training's forward is the inference forward: the same block (model/block.h) gives the same
// loss through TrainableModel::loss as through Model::forward's logits, bit for bit, in fp32
// and bf16, and a change of the architecture's settings (here RoPE's theta and grouped-query
// attention) changes both paths alike.
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/cpu/backward.h"
#include "model/transformer.h"
#include "train/diffusion_loss.h"
#include "train/trainable.h"

namespace illada::train {
namespace {

ModelConfig config(double theta, int64_t n_kv) {
  ModelConfig c;
  c.d_model = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = n_kv;
  c.mlp_hidden_size = 96;
  c.vocab_size = c.embedding_size = 80;
  c.max_sequence_length = 128;
  c.rope_theta = theta;
  c.weight_tying = n_kv != 4;
  c.mask_token_id = 79;
  c.eos_token_id = 1;
  c.init_fn = InitFn::kFanIn;  // wide weights: theta matters visibly
  c.validate("test");
  return c;
}

// The loss of a masked batch from the inference model's logits on the target rows, summed the
// way the trainer sums it.
double inference_loss(const Model& m, const MaskedBatch& mb) {
  ForwardState st;
  const int64_t vocab = m.config().embedding_size;
  std::vector<float> logits(mb.target_rows.size() * vocab);
  m.forward({.ids = mb.input_ids, .cu_seqlens = mb.cu_seqlens, .logit_rows = mb.target_rows}, st, logits);
  return cpu::cross_entropy_backward(logits.data(), nullptr, logits.data(), mb.targets.data(),
                                     mb.target_weights.data(), static_cast<int64_t>(mb.targets.size()), vocab);
}

TEST(OneBlock, TrainingLossEqualsTheInferenceForwardsLoss) {
  std::vector<int32_t> ids(40);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 13 + 3) % 70);
  const std::vector<int32_t> cu = {0, 15, 40};
  for (ComputeType ct : {ComputeType::kF32, ComputeType::kBF16}) {
    std::vector<double> losses;
    for (auto [theta, n_kv] : {std::pair{10000.0, 4}, std::pair{50.0, 4}, std::pair{10000.0, 2}}) {
      const ModelConfig c = config(theta, n_kv);
      const MaskedBatch mb = mask_batch(ids, cu, {.mask_token_id = c.mask_token_id}, 7, 0);
      ASSERT_GT(mb.target_rows.size(), 4u);
      // bf16: weights that bf16 holds exactly, so the trainer's fp32 master equals them.
      TrainableModel tm(c, ct);
      tm.load(init_weights(c, ct, 3));
      TrainActivations act;
      const double train = tm.loss(mb.batch(), act);
      const Model inf(c, init_weights(c, ct, 3));  // unpacked: q/k/v as three products
      const double infer = inference_loss(inf, mb);
      EXPECT_EQ(train, infer) << compute_type_name(ct) << " theta " << theta << " n_kv " << n_kv;
      losses.push_back(train);
    }
    // Each setting changes the loss (so the equality above is not two paths ignoring it).
    EXPECT_NE(losses[0], losses[1]) << compute_type_name(ct) << ": rope_theta had no effect";
    EXPECT_NE(losses[0], losses[2]) << compute_type_name(ct) << ": n_kv_heads had no effect";
  }
}

}  // namespace
}  // namespace illada::train
