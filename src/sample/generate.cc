// The sampling loop. Per block: a commit schedule fixed at the block's start; per step: one
// forward over every active request (packed), a pick per candidate position, and commits.
// Control flow follows ML-GSAI/LLaDA generate() (fixed step count per block) and
// NVlabs/Fast-dLLM generate / generate_with_prefix_cache / generate_with_dual_cache (loop
// until the block has no masks) so that temperature-0 outputs are token-identical.
#include "sample/generate.h"

#include <algorithm>

#include "util/check.h"
#include "util/rng.h"

namespace illada {
namespace {

struct Request {
  std::vector<int32_t> canvas;
  int64_t prompt_len = 0;
  KVCache cache;
  GenerateResult result;
  bool active = true;
  std::vector<int64_t> schedule;   // commits per step of the current block
  std::vector<int32_t> cand;       // candidate positions of the current step
};

// Which canvas positions one request feeds to the model in a step.
struct Feed {
  int64_t first = 0, len = 0;  // ids = canvas[first, first + len)
  int32_t kv_len = 0;          // cache keys (0 = no cache)
};

void validate(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
              const GenerateOptions& o, int64_t total_len) {
  const ModelConfig& c = model.config();
  if (prompts.empty()) fail("generate: no prompt given");
  for (size_t r = 0; r < prompts.size(); ++r) {
    if (prompts[r].empty()) fail("generate: prompt ", r, " is empty (give at least one token)");
    for (int32_t id : prompts[r]) {
      if (id < 0 || id >= c.embedding_size) {
        fail("generate: prompt ", r, " has token id ", id, " outside the vocabulary [0, ",
             c.embedding_size, ")");
      }
    }
    if (static_cast<int64_t>(prompts[r].size()) + total_len > c.max_sequence_length) {
      fail("generate: prompt ", r, " (", prompts[r].size(), " tokens) plus ", total_len,
           " generated tokens exceeds the model's max_sequence_length ", c.max_sequence_length);
    }
  }
  if (o.block_length <= 0) fail("--block-length must be positive");
  if (total_len <= 0) fail(o.variable_length ? "--max-length" : "--gen-length", " must be positive");
  if (total_len % o.block_length != 0) {
    fail(o.variable_length ? "--max-length (" : "--gen-length (", total_len,
         ") must be a multiple of --block-length (", o.block_length, ")");
  }
  const int64_t blocks = total_len / o.block_length;
  if (o.steps <= 0 || o.steps % blocks != 0) {
    fail("--steps (", o.steps, ") must be a positive multiple of the number of blocks (", blocks,
         ")");
  }
  if (o.temperature < 0) fail("--temperature must be >= 0");
  if (o.cfg_scale < 0) fail("--cfg-scale must be >= 0");
  if (o.cfg_scale > 0 && o.cache != CacheMode::kNone) {
    fail("--cfg-scale cannot be combined with --cache (Fast-dLLM's caches have no CFG)");
  }
  if (o.threshold && o.factor) fail("give --threshold or --factor, not both");
  if (o.threshold && !(*o.threshold >= 0 && *o.threshold <= 1)) fail("--threshold must be in [0, 1]");
  if (o.factor && !(*o.factor > 0)) fail("--factor must be positive");
}

}  // namespace

CacheMode parse_cache_mode(const std::string& s) {
  if (s == "none") return CacheMode::kNone;
  if (s == "prefix") return CacheMode::kPrefix;
  if (s == "dual") return CacheMode::kDual;
  fail("--cache: unknown mode '", s, "' (expected none, prefix or dual)");
}

const char* cache_mode_name(CacheMode m) {
  return m == CacheMode::kNone ? "none" : m == CacheMode::kPrefix ? "prefix" : "dual";
}

std::vector<GenerateResult> generate(const Model& model,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& o) {
  const ModelConfig& c = model.config();
  const int64_t total_len =
      o.variable_length ? (o.max_length > 0 ? o.max_length : o.gen_length) : o.gen_length;
  validate(model, prompts, o, total_len);
  const int32_t mask = c.mask_token_id;
  const int64_t vocab = c.embedding_size;
  const int64_t bl = o.block_length, n_blocks = total_len / bl, spb = o.steps / n_blocks;
  const bool parallel = o.threshold.has_value() || o.factor.has_value();
  const bool cfg = o.cfg_scale > 0;
  std::vector<int32_t> stops = o.stop_tokens;
  if (stops.empty()) stops.push_back(c.eos_token_id);
  const PickOptions pick_opts{
      .temperature = o.temperature,
      .remasking = o.remasking,
      .suppress_token = o.logits_eos_inf ? c.eos_token_id : -1,
      .suppress_token_b = o.allow_mask_prediction ? -1 : mask,
      // Official quirk: at temperature > 0 only EOT leaves the confidence softmax.
      .no_confidence_token_a =
          o.confidence_eos_eot_inf && o.temperature == 0 ? c.eos_token_id : -1,
      .no_confidence_token_b = o.confidence_eos_eot_inf ? o.eot_token_id : -1};

  std::vector<Request> reqs(prompts.size());
  for (size_t r = 0; r < prompts.size(); ++r) {
    reqs[r].canvas = prompts[r];
    reqs[r].prompt_len = static_cast<int64_t>(prompts[r].size());
    if (!o.variable_length) reqs[r].canvas.resize(prompts[r].size() + o.gen_length, mask);
  }

  ForwardState st;
  std::vector<int32_t> ids, cu, rows, uncond;
  std::vector<SeqCache> caches;
  std::vector<Feed> feeds(reqs.size());
  std::vector<float> logits;
  std::vector<double> conf;
  std::vector<int32_t> x0;

  for (int64_t b = 0; b < n_blocks; ++b) {
    std::vector<char> stalled(reqs.size(), 0);  // a step that only "committed" mask tokens
    for (Request& rq : reqs) {
      if (!rq.active) continue;
      if (o.variable_length) rq.canvas.resize(rq.canvas.size() + bl, mask);
      const int64_t b0 = rq.prompt_len + b * bl;
      const int64_t masks = std::count(rq.canvas.begin() + b0, rq.canvas.begin() + b0 + bl, mask);
      rq.schedule = num_transfer_tokens(masks, spb);
      if (o.cache != CacheMode::kNone) rq.cache.reset(c, static_cast<int64_t>(rq.canvas.size()));
    }
    for (int64_t step = 0;; ++step) {
      // Who takes a step: the official sampler runs exactly `spb` steps per block; Fast-dLLM's
      // loops (threshold, factor, caches) run until the block has no mask left.
      ids.clear();
      cu.assign(1, 0);
      rows.clear();
      caches.clear();
      std::vector<size_t> stepping;
      for (size_t r = 0; r < reqs.size(); ++r) {
        Request& rq = reqs[r];
        if (!rq.active) continue;
        const int64_t b0 = rq.prompt_len + b * bl, b1 = b0 + bl;
        const bool has_mask =
            std::find(rq.canvas.begin() + b0, rq.canvas.begin() + b1, mask) != rq.canvas.begin() + b1;
        const bool loop_until_done = parallel || o.cache != CacheMode::kNone;
        if (loop_until_done ? !has_mask || stalled[r] : step >= spb) continue;
        const int64_t len = static_cast<int64_t>(rq.canvas.size());
        Feed f{0, len, 0};
        if (o.cache != CacheMode::kNone) {
          f.kv_len = static_cast<int32_t>(len);
          if (step > 0) {
            f.first = b0;
            f.len = (o.cache == CacheMode::kPrefix ? len : b1) - b0;
          }
        }
        feeds[r] = f;
        // Candidates: masked positions before the block's end that this feed covers.
        rq.cand.clear();
        for (int64_t p = f.first; p < b1; ++p) {
          if (rq.canvas[p] == mask) rq.cand.push_back(static_cast<int32_t>(p));
        }
        // No mask left to decide: the official loop would still call the model (a step that
        // commits nothing); we skip the call, so nfe counts real forward passes only.
        if (rq.cand.empty()) continue;
        stepping.push_back(r);
        const int32_t base = cu.back();
        ids.insert(ids.end(), rq.canvas.begin() + f.first, rq.canvas.begin() + f.first + f.len);
        cu.push_back(static_cast<int32_t>(base + f.len));
        for (int32_t p : rq.cand) rows.push_back(static_cast<int32_t>(base + p - f.first));
        if (f.kv_len > 0) {
          caches.push_back({&rq.cache, static_cast<int32_t>(f.first), f.kv_len});
        }
      }
      if (stepping.empty()) break;
      const size_t cond_rows = rows.size();
      if (cfg) {  // unconditional twins: every prompt token masked
        for (size_t r : stepping) {
          Request& rq = reqs[r];
          const int32_t base = cu.back();
          uncond.assign(rq.canvas.begin(), rq.canvas.end());
          std::fill(uncond.begin(), uncond.begin() + rq.prompt_len, mask);
          ids.insert(ids.end(), uncond.begin(), uncond.end());
          cu.push_back(static_cast<int32_t>(base + uncond.size()));
          for (int32_t p : rq.cand) rows.push_back(base + p);
        }
      }
      logits.resize(rows.size() * vocab);
      model.forward({.ids = ids, .cu_seqlens = cu, .logit_rows = rows, .caches = caches}, st,
                    logits);
      if (cfg) {  // logits = u + (cfg + 1) * (c - u)
        const float s = static_cast<float>(o.cfg_scale + 1.0);
        for (size_t i = 0; i < cond_rows * vocab; ++i) {
          const float u = logits[cond_rows * vocab + i];
          logits[i] = u + s * (logits[i] - u);
        }
      }
      size_t row = 0;
      for (size_t r : stepping) {
        Request& rq = reqs[r];
        ++rq.result.nfe;
        const size_t n = rq.cand.size();
        conf.resize(n);
        x0.resize(n);
        for (size_t i = 0; i < n; ++i, ++row) {
          const uint64_t key = random_bits(r, static_cast<uint64_t>(rq.result.nfe),
                                           static_cast<uint64_t>(rq.cand[i]));
          const Pick p = pick_token(logits.data() + row * vocab, vocab, pick_opts, o.seed, key);
          x0[i] = p.token;
          conf[i] = p.confidence;
        }
        std::vector<int64_t> sel;
        if (o.threshold) {
          sel = select_threshold(conf, *o.threshold);
        } else if (o.factor) {
          sel = select_factor(conf, *o.factor);
        } else {
          const int64_t k = step < static_cast<int64_t>(rq.schedule.size()) ? rq.schedule[step] : 0;
          sel = top_k(conf, k);
        }
        std::vector<int32_t> committed;
        for (int64_t i : sel) {
          rq.canvas[rq.cand[i]] = x0[i];
          committed.push_back(rq.cand[i]);
        }
        // Only possible with allow_mask_prediction: no position left the mask state, and the
        // loops that run "until no mask is left" would never end.
        const bool progress = std::any_of(sel.begin(), sel.end(), [&](int64_t i) { return x0[i] != mask; });
        if (!progress && (o.threshold || o.factor || o.cache != CacheMode::kNone) &&
            step + 1 >= static_cast<int64_t>(rq.schedule.size())) {
          stalled[r] = 1;
        }
        if (o.on_step) {
          o.on_step({.request = static_cast<int64_t>(r), .block = b, .step = step,
                     .canvas = rq.canvas, .prompt_length = rq.prompt_len,
                     .committed = committed});
        }
      }
    }
    if (o.variable_length) {
      for (Request& rq : reqs) {
        if (!rq.active) continue;
        const int64_t b0 = rq.prompt_len + b * bl;
        for (int64_t p = b0; p < b0 + bl; ++p) {
          if (std::find(stops.begin(), stops.end(), rq.canvas[p]) != stops.end()) {
            rq.result.stopped = true;
          }
        }
        if (rq.result.stopped) rq.active = false;
      }
    }
  }

  std::vector<GenerateResult> out;
  for (Request& rq : reqs) {
    GenerateResult res = std::move(rq.result);
    res.canvas = rq.canvas;
    auto begin = rq.canvas.begin() + rq.prompt_len, end = rq.canvas.end();
    if (o.variable_length) {
      end = std::find_first_of(begin, end, stops.begin(), stops.end());
    }
    res.ids.assign(begin, end);
    out.push_back(std::move(res));
  }
  return out;
}

}  // namespace illada
