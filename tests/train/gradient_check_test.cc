// Loss and every parameter's gradient of the masked-diffusion objective against the float64
// PyTorch reference (tools/reference/make_train_fixtures.py -> tests/fixtures/train/), and 10
// AdamW steps' losses. Tolerances (per tensor, relative to the reference gradient's max-abs):
//   fp32 compute: 2e-5 (gradients; measured ~1.5e-6), 1e-5 relative (loss), 1e-4 relative (10 losses);
//   bf16 compute: 5e-2 (gradients; measured ~1.8e-2), 1e-2 relative (loss) — bf16 operands in every product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "io/safetensors.h"
#include "model/transformer.h"
#include "train/adamw.h"
#include "train/diffusion_loss.h"
#include "train/lr_schedule.h"
#include "train/trainable.h"

namespace illada::train {
namespace {

std::string fixture(const std::string& name) {
  return std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/" + name;
}

template <class T>
std::vector<T> raw(const TensorStore& s, const std::string& name) {
  auto b = s.bytes(name);
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<float> f32(const TensorStore& s, const std::string& name) {
  std::vector<float> v(static_cast<size_t>(s.find(name)->numel()));
  s.read_f32(name, v);
  return v;
}

struct Fixture {
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<TensorStore> ref;
  std::vector<int32_t> ids, cu;
  std::vector<double> t;
  std::vector<uint8_t> mask;
  MaskedBatch batch;
};

Fixture load(const std::string& model) {
  Fixture f;
  f.config = ModelConfig::load(fixture(model) + "/config.json");
  auto store = std::make_shared<const TensorStore>(TensorStore::open_dir(fixture(model)));
  f.weights = load_weights(store, f.config, ComputeType::kF32, model);
  f.ref = std::make_unique<TensorStore>(
      TensorStore::open_file(fixture("train/" + model + ".safetensors")));
  f.ids = raw<int32_t>(*f.ref, "ids");
  f.cu = raw<int32_t>(*f.ref, "cu_seqlens");
  f.t = raw<double>(*f.ref, "t");
  f.mask = raw<uint8_t>(*f.ref, "mask");
  f.batch = mask_batch_explicit(f.ids, f.cu, {.mask_token_id = f.config.mask_token_id}, f.t,
                                f.mask);
  return f;
}

float max_abs(std::span<const float> v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

class GradientCheck : public ::testing::TestWithParam<std::string> {};

void check_gradients(const std::string& model, ComputeType compute, float grad_tol,
                     double loss_tol) {
  Fixture f = load(model);
  TrainableModel tm(f.config, compute);
  tm.load(f.weights);
  tm.zero_grad();
  TrainActivations act;
  const double loss = tm.forward_backward(f.batch.batch(), act);
  const double ref_loss = raw<double>(*f.ref, "loss")[0];
  EXPECT_NEAR(loss, ref_loss, loss_tol * ref_loss);
  float worst = 0.0f;
  std::string worst_name;
  tm.for_each_param([&](const TensorSpec& spec, std::span<float>, std::span<float> g) {
    const auto ref = f32(*f.ref, "grad." + spec.name);
    ASSERT_EQ(ref.size(), g.size()) << spec.name;
    const float scale = max_abs(ref);
    ASSERT_GT(scale, 0.0f) << spec.name;
    float err = 0.0f;
    for (size_t i = 0; i < ref.size(); ++i) err = std::max(err, std::fabs(g[i] - ref[i]));
    EXPECT_LE(err, grad_tol * scale) << spec.name << " max|ref| " << scale;
    if (err / scale > worst) {
      worst = err / scale;
      worst_name = spec.name;
    }
  });
  std::printf("[%s %s] loss %.9f ref %.9f; worst gradient error %.3g of max-abs (%s)\n",
              model.c_str(), compute_type_name(compute), loss, ref_loss, worst,
              worst_name.c_str());
}

TEST_P(GradientCheck, Fp32MatchesReference) {
  check_gradients(GetParam(), ComputeType::kF32, 2e-5f, 1e-5);
}

TEST_P(GradientCheck, Bf16MatchesReferenceLoosely) {
  check_gradients(GetParam(), ComputeType::kBF16, 5e-2f, 1e-2);
}

TEST_P(GradientCheck, LossAgreesWithInferenceForward) {
  Fixture f = load(GetParam());
  TrainableModel tm(f.config, ComputeType::kF32);
  tm.load(f.weights);
  TrainActivations act;
  const double loss = tm.loss(f.batch.batch(), act);
  const Model model(f.config, tm.weights_view());
  ForwardState st;
  const ForwardInput in{.ids = f.batch.input_ids, .cu_seqlens = f.cu,
                        .logit_rows = f.batch.target_rows};
  std::vector<float> logits(f.batch.target_rows.size() * f.config.embedding_size);
  model.forward(in, st, logits);
  double ref = 0.0;
  const int64_t v = f.config.embedding_size;
  for (size_t i = 0; i < f.batch.target_rows.size(); ++i) {
    const float* l = logits.data() + i * v;
    double mx = l[0], sum = 0.0;
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, static_cast<double>(l[j]));
    for (int64_t j = 0; j < v; ++j) sum += std::exp(l[j] - mx);
    ref += f.batch.target_weights[i] * (mx + std::log(sum) - l[f.batch.targets[i]]);
  }
  EXPECT_NEAR(loss, ref, 1e-5 * ref);
}

TEST_P(GradientCheck, TenAdamWStepsReproduceReferenceLosses) {
  Fixture f = load(GetParam());
  const auto h = raw<double>(*f.ref, "adamw");
  const auto ref_losses = raw<double>(*f.ref, "losses");
  const PretrainSchedule sched{.peak_lr = h[0], .min_lr = h[1],
                               .warmup_steps = static_cast<int64_t>(h[2]),
                               .decay_start = static_cast<int64_t>(h[3]),
                               .decay_steps = static_cast<int64_t>(h[4])};
  TrainableModel tm(f.config, ComputeType::kF32);
  tm.load(f.weights);
  AdamW opt(tm.layout(), {.beta1 = h[5], .beta2 = h[6], .eps = h[7], .weight_decay = h[8],
                          .max_grad_norm = h[9]});
  TrainActivations act;
  double worst = 0.0;
  for (int step = 0; step < 10; ++step) {
    tm.zero_grad();
    const double loss = tm.forward_backward(f.batch.batch(), act);
    worst = std::max(worst, std::fabs(loss - ref_losses[step]) / ref_losses[step]);
    EXPECT_NEAR(loss, ref_losses[step], 1e-4 * ref_losses[step]) << "step " << step;
    const auto info = opt.step(tm.params(), tm.grads(), sched.lr(step));
    if (step == 0) {
      EXPECT_LT(info.clip_scale, 1.0);  // clipping is exercised
    }
    tm.refresh_compute_weights();
  }
  std::printf("[%s] 10 AdamW losses: worst relative error %.3g (first %.6f last %.6f)\n",
              GetParam().c_str(), worst, ref_losses[0], ref_losses[9]);
}

INSTANTIATE_TEST_SUITE_P(Models, GradientCheck, ::testing::Values("tiny_mha", "tiny_gqa"));

}  // namespace
}  // namespace illada::train
