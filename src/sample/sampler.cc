// The step-wise engine (sampler.h). Per request: blocks in order, each with a commit schedule
// fixed at its start; per step of the engine: one forward over every request that takes a step
// (packed), a pick per candidate position, and commits. Each request follows the control flow
// of ML-GSAI/LLaDA generate() (a fixed number of steps per block) or NVlabs/Fast-dLLM's
// generate / generate_with_prefix_cache / generate_with_dual_cache (loop until the block has no
// mask), and variable length follows the released iLLaDA var_generate() (ML-GSAI/LLaDA PR
// #134: one generate() call per block on everything so far), so that temperature-0 outputs are
// token-identical to the reference code.
#include "sample/sampler.h"

#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"
#include "sample/generate_internal.h"
#include "util/check.h"
#include "util/rng.h"

namespace illada {

struct Sampler::Request {
  int64_t id = 0;
  int64_t stream = 0;  // random stream and the name callbacks see
  GenerateOptions o;
  PickOptions pick;
  std::vector<int32_t> canvas;
  int64_t prompt_len = 0;
  int64_t total = 0;     // tokens this request may generate (a whole number of blocks)
  int64_t n_blocks = 0;
  int64_t spb = 0;       // steps per block (the schedule's length)
  int64_t block = 0;     // the current block
  bool block_open = false;
  int64_t step = 0;      // steps taken in the current block
  bool stalled = false;  // a step that only "committed" mask tokens (allow_mask_prediction)
  bool prepared = false;
  bool cancel_requested = false;
  bool done = false;
  std::vector<int64_t> schedule;  // commits per step of the current block
  KVCache cache;                  // Fast-dLLM's cache (cache modes prefix and dual)
  // Without a cache of its own, a request that shares a pass with cached ones writes its keys
  // into these and attends to all of them (the same bits as no cache: the invariance tests).
  KVCache scratch, scratch_uncond;
  GenerateResult result;
  // The next step's input: canvas[first, first + len) fed, kv_len cache keys (0: no cache),
  // candidate positions (masked, before the block's end, within the feed).
  int64_t first = 0, len = 0;
  int32_t kv_len = 0;
  std::vector<int32_t> cand;
};

struct Sampler::Scratch {
  ForwardState st;
  std::vector<int32_t> ids, cu, rows, uncond;
  std::vector<SeqCache> caches;
  std::vector<float> logits;
  std::vector<double> conf;
  std::vector<int32_t> x0;
};

Sampler::Sampler(const Model& model, bool batch_invariant)
    : model_(model), batch_invariant_(batch_invariant), scratch_(std::make_unique<Scratch>()) {}
Sampler::~Sampler() = default;

void Sampler::check(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& opts,
                    int64_t stream) {
  const ModelConfig& c = model.config();
  check_prompt(c, prompt, stream);
  check_options(c, opts);
  answer_budget(c, opts, stream, static_cast<int64_t>(prompt.size()));
}

int64_t Sampler::add(std::vector<int32_t> prompt, GenerateOptions opts, int64_t stream) {
  const ModelConfig& c = model_.config();
  check_prompt(c, prompt, stream);
  check_options(c, opts);
  auto rq = std::make_unique<Request>();
  rq->id = next_id_++;
  rq->stream = stream;
  rq->prompt_len = static_cast<int64_t>(prompt.size());
  rq->total = answer_budget(c, opts, stream, rq->prompt_len);
  rq->n_blocks = rq->total / opts.block_length;
  // Steps per block: the fixed canvas shares `steps` over its blocks; var_generate gives every
  // block's generate() call all of them.
  rq->spb = opts.variable_length ? opts.steps : opts.steps / (opts.gen_length / opts.block_length);
  rq->pick = pick_options(c, opts);
  rq->canvas = std::move(prompt);
  if (!opts.variable_length) rq->canvas.resize(rq->canvas.size() + opts.gen_length, c.mask_token_id);
  rq->o = std::move(opts);
  requests_.push_back(std::move(rq));
  return requests_.back()->id;
}

void Sampler::cancel(int64_t id) {
  for (auto& rq : requests_) {
    if (rq->id == id) rq->cancel_requested = true;
  }
}

bool Sampler::finished(int64_t id) const {
  for (const auto& rq : requests_) {
    if (rq->id == id) return rq->done;
  }
  return true;
}

int64_t Sampler::unfinished() const {
  return std::count_if(requests_.begin(), requests_.end(), [](const auto& rq) { return !rq->done; });
}

int64_t Sampler::held() const { return static_cast<int64_t>(requests_.size()); }

GenerateResult Sampler::take(int64_t id) {
  for (auto it = requests_.begin(); it != requests_.end(); ++it) {
    if ((*it)->id != id) continue;
    if (!(*it)->done) fail("sampler: request ", id, " has not finished");
    GenerateResult r = std::move((*it)->result);
    requests_.erase(it);
    return r;
  }
  fail("sampler: no request ", id);
}

void Sampler::finish(Request& rq, bool cancelled) {
  const std::span<const int32_t> answer(rq.canvas.data() + rq.prompt_len, rq.canvas.size() - rq.prompt_len);
  StopMatch stop = find_stop(answer, rq.o, model_.config().eos_token_id);
  GenerateResult& res = rq.result;
  res.cancelled = cancelled;
  res.stopped = stop.found;
  res.answer_length = stop.tokens;
  res.text = std::move(stop.text);
  res.ids.assign(answer.begin(), rq.o.variable_length ? answer.begin() + stop.tokens : answer.end());
  res.canvas = std::move(rq.canvas);
  rq.done = true;
  rq.cand.clear();
  rq.cache = KVCache{};
  rq.scratch = KVCache{};
  rq.scratch_uncond = KVCache{};
}

// Moves the request on until its next step has candidates to decide, or it is finished: ends
// blocks that are over (with variable length, stopping once the answer holds a stop) and opens
// the next one.
void Sampler::prepare(Request& rq) {
  const ModelConfig& c = model_.config();
  const GenerateOptions& o = rq.o;
  const int32_t mask = c.mask_token_id;
  const int64_t bl = o.block_length;
  // The official sampler runs exactly `spb` steps per block; Fast-dLLM's loops (threshold,
  // factor, caches) run until the block has no mask left.
  const bool loop_until_done = o.threshold || o.factor || o.cache != CacheMode::kNone;
  rq.prepared = true;
  while (!rq.done) {
    if (!rq.block_open) {
      if (rq.block >= rq.n_blocks) {
        finish(rq, false);
        return;
      }
      if (o.variable_length) rq.canvas.resize(rq.canvas.size() + bl, mask);
      const int64_t b0 = rq.prompt_len + rq.block * bl;
      const int64_t masks = std::count(rq.canvas.begin() + b0, rq.canvas.begin() + b0 + bl, mask);
      rq.schedule = num_transfer_tokens(masks, rq.spb);
      if (o.cache != CacheMode::kNone) rq.cache.reset(c, static_cast<int64_t>(rq.canvas.size()), model_.dtype());
      rq.step = 0;
      rq.stalled = false;
      rq.block_open = true;
    }
    const int64_t b0 = rq.prompt_len + rq.block * bl, b1 = b0 + bl;
    const bool has_mask = std::find(rq.canvas.begin() + b0, rq.canvas.begin() + b1, mask) != rq.canvas.begin() + b1;
    if (loop_until_done ? has_mask && !rq.stalled : rq.step < rq.spb) {
      const int64_t len = static_cast<int64_t>(rq.canvas.size());
      rq.first = 0;
      rq.len = len;
      rq.kv_len = 0;
      if (o.cache != CacheMode::kNone) {
        rq.kv_len = static_cast<int32_t>(len);
        if (rq.step > 0) {
          rq.first = b0;
          rq.len = (o.cache == CacheMode::kPrefix ? len : b1) - b0;
        }
      }
      rq.cand.clear();
      for (int64_t p = rq.first; p < b1; ++p) {
        if (rq.canvas[p] == mask) rq.cand.push_back(static_cast<int32_t>(p));
      }
      // No mask left to decide: the official loop would still call the model (steps that commit
      // nothing) until its step count is spent; they are skipped, so nfe counts real passes.
      if (!rq.cand.empty()) return;
    }
    // The block is over.
    rq.block_open = false;
    rq.cand.clear();
    if (o.variable_length) {  // var_generate: stop once the answer so far holds a stop
      const std::span<const int32_t> answer(rq.canvas.data() + rq.prompt_len, rq.canvas.size() - rq.prompt_len);
      if (find_stop(answer, o, c.eos_token_id).found) {
        finish(rq, false);
        return;
      }
    }
    ++rq.block;
  }
}

StepReport Sampler::step() {
  const ModelConfig& c = model_.config();
  const int64_t vocab = c.embedding_size;
  StepReport report;
  // Cancellations first, then new requests open their first block.
  std::vector<Request*> stepping;
  for (auto& p : requests_) {
    Request& rq = *p;
    if (rq.done) continue;
    if (rq.cancel_requested || (rq.o.cancelled && rq.o.cancelled(rq.stream))) {
      finish(rq, true);
      report.finished.push_back(rq.id);
      continue;
    }
    if (!rq.prepared) prepare(rq);
    if (rq.done) {
      report.finished.push_back(rq.id);
      continue;
    }
    stepping.push_back(&rq);
  }
  if (stepping.empty()) return report;

  // Pack: every request's fed rows, then the unconditional twins of those with CFG (everything
  // before this generate() call's block masked). When some request uses a cache, every
  // sequence of the pass gets one (a scratch cache over its whole input for the others).
  Scratch& s = *scratch_;
  s.ids.clear();
  s.cu.assign(1, 0);
  s.rows.clear();
  s.caches.clear();
  const bool any_cache = std::any_of(stepping.begin(), stepping.end(), [](const Request* r) { return r->kv_len > 0; });
  auto scratch_cache = [&](KVCache& kc, const Request& rq) {
    const int64_t capacity = rq.prompt_len + rq.total;
    if (kc.capacity < capacity) kc.reset(c, capacity, model_.dtype());
    return &kc;
  };
  for (Request* rq : stepping) {
    const int32_t base = s.cu.back();
    s.ids.insert(s.ids.end(), rq->canvas.begin() + rq->first, rq->canvas.begin() + rq->first + rq->len);
    s.cu.push_back(static_cast<int32_t>(base + rq->len));
    for (int32_t p : rq->cand) s.rows.push_back(static_cast<int32_t>(base + p - rq->first));
    if (rq->kv_len > 0) {
      s.caches.push_back({&rq->cache, static_cast<int32_t>(rq->first), rq->kv_len});
    } else if (any_cache) {
      s.caches.push_back({scratch_cache(rq->scratch, *rq), 0, static_cast<int32_t>(rq->len)});
    }
  }
  std::vector<size_t> uncond_row(stepping.size(), 0);
  for (size_t i = 0; i < stepping.size(); ++i) {
    Request& rq = *stepping[i];
    if (rq.o.cfg_scale <= 0) continue;
    const int32_t base = s.cu.back();
    const int64_t context = rq.o.variable_length ? rq.prompt_len + rq.block * rq.o.block_length : rq.prompt_len;
    s.uncond.assign(rq.canvas.begin(), rq.canvas.end());
    std::fill(s.uncond.begin(), s.uncond.begin() + context, c.mask_token_id);
    s.ids.insert(s.ids.end(), s.uncond.begin(), s.uncond.end());
    s.cu.push_back(static_cast<int32_t>(base + s.uncond.size()));
    uncond_row[i] = s.rows.size();
    for (int32_t p : rq.cand) s.rows.push_back(base + p);
    if (any_cache) {
      s.caches.push_back({scratch_cache(rq.scratch_uncond, rq), 0, static_cast<int32_t>(s.uncond.size())});
    }
  }
  s.logits.resize(s.rows.size() * vocab);
  const BatchInvariantScope invariant(batch_invariant_);
  model_.forward({.ids = s.ids, .cu_seqlens = s.cu, .logit_rows = s.rows, .caches = s.caches}, s.st, s.logits);
  report.requests = static_cast<int64_t>(stepping.size());
  report.sequences = static_cast<int64_t>(s.cu.size()) - 1;
  report.rows = static_cast<int64_t>(s.ids.size());

  size_t row = 0;
  for (size_t i = 0; i < stepping.size(); ++i) {
    Request& rq = *stepping[i];
    const GenerateOptions& o = rq.o;
    const size_t n = rq.cand.size();
    float* lg = s.logits.data() + row * vocab;
    if (o.cfg_scale > 0) {  // logits = u + (cfg + 1) * (c - u)
      const float scale = static_cast<float>(o.cfg_scale + 1.0);
      const float* un = s.logits.data() + uncond_row[i] * vocab;
      for (size_t j = 0; j < n * vocab; ++j) lg[j] = un[j] + scale * (lg[j] - un[j]);
    }
    ++rq.result.nfe;
    const int64_t b0 = rq.prompt_len + rq.block * o.block_length;
    if (o.end_think_boost > 0 && !o.end_think_ids.empty()) {
      const std::span<const int32_t> answer(rq.canvas.data() + rq.prompt_len, rq.canvas.size() - rq.prompt_len);
      const auto first = std::find_if(rq.cand.begin(), rq.cand.end(), [&](int32_t p) { return p >= b0; });
      if (first != rq.cand.end() && !contains_sequence(answer, o.end_think_ids)) {
        const int64_t pos = *first;
        const double progress =
            std::clamp(static_cast<double>(pos - rq.prompt_len + 1) / static_cast<double>(rq.total), 0.0, 1.0);
        const int32_t tok = next_sequence_token(rq.canvas, pos, o.end_think_ids, rq.prompt_len);
        lg[(first - rq.cand.begin()) * vocab + tok] +=
            static_cast<float>(o.end_think_boost * std::pow(progress, o.end_think_power));
      }
    }
    s.conf.resize(n);
    s.x0.resize(n);
    for (size_t j = 0; j < n; ++j) {
      const uint64_t key =
          random_bits(static_cast<uint64_t>(rq.stream), static_cast<uint64_t>(rq.result.nfe), static_cast<uint64_t>(rq.cand[j]));
      const Pick p = pick_token(lg + j * vocab, vocab, rq.pick, o.seed, key);
      s.x0[j] = p.token;
      s.conf[j] = p.confidence;
    }
    row += n;
    std::vector<int64_t> sel;
    if (o.threshold) {
      sel = select_threshold(s.conf, *o.threshold);
    } else if (o.factor) {
      sel = select_factor(s.conf, *o.factor);
    } else {
      const int64_t k = rq.step < static_cast<int64_t>(rq.schedule.size()) ? rq.schedule[rq.step] : 0;
      sel = top_k(s.conf, k);
    }
    std::vector<int32_t> committed;
    for (int64_t j : sel) {
      rq.canvas[rq.cand[j]] = s.x0[j];
      committed.push_back(rq.cand[j]);
    }
    report.committed += static_cast<int64_t>(committed.size());
    // Only possible with allow_mask_prediction: no position left the mask state, and the loops
    // that run "until no mask is left" would never end.
    const bool progress = std::any_of(sel.begin(), sel.end(), [&](int64_t j) { return s.x0[j] != c.mask_token_id; });
    if (!progress && (o.threshold || o.factor || o.cache != CacheMode::kNone) &&
        rq.step + 1 >= static_cast<int64_t>(rq.schedule.size())) {
      rq.stalled = true;
    }
    if (o.on_step) {
      o.on_step({.request = rq.stream, .block = rq.block, .step = rq.step, .canvas = rq.canvas,
                 .prompt_length = rq.prompt_len, .committed = committed});
    }
    ++rq.step;
  }
  for (Request* rq : stepping) {
    prepare(*rq);
    if (rq->done) report.finished.push_back(rq->id);
  }
  return report;
}

}  // namespace illada
