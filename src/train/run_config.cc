// RunConfig keys, JSON reading and validation (see run_config.h).
#include "train/run_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "util/file.h"
#include "util/check.h"

namespace illada::train {
namespace {

using nlohmann::json;

// The one list of keys: reading, writing and the unknown-key check all walk it.
template <class C, class F>
void visit_keys(C& c, F&& f) {
  f("model_config", c.model_config);
  f("init", c.init);
  f("tokenizer", c.tokenizer);
  f("data", c.data);
  f("out", c.out);
  f("steps", c.steps);
  f("epochs", c.epochs);
  f("seq_len", c.seq_len);
  f("batch_size", c.batch_size);
  f("micro_batches", c.micro_batches);
  f("sft", c.sft);
  f("prompt_clean", c.prompt_clean);
  f("split_prob", c.split_prob);
  f("split_documents", c.split_documents);
  f("schedule", c.schedule);
  f("lr", c.lr);
  f("min_lr", c.min_lr);
  f("warmup", c.warmup);
  f("decay_start", c.decay_start);
  f("decay_steps", c.decay_steps);
  f("decay_fraction", c.decay_fraction);
  f("plateau_window", c.plateau_window);
  f("plateau_threshold", c.plateau_threshold);
  f("weight_decay", c.weight_decay);
  f("beta1", c.beta1);
  f("beta2", c.beta2);
  f("adam_eps", c.adam_eps);
  f("grad_clip", c.grad_clip);
  f("dtype", c.dtype);
  f("save_dtype", c.save_dtype);
  f("seed", c.seed);
  f("checkpoint_every", c.checkpoint_every);
  f("keep_checkpoints", c.keep_checkpoints);
  f("eval_every", c.eval_every);
  f("eval_batches", c.eval_batches);
  f("eval_fraction", c.eval_fraction);
  f("resume", c.resume);
  f("force", c.force);
  f("progress", c.progress);
}

template <class T>
void read_value(const json& v, T& out, const std::string& where) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) fail(where, " must be true or false, got ", v.dump());
    out = v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) fail(where, " must be a string, got ", v.dump());
    out = v.get<std::string>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.is_number()) fail(where, " must be a number, got ", v.dump());
    out = v.get<double>();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    if (!v.is_number_unsigned()) fail(where, " must be a non-negative integer, got ", v.dump());
    out = v.get<uint64_t>();
  } else {
    if (!v.is_number_integer()) fail(where, " must be an integer, got ", v.dump());
    out = v.get<T>();
  }
}

}  // namespace

void RunConfig::apply_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail(source, ": expected a JSON object of training options");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool found = false;
    visit_keys(*this, [&](const char* key, auto& member) {
      if (it.key() != key) return;
      found = true;
      read_value(it.value(), member, source + ": key '" + key + "'");
    });
    if (!found) fail(source, ": unknown key '", it.key(), "' (see docs/training.md for the keys)");
  }
}

json RunConfig::to_json() const {
  json j = json::object();
  visit_keys(*this, [&](const char* key, const auto& member) { j[key] = member; });
  return j;
}

void RunConfig::validate() const {
  if (model_config.empty() == init.empty()) fail("give exactly one of model_config (--model-config) and init (--init)");
  if (tokenizer.empty()) fail("tokenizer (--tokenizer) is required");
  if (data.empty()) fail("data (--data) is required");
  if (out.empty()) fail("out (--out) is required");
  if (seq_len < 2) fail("seq_len (--seq-len) must be at least 2, got ", seq_len);
  if (batch_size < 1) fail("batch_size (--batch-size) must be positive, got ", batch_size);
  if (micro_batches < 1 || batch_size % micro_batches != 0) {
    fail("micro_batches (", micro_batches, ") must divide batch_size (", batch_size, ")");
  }
  if (steps < 0 || !(epochs >= 0 && std::isfinite(epochs))) fail("steps and epochs must be finite and not negative");
  if (steps == 0 && epochs <= 0) fail("give steps (--steps) or epochs (--epochs)");
  if (steps > 0 && epochs > 0) fail("give steps (--steps) or epochs (--epochs), not both");
  if (!schedule.empty() && schedule != "pretrain" && schedule != "sft") {
    fail("schedule must be \"pretrain\" or \"sft\", got \"", schedule, "\"");
  }
  if (dtype != "bf16" && dtype != "f32") fail("dtype must be bf16 or f32, got \"", dtype, "\"");
  if (save_dtype != "bf16" && save_dtype != "f32") fail("save_dtype must be bf16 or f32, got \"", save_dtype, "\"");
  if (!(split_prob >= 0 && split_prob <= 1)) fail("split_prob must be in [0, 1], got ", split_prob);
  if (!(eval_fraction >= 0 && eval_fraction < 1)) fail("eval_fraction must be in [0, 1), got ", eval_fraction);
  if (checkpoint_every < 0 || eval_every < 0 || eval_batches < 0) fail("checkpoint_every, eval_every and eval_batches must not be negative");
  if (keep_checkpoints < 1) fail("keep_checkpoints must be at least 1, got ", keep_checkpoints);
  if (plateau_window < 0) fail("plateau_window must not be negative, got ", plateau_window);
  if (!(plateau_threshold >= 0 && plateau_threshold < 1)) {
    fail("plateau_threshold must be in [0, 1), got ", plateau_threshold);
  }
  if (!(decay_fraction > 0 && decay_fraction <= 1)) fail("decay_fraction must be in (0, 1], got ", decay_fraction);
  // The optimiser's numbers: a NaN or a non-positive learning rate would train at some other
  // rate (or not at all) while the run's files record it. -1 means "the schedule's default".
  if (lr != -1 && !(lr > 0 && std::isfinite(lr))) fail("lr (--lr) must be a positive finite number, got ", lr);
  if (min_lr != -1 && !(min_lr >= 0 && std::isfinite(min_lr))) {
    fail("min_lr (--min-lr) must be a finite number >= 0, got ", min_lr);
  }
  if (lr > 0 && min_lr > lr) fail("min_lr (", min_lr, ") must not exceed lr (", lr, ")");
  if (warmup < -1) fail("warmup (--warmup) must not be negative, got ", warmup);
  if (decay_start < -1) fail("decay_start (--decay-start) must be -1 (none) or a step, got ", decay_start);
  if (decay_steps < 0) fail("decay_steps (--decay-steps) must not be negative, got ", decay_steps);
  if (!(weight_decay >= 0 && std::isfinite(weight_decay))) {
    fail("weight_decay (--weight-decay) must be a finite number >= 0, got ", weight_decay);
  }
  if (!(beta1 >= 0 && beta1 < 1)) fail("beta1 (--beta1) must be in [0, 1), got ", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail("beta2 (--beta2) must be in [0, 1), got ", beta2);
  if (!(adam_eps > 0 && adam_eps <= 1)) fail("adam_eps (--adam-eps) must be in (0, 1], got ", adam_eps);
  if (!std::isfinite(grad_clip)) fail("grad_clip (--grad-clip) must be finite, got ", grad_clip);
  if (resume && force) fail("give resume (--resume) or force (--force), not both");
}

RunConfig load_run_config(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  RunConfig c;
  c.apply_json(j, path);
  return c;
}

}  // namespace illada::train
