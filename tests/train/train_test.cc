// Masking, AdamW, learning-rate schedules, gradient accumulation and determinism of the
// training step, on tiny models (fast).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "model/weights.h"
#include "train/adamw.h"
#include "train/diffusion_loss.h"
#include "train/lr_schedule.h"
#include "train/trainable.h"
#include "train/trainer.h"
#include "util/check.h"
#include "util/rng.h"

namespace illada::train {
namespace {

ModelConfig tiny_config(bool tied, int64_t n_kv) {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = n_kv;
  c.mlp_hidden_size = 48;
  c.vocab_size = c.embedding_size = 64;
  c.max_sequence_length = 128;
  c.weight_tying = tied;
  c.mask_token_id = 63;
  c.eos_token_id = 1;
  c.validate("test");
  return c;
}

std::vector<int32_t> random_ids(int64_t n, uint64_t stream, int32_t vocab) {
  Rng rng(99, stream);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(rng.below(vocab - 1));  // never the mask id 63
  return v;
}

// ------------------------------------------------------------------------------ masking

TEST(MaskBatch, MaskRateFollowsTAndWeightsAreOneOverPT) {
  const int64_t n = 20000;
  const std::vector<int32_t> ids = random_ids(n, 1, 63);
  const std::vector<int32_t> cu = {0, 10000, 20000};
  const MaskingOptions o{.mask_token_id = 63};
  const MaskedBatch mb = mask_batch(ids, cu, o, 7, 0);
  ASSERT_EQ(mb.t.size(), 2u);
  for (int s = 0; s < 2; ++s) {
    int64_t masked = 0;
    for (int64_t i = cu[s]; i < cu[s + 1]; ++i) masked += mb.masked[i];
    const double p = (1 - 1e-3) * mb.t[s] + 1e-3;
    EXPECT_NEAR(static_cast<double>(masked) / 10000, p, 0.02) << s;
  }
  for (size_t i = 0; i < mb.target_rows.size(); ++i) {
    const int32_t r = mb.target_rows[i];
    const int s = r < 10000 ? 0 : 1;
    const double p = (1 - 1e-3) * mb.t[s] + 1e-3;
    EXPECT_FLOAT_EQ(mb.target_weights[i], static_cast<float>(1.0 / (p * n)));
    EXPECT_EQ(mb.input_ids[r], 63);
    EXPECT_EQ(mb.targets[i], ids[r]);
  }
  // Same key, same draw; another key, another draw.
  const MaskedBatch again = mask_batch(ids, cu, o, 7, 0);
  EXPECT_EQ(again.input_ids, mb.input_ids);
  EXPECT_NE(mask_batch(ids, cu, o, 7, 1).input_ids, mb.input_ids);
  EXPECT_NE(mask_batch(ids, cu, o, 8, 0).input_ids, mb.input_ids);
}

TEST(MaskBatch, MaskTokenIsNeverATargetAndPromptStaysClean) {
  std::vector<int32_t> ids = {3, 63, 4, 5, 6, 7};
  const std::vector<double> t = {1.0};
  const std::vector<uint8_t> all(6, 1), prompt = {1, 1, 0, 0, 0, 0};
  MaskedBatch mb = mask_batch_explicit(ids, {}, {.mask_token_id = 63}, t, all);
  EXPECT_EQ(mb.target_rows, (std::vector<int32_t>{0, 2, 3, 4, 5}));
  mb = mask_batch_explicit(ids, {}, {.mask_token_id = 63, .prompt_clean = true}, t, all, 0.0,
                           prompt);
  EXPECT_EQ(mb.target_rows, (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(mb.input_ids[0], 3);
  // Without prompt_clean the whole window is masked (iLLaDA SFT).
  mb = mask_batch_explicit(ids, {}, {.mask_token_id = 63}, t, all, 0.0, prompt);
  EXPECT_EQ(mb.target_rows.size(), 5u);
}

TEST(MaskBatch, RejectsMalformedInput) {
  const std::vector<int32_t> ids = {1, 2, 3};
  EXPECT_THROW(mask_batch(ids, std::vector<int32_t>{0, 2}, {.mask_token_id = 5}, 1, 0), Error);
  EXPECT_THROW(mask_batch(ids, {}, {}, 1, 0), Error);  // no mask token
  EXPECT_THROW(mask_batch_explicit(ids, {}, {.mask_token_id = 5}, std::vector<double>{1.5},
                                   std::vector<uint8_t>(3, 1)),
               Error);
}

// ------------------------------------------------------------------------------ schedules

TEST(LrSchedule, PretrainWarmupConstantCosine) {
  const PretrainSchedule s{.peak_lr = 2e-4, .min_lr = 5e-6, .warmup_steps = 10,
                           .decay_start = 100, .decay_steps = 50};
  EXPECT_DOUBLE_EQ(s.lr(0), 2e-5);
  EXPECT_DOUBLE_EQ(s.lr(4), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr(9), 2e-4);
  EXPECT_DOUBLE_EQ(s.lr(50), 2e-4);
  EXPECT_DOUBLE_EQ(s.lr(100), 2e-4);
  EXPECT_NEAR(s.lr(125), 5e-6 + 0.5 * (2e-4 - 5e-6), 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(150), 5e-6);
  EXPECT_DOUBLE_EQ(s.lr(10000), 5e-6);
  for (int64_t k = 100; k < 150; ++k) EXPECT_GT(s.lr(k), s.lr(k + 1));
  const PretrainSchedule no_decay{.warmup_steps = 1, .decay_start = -1};
  EXPECT_DOUBLE_EQ(no_decay.lr(1000000), 2e-4);
}

// A synthetic loss curve: warm-up steps 0..4 (ignored, huge values), then blocks of 10 steps
// with means 4, 3, 2.5, 2.49 and a +-0.4 zigzag inside each block. Single steps jump around
// by far more than 1%, but only the 4th block's mean improves by less than 1% (0.4%), so the
// rule fires at its last step, 44, and the decay starts at 45.
TEST(LrSchedule, PlateauRuleComparesBlockMeans) {
  const double means[] = {4.0, 3.0, 2.5, 2.49, 2.3};
  auto loss = [&](int64_t s) { return s < 5 ? 100.0 : means[(s - 5) / 10] + ((s % 2) ? 0.4 : -0.4); };
  PlateauRule rule{.window = 10, .threshold = 0.01, .first_step = 5};
  int64_t fired = -1;
  PlateauRule at_30;
  for (int64_t s = 0; s < 50 && fired < 0; ++s) {
    if (rule.observe(s, loss(s))) fired = s;
    if (s == 30) at_30 = rule;  // a checkpoint in the middle of a block
  }
  EXPECT_EQ(fired, 44);
  // Resuming from the saved state fires at the same step.
  int64_t again = -1;
  for (int64_t s = 31; s < 50 && again < 0; ++s) {
    if (at_30.observe(s, loss(s))) again = s;
  }
  EXPECT_EQ(again, 44);
  // A stricter threshold (0.3%) does not fire on that block; a looser one (20%) fires at the
  // end of the 3rd block (2.5 vs 3 improves by 17%; the 2nd, 3 vs 4, by 25%).
  for (auto [eps, want] : {std::pair{0.003, int64_t{-1}}, std::pair{0.2, int64_t{34}}}) {
    PlateauRule r{.window = 10, .threshold = eps, .first_step = 5};
    int64_t f = -1;
    for (int64_t s = 0; s < 45 && f < 0; ++s) {
      if (r.observe(s, loss(s))) f = s;
    }
    EXPECT_EQ(f, want) << eps;
  }
  // Off when window is 0.
  PlateauRule off{.window = 0};
  for (int64_t s = 0; s < 100; ++s) EXPECT_FALSE(off.observe(s, 1.0));
  // The decay that follows: cosine from step 45 to the end of a 100-step run.
  const PretrainSchedule sched{.peak_lr = 1e-3, .min_lr = 1e-5, .warmup_steps = 5, .decay_start = fired + 1,
                               .decay_steps = 100 - (fired + 1)};
  EXPECT_DOUBLE_EQ(sched.lr(44), 1e-3);
  EXPECT_DOUBLE_EQ(sched.lr(45), 1e-3);
  EXPECT_LT(sched.lr(46), 1e-3);
  EXPECT_DOUBLE_EQ(sched.lr(100), 1e-5);
}

TEST(LrSchedule, SftWarmupConstantLinearDecayOverLastTenPercent) {
  const SftSchedule s{.peak_lr = 5e-6, .final_lr = 5e-7, .warmup_steps = 5, .total_steps = 100};
  EXPECT_DOUBLE_EQ(s.lr(0), 1e-6);
  EXPECT_DOUBLE_EQ(s.lr(4), 5e-6);
  EXPECT_DOUBLE_EQ(s.lr(89), 5e-6);  // decay covers steps 90..99
  EXPECT_NEAR(s.lr(90), 5e-6 - 4.5e-6 / 10, 1e-18);
  EXPECT_NEAR(s.lr(94), 5e-6 - 4.5e-6 / 2, 1e-18);
  EXPECT_DOUBLE_EQ(s.lr(99), 5e-7);
  EXPECT_DOUBLE_EQ(s.lr(150), 5e-7);
}

// ------------------------------------------------------------------------------ AdamW

TEST(AdamW, MatchesHandComputedStepsAndSkipsNormDecay) {
  const ModelConfig c = tiny_config(true, 4);
  ParamLayout layout(c);
  std::vector<float> p(layout.total), g(layout.total);
  for (int64_t i = 0; i < layout.total; ++i) {
    p[i] = 0.5f + 0.001f * static_cast<float>(i % 100);
    g[i] = 0.01f * static_cast<float>((i % 7) - 3);
  }
  auto p0 = p;
  AdamW opt(layout, {.beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1,
                     .max_grad_norm = 0.0});
  const double lr = 1e-2;
  for (int step = 1; step <= 2; ++step) opt.step(p, g, lr);
  for (size_t ti = 0; ti < layout.specs.size(); ++ti) {
    const bool decay = layout.specs[ti].role != TensorRole::kNorm;
    const int64_t i = layout.offset[ti] + 3;  // one element per tensor
    double x = p0[i], m = 0, v = 0;
    for (int t = 1; t <= 2; ++t) {
      if (decay) x *= 1 - lr * 0.1;
      m = 0.9 * m + 0.1 * g[i];
      v = 0.99 * v + 0.01 * g[i] * g[i];
      x -= lr * (m / (1 - std::pow(0.9, t))) / (std::sqrt(v / (1 - std::pow(0.99, t))) + 1e-8);
    }
    EXPECT_NEAR(p[i], x, 1e-6) << layout.specs[ti].name;
  }
}

TEST(AdamW, ClipsByGlobalNormAndRefusesNonFinite) {
  const ModelConfig c = tiny_config(false, 2);
  ParamLayout layout(c);
  std::vector<float> p(layout.total, 1.0f), g(layout.total, 1.0f);
  AdamW opt(layout, {.max_grad_norm = 2.0});
  auto info = opt.step(p, g, 1e-3);
  EXPECT_NEAR(info.grad_norm, std::sqrt(static_cast<double>(layout.total)), 1e-3);
  EXPECT_NEAR(info.clip_scale, 2.0 / info.grad_norm, 1e-9);
  auto before = p;
  g[5] = NAN;
  info = opt.step(p, g, 1e-3);
  EXPECT_FALSE(std::isfinite(info.grad_norm));
  EXPECT_EQ(p, before);
  EXPECT_EQ(opt.steps_taken(), 1);
}

// ------------------------------------------------------------------------------ model

TEST(Trainable, TiedHeadGradientSumsBothUses) {
  // Tied: the gradient of wte equals the untied model's wte gradient plus its head gradient
  // when both hold the same values.
  const ModelConfig ct = tiny_config(true, 2), cu = tiny_config(false, 2);
  const ModelWeights wt = init_weights(ct, ComputeType::kF32, 5);
  TrainableModel tied(ct, ComputeType::kF32), untied(cu, ComputeType::kF32);
  tied.load(wt);
  // Copy every tensor of the tied model into the untied one, head := wte.
  const ParamLayout& lu = untied.layout();
  const ParamLayout& lt = tied.layout();
  for (size_t i = 0; i < lt.specs.size(); ++i) {
    std::memcpy(untied.params().data() + lu.offset[lu.find(lt.specs[i].name)],
                tied.params().data() + lt.offset[i], lt.numel[i] * sizeof(float));
  }
  const int64_t head = lu.find("model.transformer.ff_out.weight");
  std::memcpy(untied.params().data() + lu.offset[head], tied.params().data(),
              lu.numel[head] * sizeof(float));
  const auto ids = random_ids(30, 3, 63);
  const std::vector<int32_t> cuv = {0, 12, 30};
  const MaskedBatch mb = mask_batch(ids, cuv, {.mask_token_id = 63}, 1, 0);
  TrainActivations a;
  tied.zero_grad();
  untied.zero_grad();
  const double l1 = tied.forward_backward(mb.batch(), a);
  const double l2 = untied.forward_backward(mb.batch(), a);
  EXPECT_NEAR(l1, l2, 1e-6 * l1);
  const int64_t n = lu.numel[0];
  float err = 0, scale = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float sum = untied.grads()[i] + untied.grads()[lu.offset[head] + i];
    err = std::max(err, std::fabs(tied.grads()[i] - sum));
    scale = std::max(scale, std::fabs(sum));
  }
  EXPECT_LT(err, 1e-5f * scale);
}

TEST(Trainable, AccumulatedMicroBatchesEqualOneBatch) {
  const ModelConfig c = tiny_config(false, 2);
  const ModelWeights w = init_weights(c, ComputeType::kF32, 6);
  TrainableModel m(c, ComputeType::kF32);
  m.load(w);
  const auto ids = random_ids(40, 4, 63);
  const std::vector<int32_t> cu = {0, 15, 40};
  const std::vector<double> t = {0.3, 0.7};
  std::vector<uint8_t> mask(40);
  for (int i = 0; i < 40; ++i) mask[i] = (i * 7) % 3 == 0;
  TrainActivations a;
  m.zero_grad();
  const double whole = m.forward_backward(
      mask_batch_explicit(ids, cu, {.mask_token_id = 63}, t, mask).batch(), a);
  const std::vector<float> g_whole(m.grads().begin(), m.grads().end());
  m.zero_grad();
  const std::span<const int32_t> sid(ids);
  const std::span<const uint8_t> smask(mask);
  double parts = 0;
  parts += m.forward_backward(mask_batch_explicit(sid.subspan(0, 15), {}, {.mask_token_id = 63},
                                                  std::span(t).subspan(0, 1),
                                                  smask.subspan(0, 15), 40.0)
                                  .batch(),
                              a);
  parts += m.forward_backward(mask_batch_explicit(sid.subspan(15), {}, {.mask_token_id = 63},
                                                  std::span(t).subspan(1, 1), smask.subspan(15),
                                                  40.0)
                                  .batch(),
                              a);
  EXPECT_NEAR(parts, whole, 1e-6 * whole);
  float err = 0, scale = 0;
  for (size_t i = 0; i < g_whole.size(); ++i) {
    err = std::max(err, std::fabs(m.grads()[i] - g_whole[i]));
    scale = std::max(scale, std::fabs(g_whole[i]));
  }
  EXPECT_LT(err, 1e-5f * scale);
}

TEST(Trainable, ZeroGradStartsAFreshSumInBf16) {
  // zero_grad() writes nothing: the next backward's first writes must overwrite (including the
  // fused q/k/v and gate/up products that span several tensors), and tensors no micro-batch
  // reaches (the head when nothing is masked) must read as zeros.
  const ModelConfig c = tiny_config(false, 2);
  TrainableModel m(c, ComputeType::kBF16);
  m.load(init_weights(c, ComputeType::kF32, 8));
  const auto ids = random_ids(24, 5, 63);
  const std::vector<int32_t> cu = {0, 24};
  const std::vector<double> t = {0.5};
  std::vector<uint8_t> mask(24), none(24, 0);
  for (int i = 0; i < 24; ++i) mask[i] = i % 3 == 0;
  const MaskedBatch mb = mask_batch_explicit(ids, cu, {.mask_token_id = 63}, t, mask);
  TrainActivations a;
  m.zero_grad();
  m.forward_backward(mb.batch(), a);
  const std::vector<float> g1(m.grads().begin(), m.grads().end());
  m.zero_grad();
  m.forward_backward(mb.batch(), a);
  EXPECT_TRUE(std::equal(g1.begin(), g1.end(), m.grads().begin()));
  m.forward_backward(mb.batch(), a);  // no zero_grad: the sum of two (up to summation order)
  for (size_t i = 0; i < g1.size(); ++i) {
    ASSERT_NEAR(m.grads()[i], 2.0f * g1[i], 1e-5f * std::fabs(g1[i]) + 1e-12f) << i;
  }
  m.zero_grad();
  const MaskedBatch unmasked = mask_batch_explicit(ids, cu, {.mask_token_id = 63}, t, none);
  ASSERT_TRUE(unmasked.target_rows.empty());
  m.forward_backward(unmasked.batch(), a);
  for (float g : m.grads()) ASSERT_EQ(g, 0.0f);
}

TEST(Trainable, ReusedActivationsLeaveNoTraceInTheHead) {
  // The head runs on the target rows padded to a fixed granule: after a batch with many
  // targets, a batch with few must not see the earlier rows in the padding.
  const ModelConfig c = tiny_config(false, 2);
  const ModelWeights w = init_weights(c, ComputeType::kF32, 9);
  const auto ids = random_ids(24, 6, 63);
  const std::vector<int32_t> cu = {0, 24};
  const std::vector<double> t = {0.5};
  std::vector<uint8_t> many(24, 1), few(24, 0);
  few[3] = few[17] = 1;
  const MaskedBatch big = mask_batch_explicit(ids, cu, {.mask_token_id = 63}, t, many);
  const MaskedBatch small = mask_batch_explicit(ids, cu, {.mask_token_id = 63}, t, few);
  for (ComputeType ct : {ComputeType::kF32, ComputeType::kBF16}) {
    TrainableModel reused(c, ct), fresh(c, ct);
    reused.load(w);
    fresh.load(w);
    TrainActivations a, b;
    reused.zero_grad();
    reused.forward_backward(big.batch(), a);
    reused.zero_grad();
    const double l1 = reused.forward_backward(small.batch(), a);
    fresh.zero_grad();
    const double l2 = fresh.forward_backward(small.batch(), b);
    EXPECT_EQ(l1, l2);
    const auto g1 = reused.grads(), g2 = fresh.grads();
    EXPECT_TRUE(std::equal(g1.begin(), g1.end(), g2.begin())) << "compute " << static_cast<int>(ct);
  }
}

TEST(Trainable, RejectsBadBatches) {
  const ModelConfig c = tiny_config(false, 2);
  TrainableModel m(c, ComputeType::kF32);
  TrainActivations a;
  const std::vector<int32_t> ids = {1, 2, 64}, rows = {0}, tg = {1};
  const std::vector<float> wt = {1.0f};
  EXPECT_THROW(m.loss({.input_ids = ids, .target_rows = rows, .targets = tg,
                       .target_weights = wt}, a),
               Error);
}

// ------------------------------------------------------------------------------ trainer

// Steps on one fixed batch (fresh masks each step); `held` gets the loss of that batch under
// fixed masks (Trainer::eval_loss) before and after.
std::vector<float> run_steps(ComputeType ct, int steps, std::vector<double>* losses,
                             std::pair<double, double>* held = nullptr) {
  const ModelConfig c = tiny_config(true, 2);
  Trainer tr(c, init_weights(c, ComputeType::kF32, 11),
             {.compute = ct, .adamw = {.weight_decay = 0.1}, .seed = 42});
  const auto ids = random_ids(64, 9, 63);
  const std::vector<int32_t> cu1 = {0, 20, 32}, cu2 = {0, 32}, cu_all = {0, 20, 32, 64};
  const std::span<const int32_t> sid(ids);
  const PackedBatch micro[] = {{sid.subspan(0, 32), cu1}, {sid.subspan(32), cu2}};
  const PackedBatch whole{sid, cu_all};
  if (held) held->first = tr.eval_loss(whole, 5);
  for (int s = 0; s < steps; ++s) {
    const StepStats st = tr.train_step(micro, 1e-2);
    EXPECT_EQ(st.tokens, 64);
    EXPECT_GT(st.targets, 0);
    if (losses) losses->push_back(st.loss);
  }
  if (held) held->second = tr.eval_loss(whole, 5);
  return {tr.model().params().begin(), tr.model().params().end()};
}

TEST(Trainer, SameSeedSameBitsAndLossGoesDown) {
  for (ComputeType ct : {ComputeType::kF32, ComputeType::kBF16}) {
    std::vector<double> l1, l2;
    std::pair<double, double> held;
    const auto p1 = run_steps(ct, 40, &l1, &held);
    const auto p2 = run_steps(ct, 40, &l2);
    EXPECT_EQ(l1, l2) << compute_type_name(ct);
    EXPECT_EQ(0, std::memcmp(p1.data(), p2.data(), p1.size() * sizeof(float)));
    // One fixed batch, fresh masks every step: the model memorises it, so its loss under
    // fixed masks falls below the start (about log 64 = 4.16 per masked token at init; 4.23 ->
    // 3.75 in 40 steps here).
    EXPECT_LT(held.second, 0.92 * held.first) << compute_type_name(ct) << ": " << held.first << " -> " << held.second;
  }
}

}  // namespace
}  // namespace illada::train
