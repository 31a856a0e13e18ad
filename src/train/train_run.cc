// The training run loop, checkpoints and resume (see train_run.h).
#include "train/train_run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "dist/communicator.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/tensor_check.h"
#include "model/weights.h"
#include "util/file.h"
#include "train/data.h"
#include "train/lr_schedule.h"
#include "train/plot.h"
#include "util/check.h"
#include "util/memory.h"

namespace illada::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json",
                                           "special_tokens_map.json", "chat_template.jinja"};

std::string tokenizer_dir(const std::string& t) {
  return fs::is_regular_file(t) ? fs::path(t).parent_path().string() : t;
}

void copy_tokenizer_files(const std::string& tok, const std::string& dst) {
  const std::string src = tokenizer_dir(tok);
  if (!fs::exists(src + "/tokenizer.json")) fail(src, ": no tokenizer.json (--tokenizer)");
  for (const char* f : kTokenizerFiles) {
    const std::string p = src + "/" + f;
    if (fs::exists(p)) fs::copy_file(p, dst + "/" + f, fs::copy_options::overwrite_existing);
  }
}

void fsync_tree(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) fsync_path(e.path().string());
  }
  fsync_path(dir);
}

// Replaces `dst` by the complete directory `tmp` (both in the same parent).
void publish_dir(const std::string& tmp, const std::string& dst) {
  fsync_tree(tmp);
  std::error_code ec;
  const std::string old = dst + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(dst)) fs::rename(dst, old);
  fs::rename(tmp, dst);
  fsync_path(fs::path(dst).parent_path().string());
  fs::remove_all(old, ec);
}

std::string step_name(int64_t step) {
  char b[32];
  std::snprintf(b, sizeof(b), "step-%08lld", static_cast<long long>(step));
  return b;
}

// The model config of the run: from --init's config.json, or --model-config with the special
// token ids and vocabulary size filled in from the dataset when the file leaves them out.
ModelConfig resolve_model_config(const RunConfig& cfg, const DatasetInfo& info) {
  ModelConfig c;
  std::string src;
  if (!cfg.init.empty()) {
    src = cfg.init + "/config.json";
    c = ModelConfig::load(src);
  } else {
    src = cfg.model_config;
    json j;
    try {
      j = json::parse(read_file(src));
    } catch (const json::exception& e) {
      fail(src, ": not valid JSON: ", e.what());
    }
    if (!j.is_object()) fail(src, ": expected a JSON object");
    if (!j.contains("vocab_size")) j["vocab_size"] = info.vocab_size;
    if (!j.contains("mask_token_id")) j["mask_token_id"] = info.mask_token_id;
    if (!j.contains("eos_token_id")) j["eos_token_id"] = info.eos_token_id;
    c = ModelConfig::from_json(j, src);
  }
  if (info.vocab_size > c.embedding_size) {
    fail(src, ": the model has ", c.embedding_size, " embedding rows but the data uses a vocabulary of ", info.vocab_size);
  }
  if (info.mask_token_id >= 0 && c.mask_token_id != info.mask_token_id) {
    fail(src, ": mask_token_id ", c.mask_token_id, " differs from the tokenizer's ", info.mask_token_id);
  }
  if (c.eos_token_id != info.eos_token_id) {
    fail(src, ": eos_token_id ", c.eos_token_id, " differs from the data's EOS ", info.eos_token_id);
  }
  if (cfg.seq_len > c.max_sequence_length) {
    fail("seq_len ", cfg.seq_len, " exceeds the model's max_sequence_length ", c.max_sequence_length);
  }
  return c;
}

// What a checkpoint must agree on with the run that resumes from it.
json run_identity(const RunConfig& cfg, int64_t data_tokens, int64_t eval_tokens) {
  return {{"seq_len", cfg.seq_len},         {"batch_size", cfg.batch_size},
          {"micro_batches", cfg.micro_batches}, {"seed", cfg.seed},
          {"sft", cfg.sft},                 {"prompt_clean", cfg.prompt_clean},
          {"split_prob", cfg.split_prob},   {"split_documents", cfg.split_documents},
          {"dtype", cfg.dtype},             {"data_tokens", data_tokens},
          {"eval_tokens", eval_tokens}};
}

// The schedule state a resumed run needs besides the step: where the pre-training decay
// started (when the plateau rule chose it) and the plateau rule's running block.
json schedule_state(const PlateauRule& rule, int64_t plateau_start) {
  return {{"plateau_decay_start", plateau_start},
          {"plateau", {{"window", rule.window},
                       {"prev_mean", rule.prev_mean},
                       {"has_prev", rule.has_prev},
                       {"block_sum", rule.block_sum},
                       {"block_n", rule.block_n}}}};
}

void save_checkpoint(const std::string& ckpts, Trainer& tr, const ModelConfig& c,
                     const RunConfig& cfg, const json& identity, int64_t step, int64_t keep,
                     const json& schedule) {
  TrainableModel& m = tr.model();
  for (float v : m.params()) {
    if (!std::isfinite(v)) fail("step ", step, ": a parameter is not finite; checkpoint not written");
  }
  const std::string tmp = ckpts + "/.tmp-" + step_name(step);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  save_model(tmp, c, m.weights_view(), {.dtype = DType::F32});
  // Optimizer moments in the parameter layout, one tensor each.
  const ParamLayout& lay = m.layout();
  AdamW& opt = tr.optimizer();
  std::vector<TensorToWrite> moments;
  for (size_t i = 0; i < lay.specs.size(); ++i) {
    for (int which = 0; which < 2; ++which) {
      const float* base = (which == 0 ? opt.m() : opt.v()).data() + lay.offset[i];
      moments.push_back({(which == 0 ? "exp_avg." : "exp_avg_sq.") + lay.specs[i].name, DType::F32,
                         lay.specs[i].shape,
                         {reinterpret_cast<const std::byte*>(base), static_cast<size_t>(lay.numel[i]) * 4}});
    }
  }
  write_safetensors(tmp + "/optimizer.safetensors", moments, {{"format", kTrainStateFormat}});
  copy_tokenizer_files(cfg.tokenizer, tmp);
  const json state = {{"format", kTrainStateFormat},
                      {"version", kTrainStateVersion},
                      {"step", step},
                      {"adam_steps", opt.steps_taken()},
                      {"run", identity},
                      {"model_config", c.to_json()},
                      {"schedule", schedule},
                      {"loader", {{"kind", "epoch-permutation"}, {"next_step", step}}}};
  write_file_atomic(tmp + "/" + kTrainStateFile, state.dump(2) + "\n");
  publish_dir(tmp, ckpts + "/" + step_name(step));
  // Keep the newest `keep` checkpoints.
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(ckpts)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.find('.') == std::string::npos) all.push_back(n);
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove_all(ckpts + "/" + all[i], ec);
}

// Restores parameters, moments and the step from a checkpoint; returns the step. `schedule`
// receives the saved schedule state (null in checkpoints written before it existed).
// The step and optimizer step count of a training state, checked against the run: a state
// edited by hand or damaged must not restart the schedule at an absurd step.
std::pair<int64_t, int64_t> checked_steps(const json& st, const std::string& dir, const std::string& state_path,
                                          int64_t run_steps) {
  auto int_field = [&](const char* key) {
    auto it = st.find(key);
    if (it == st.end() || !it->is_number_integer()) {
      fail(state_path, ": '", key, "' must be an integer, got ", it == st.end() ? "nothing" : it->dump());
    }
    return it->get<int64_t>();
  };
  const int64_t step = int_field("step"), adam_steps = int_field("adam_steps");
  if (step < 1 || step > run_steps) {
    fail(state_path, ": step ", step, " is outside this run's 1..", run_steps, " steps");
  }
  const std::string name = fs::path(dir).filename().string();
  if (name != step_name(step)) fail(state_path, ": step ", step, " does not match the checkpoint's name ", name);
  if (adam_steps < 0 || adam_steps > step) {
    fail(state_path, ": adam_steps ", adam_steps, " is outside 0..", step, " (the checkpoint's step)");
  }
  return {step, adam_steps};
}

int64_t load_checkpoint(const std::string& dir, Trainer& tr, const ModelConfig& c, const json& identity,
                        json& schedule, int64_t run_steps) {
  const std::string state_path = dir + "/" + kTrainStateFile;
  json st;
  try {
    st = json::parse(read_file(state_path));
  } catch (const json::exception& e) {
    fail(state_path, ": not valid JSON: ", e.what());
  }
  if (!st.is_object() || st.value("format", "") != kTrainStateFormat) fail(state_path, ": not an illada training state");
  if (st.value("version", -1) != kTrainStateVersion) {
    fail(state_path, ": training state version ", st.value("version", -1), " is not supported (expected ", kTrainStateVersion, ")");
  }
  if (!st.contains("run") || !st["run"].is_object()) fail(state_path, ": 'run' must be an object");
  for (auto it = identity.begin(); it != identity.end(); ++it) {
    const json& saved = st["run"][it.key()];
    if (saved != it.value()) {
      fail(dir, ": checkpoint does not match this run: ", it.key(), " is ", saved.dump(), " in the checkpoint but ",
           it.value().dump(), " now");
    }
  }
  if (st["model_config"] != c.to_json()) fail(dir, ": checkpoint does not match this run: the model config differs");
  const auto [step, adam_steps] = checked_steps(st, dir, state_path, run_steps);
  auto store = std::make_shared<const TensorStore>(TensorStore::open_dir(dir));
  const ModelWeights w = load_weights(store, c, ComputeType::kF32, dir);
  tr.model().load(w);
  if (const int64_t bad = first_non_finite(tr.model().params()); bad >= 0) {
    fail(dir, ": the checkpoint's weights hold NaN/Inf (parameter ", bad, "); resume from an earlier one");
  }
  tr.model().refresh_compute_weights();
  const TensorStore opt_store = TensorStore::open_file(dir + "/optimizer.safetensors");
  const ParamLayout& lay = tr.model().layout();
  for (size_t i = 0; i < lay.specs.size(); ++i) {
    opt_store.read_f32("exp_avg." + lay.specs[i].name, tr.optimizer().m().subspan(lay.offset[i], lay.numel[i]));
    opt_store.read_f32("exp_avg_sq." + lay.specs[i].name, tr.optimizer().v().subspan(lay.offset[i], lay.numel[i]));
  }
  schedule = st.contains("schedule") && st["schedule"].is_object() ? st["schedule"] : json();
  tr.set_steps_taken(step);
  tr.optimizer().set_steps_taken(adam_steps);
  return step;
}

// Files of a previous run in OUT ("" when there are none).
std::string previous_run(const std::string& out) {
  std::string found;
  for (const char* f : {"checkpoints", "metrics.jsonl", "final", "run_config.json", "plot.svg"}) {
    if (fs::exists(fs::path(out) / f)) found += (found.empty() ? "" : ", ") + std::string(f);
  }
  return found;
}

// The newest checkpoint whose step is below `step` (the step that failed), "" if none.
std::string checkpoint_before(const std::string& ckpts, int64_t step) {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ckpts, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) != 0 || n.find('.') != std::string::npos) continue;
    if (n < step_name(step) && n > best) best = n;
  }
  return best.empty() ? "" : ckpts + "/" + best;
}

// Keeps the metrics lines of steps before `step` (a resumed run rewrites what follows) and
// adds their losses and learning rates to the plot's curves.
void truncate_metrics(const std::string& path, int64_t step, TrainingCurves& curves) {
  if (!fs::exists(path)) return;
  const std::string text = read_file(path);
  std::string kept;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line is dropped
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    try {
      const json j = json::parse(line);
      const int64_t s = j.value("step", int64_t{-1});
      if (s >= step) continue;
      kept += line + "\n";
      const double x = static_cast<double>(s);
      if (j.contains("loss") && j["loss"].is_number()) curves.train_loss.push_back({x, j["loss"].get<double>()});
      if (j.contains("lr") && j["lr"].is_number()) curves.lr.push_back({x, j["lr"].get<double>()});
      if (j.contains("eval_loss") && j["eval_loss"].is_number()) {
        curves.eval_loss.push_back({x, j["eval_loss"].get<double>()});
      }
    } catch (const json::exception&) {
    }
  }
  write_file_atomic(path, kept);
}

std::string format_duration(double s) {
  char b[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(b, sizeof(b), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(b, sizeof(b), "%02ld:%02ld", t / 60, t % 60);
  }
  return b;
}

}  // namespace

std::string latest_checkpoint(const std::string& out_dir) {
  const std::string ckpts = out_dir + "/checkpoints";
  if (!fs::is_directory(ckpts)) return "";
  std::string best;
  for (const auto& e : fs::directory_iterator(ckpts)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) != 0 || n.find('.') != std::string::npos) continue;
    if (!fs::exists(e.path() / kTrainStateFile)) continue;
    if (n > best) best = n;
  }
  return best.empty() ? "" : ckpts + "/" + best;
}

RunResult run_training(RunConfig cfg) {
  cfg.validate();
  // Data parallel under mpirun: every rank runs this loop on its share of each step's windows;
  // rank 0 alone writes files and progress.
  dist::Communicator& comm = dist::world();
  const bool lead = comm.rank() == 0;
  // A new run never mixes its checkpoints and metrics with an old one's.
  if (fs::exists(cfg.out) && !fs::is_directory(cfg.out)) fail("out (--out) ", cfg.out, ": exists and is not a directory");
  if (const std::string prev = previous_run(cfg.out); !prev.empty() && !cfg.resume) {
    if (!cfg.force) {
      fail("out (--out) ", cfg.out, " holds a previous training run (", prev,
           "): pass --resume to continue it or --force to replace it");
    }
    if (lead) {
      for (const char* f : {"checkpoints", "metrics.jsonl", "final", "run_config.json", "plot.svg", ".tmp-final"}) {
        std::error_code ec;
        fs::remove_all(fs::path(cfg.out) / f, ec);
        if (ec) fail("--force: cannot remove ", (fs::path(cfg.out) / f).string(), ": ", ec.message());
      }
    }
  }
  // Every rank has looked at --out before any rank writes into it (rank 0 creating
  // checkpoints/ early must not look like a previous run to a slower rank).
  comm.barrier();
  if (!lead) cfg.progress = false;
  const int64_t n_slices = cfg.micro_batches * comm.size();
  if (cfg.batch_size % n_slices != 0) {
    fail("batch_size (", cfg.batch_size, ") must be divisible by micro_batches (", cfg.micro_batches, ") x ",
         comm.size(), " data-parallel processes");
  }
  const TokenStream data = load_dataset(cfg.data);
  const ModelConfig mc = resolve_model_config(cfg, data.info);
  const int64_t n = static_cast<int64_t>(data.ids.size());
  int64_t eval_tokens = static_cast<int64_t>(std::floor(cfg.eval_fraction * static_cast<double>(n)));
  if (eval_tokens < cfg.seq_len || cfg.eval_batches == 0) eval_tokens = 0;
  const LoaderOptions lo{.seq_len = cfg.seq_len, .batch_size = cfg.batch_size, .seed = cfg.seed,
                         .split_prob = cfg.split_prob, .split_documents = cfg.split_documents,
                         .eos_token_id = data.info.eos_token_id, .begin = 0, .end = n - eval_tokens};
  const DataLoader loader(data, lo);
  LoaderOptions eo = lo;
  eo.begin = n - eval_tokens;
  eo.end = n;
  const std::vector<LoaderBatch> heldout =
      eval_tokens > 0 ? heldout_batches(data, eo, cfg.eval_batches) : std::vector<LoaderBatch>{};
  if (cfg.steps == 0) cfg.steps = loader.steps_for_epochs(cfg.epochs);
  const int64_t steps = cfg.steps;

  // Learning-rate schedule.
  const bool sft_sched = cfg.schedule.empty() ? cfg.sft : cfg.schedule == "sft";
  const double peak = cfg.lr > 0 ? cfg.lr : (sft_sched ? 5e-6 : 2e-4);
  const double floor_lr = cfg.min_lr >= 0 ? cfg.min_lr : (sft_sched ? 5e-7 : 5e-6);
  const int64_t warmup = cfg.warmup >= 0 ? cfg.warmup : std::min<int64_t>(sft_sched ? 50 : 2000, steps / 10);
  auto decay_length = [&](int64_t start) {
    return cfg.decay_steps > 0 ? cfg.decay_steps : std::max<int64_t>(1, steps - start);
  };
  PretrainSchedule pre{.peak_lr = peak, .min_lr = floor_lr, .warmup_steps = warmup,
                       .decay_start = cfg.decay_start, .decay_steps = decay_length(cfg.decay_start)};
  // The plateau rule may start the decay earlier than decay_start (or at all, when it is -1).
  PlateauRule plateau{.window = sft_sched ? 0 : cfg.plateau_window, .threshold = cfg.plateau_threshold,
                      .first_step = warmup};
  int64_t plateau_start = -1;  // the step the plateau rule started the decay at (-1: not yet)
  auto start_decay_at = [&](int64_t s) {
    plateau_start = s;
    pre.decay_start = s;
    pre.decay_steps = decay_length(s);
  };
  const SftSchedule sft{.peak_lr = peak, .final_lr = floor_lr, .warmup_steps = warmup,
                        .total_steps = steps, .decay_fraction = cfg.decay_fraction};
  auto lr_at = [&](int64_t s) { return sft_sched ? sft.lr(s) : pre.lr(s); };

  // Model and trainer.
  TrainerOptions to{.compute = parse_compute_type(cfg.dtype),
                    .adamw = {.beta1 = cfg.beta1, .beta2 = cfg.beta2, .eps = cfg.adam_eps,
                              .weight_decay = cfg.weight_decay, .max_grad_norm = cfg.grad_clip},
                    .masking = {.prompt_clean = cfg.prompt_clean},
                    .seed = cfg.seed,
                    .comm = &comm};
  // fp32 weights, gradients and both AdamW moments, plus bf16 copies for the products.
  require_memory(18.0 * static_cast<double>(mc.n_params()), "training this model (weights, gradients, AdamW state)");
  ModelWeights init;
  if (!cfg.init.empty()) {
    auto store = std::make_shared<const TensorStore>(TensorStore::open_dir(cfg.init));
    init = load_weights(store, mc, ComputeType::kF32, cfg.init);
  } else {
    init = init_weights(mc, ComputeType::kF32, cfg.seed);
  }
  Trainer tr(mc, init, to);
  init = ModelWeights{};

  const std::string ckpts = cfg.out + "/checkpoints";
  const std::string metrics_path = cfg.out + "/metrics.jsonl";
  if (lead) fs::create_directories(ckpts);
  const json identity = run_identity(cfg, n - eval_tokens, eval_tokens);
  int64_t start = 0;
  std::string last_ckpt;
  if (cfg.resume) {
    last_ckpt = latest_checkpoint(cfg.out);
    if (!last_ckpt.empty()) {
      json sched;
      start = load_checkpoint(last_ckpt, tr, mc, identity, sched, steps);
      // The plateau rule's state carries over only if it ran with the same window.
      if (sched.is_object() && plateau.window > 0 && sched["plateau"].value("window", int64_t{0}) == plateau.window) {
        const json& p = sched["plateau"];
        plateau.prev_mean = p.at("prev_mean").get<double>();
        plateau.has_prev = p.at("has_prev").get<bool>();
        plateau.block_sum = p.at("block_sum").get<double>();
        plateau.block_n = p.at("block_n").get<int64_t>();
        const int64_t ps = sched.value("plateau_decay_start", int64_t{-1});
        if (ps >= 0 && (pre.decay_start < 0 || ps < pre.decay_start)) start_decay_at(ps);
      }
      if (lead) {
        std::fprintf(stderr, "illada train: resuming from %s (step %lld)\n", last_ckpt.c_str(),
                     static_cast<long long>(start));
      }
    }
  }
  TrainingCurves curves{.title = "illada train: " + cfg.out};
  const std::string plot_path = cfg.out + "/plot.svg";
  std::unique_ptr<FILE, int (*)(FILE*)> metrics(nullptr, &std::fclose);
  if (lead) {
    truncate_metrics(metrics_path, start, curves);
    write_file_atomic(cfg.out + "/run_config.json", cfg.to_json().dump(2) + "\n");
    metrics.reset(std::fopen(metrics_path.c_str(), "a"));
    if (!metrics) fail(metrics_path, ": cannot open for writing");
    if (comm.size() > 1 && cfg.progress) {
      std::fprintf(stderr, "illada train: data parallel over %d processes (%s), %lld windows each per step\n",
                   comm.size(), comm.backend().c_str(), static_cast<long long>(cfg.batch_size / comm.size()));
    }
  }
  auto plot = [&] {
    if (lead) write_training_plot(plot_path, curves);
  };
  auto log = [&](const json& j) {
    if (!metrics) return;
    std::fputs((j.dump() + "\n").c_str(), metrics.get());
    std::fflush(metrics.get());
  };

  RunResult res;
  auto evaluate = [&](int64_t s) {
    if (heldout.empty()) return;
    double sum = 0;
    for (size_t i = 0; i < heldout.size(); ++i) sum += tr.eval_loss(heldout[i].view(), i);
    const double l = sum / static_cast<double>(heldout.size());
    log({{"step", s}, {"eval_loss", l}});
    curves.eval_loss.push_back({static_cast<double>(s), l});
    if (res.first_eval_loss < 0) res.first_eval_loss = l;
    res.last_eval_loss = l;
    if (cfg.progress) {
      std::fprintf(stderr, "%sstep %lld: held-out loss %.4f\n", isatty(2) ? "\r\033[K" : "", static_cast<long long>(s), l);
    }
  };

  const bool tty = isatty(2);
  const auto t0 = Clock::now();
  double ema_loss = -1;
  int64_t tokens_done = 0;
  const int micro = static_cast<int>(cfg.micro_batches);
  for (int64_t s = start; s < steps; ++s) {
    if (s == 0 || (cfg.eval_every > 0 && s % cfg.eval_every == 0)) evaluate(s);
    const auto ts = Clock::now();
    std::vector<LoaderBatch> mbs;
    std::vector<PackedBatch> views;
    for (int m = 0; m < micro; ++m) {
      mbs.push_back(loader.batch(s, comm.rank() * micro + m, static_cast<int>(n_slices)));
    }
    for (const auto& b : mbs) views.push_back(b.view());
    StepStats st;
    const double lr = lr_at(s);
    try {
      st = tr.train_step(views, lr);
    } catch (const Error& e) {
      log({{"step", s}, {"error", e.what()}});
      plot();
      // Step s ran on the weights after s updates: a checkpoint of them (step-s) holds the
      // weights that failed, so it is set aside (never resumed from) and an earlier one named.
      std::string note;
      const std::string bad = ckpts + "/" + step_name(s);
      if (lead && fs::exists(bad)) {
        std::error_code ec;
        fs::remove_all(bad + ".diverged", ec);
        fs::rename(bad, bad + ".diverged", ec);
        note = "; its weights were set aside as " + bad + ".diverged";
      }
      const std::string good = checkpoint_before(ckpts, s);
      fail("training stopped: ", e.what(), note, "; ",
           good.empty() ? std::string("no good checkpoint was written (the run diverged before its first)")
                        : "the last good checkpoint is " + good + " (--resume continues from it)");
    }
    const double dt = std::chrono::duration<double>(Clock::now() - ts).count();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    tokens_done += st.tokens;
    log({{"step", s}, {"loss", st.loss}, {"lr", lr}, {"grad_norm", st.grad_norm}, {"tokens", st.tokens},
         {"tokens_per_s", dt > 0 ? static_cast<double>(st.tokens) / dt : 0.0}, {"elapsed_s", elapsed}});
    curves.train_loss.push_back({static_cast<double>(s), st.loss});
    curves.lr.push_back({static_cast<double>(s), lr});
    if (plateau.window > 0 && plateau_start < 0 && (pre.decay_start < 0 || s + 1 < pre.decay_start) &&
        plateau.observe(s, st.loss)) {
      start_decay_at(s + 1);
      log({{"step", s}, {"decay_start", s + 1}, {"decay_steps", pre.decay_steps}});
      if (cfg.progress) {
        std::fprintf(stderr, "%sstep %lld: the loss has plateaued; cosine decay over %lld steps starts\n",
                     tty ? "\r\033[K" : "", static_cast<long long>(s + 1), static_cast<long long>(pre.decay_steps));
      }
    }
    ema_loss = ema_loss < 0 ? st.loss : 0.9 * ema_loss + 0.1 * st.loss;
    const int64_t done = s + 1;
    if (cfg.progress && (tty || done % std::max<int64_t>(1, steps / 20) == 0 || done == steps)) {
      const double tps = static_cast<double>(tokens_done) / std::max(elapsed, 1e-9);
      const double eta = elapsed / static_cast<double>(done - start) * static_cast<double>(steps - done);
      std::fprintf(stderr, "%s[%lld/%lld] loss %.4f  lr %.2e  %.0f tok/s  ETA %s%s", tty ? "\r\033[K" : "",
                   static_cast<long long>(done), static_cast<long long>(steps), ema_loss, lr, tps,
                   format_duration(eta).c_str(), tty ? "" : "\n");
    }
    if (cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0) {
      if (lead) {
        save_checkpoint(ckpts, tr, mc, cfg, identity, done, cfg.keep_checkpoints,
                        schedule_state(plateau, plateau_start));
      }
      last_ckpt = ckpts + "/" + step_name(done);
      plot();
    }
  }
  if (cfg.progress && tty) std::fputc('\n', stderr);
  evaluate(steps);
  plot();

  // The final model, as a Hugging Face style directory with the tokenizer.
  res.final_dir = cfg.out + "/final";
  if (const int64_t bad = first_non_finite(tr.model().params()); bad >= 0) {
    fail("training ended with a non-finite weight (parameter ", bad, "); the final model was not written");
  }
  if (lead) {
    const std::string tmp = cfg.out + "/.tmp-final";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    save_model(tmp, mc, tr.model().weights_view(),
               {.dtype = cfg.save_dtype == "f32" ? DType::F32 : DType::BF16});
    copy_tokenizer_files(cfg.tokenizer, tmp);
    publish_dir(tmp, res.final_dir);
  }
  comm.barrier();  // every rank returns once the final model exists
  res.steps = steps;
  return res;
}

}  // namespace illada::train
