// The sampling loop. Per block: a commit schedule fixed at the block's start; per step: one
// forward over every active request (packed), a pick per candidate position, and commits.
// Control flow follows ML-GSAI/LLaDA generate() (fixed step count per block) and
// NVlabs/Fast-dLLM generate / generate_with_prefix_cache / generate_with_dual_cache (loop
// until the block has no masks), and variable length follows the released iLLaDA
// var_generate() (ML-GSAI/LLaDA PR #134: one generate() call per block on everything so far),
// so that temperature-0 outputs are token-identical.
#include "sample/generate.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "util/check.h"
#include "util/rng.h"

namespace illada {
namespace {

struct Request {
  std::vector<int32_t> canvas;
  int64_t prompt_len = 0;
  int64_t total = 0;     // tokens this request may generate (a whole number of blocks)
  int64_t n_blocks = 0;
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

// Tokens request `r` generates: the fixed canvas, or (variable length) the requested maximum
// cut to what the context leaves after the prompt and down to whole blocks (eval_illada.py).
int64_t answer_budget(const ModelConfig& c, const GenerateOptions& o, size_t r, int64_t prompt_len) {
  if (!o.variable_length) {
    if (prompt_len + o.gen_length > c.max_sequence_length) {
      fail("generate: prompt ", r, " (", prompt_len, " tokens) plus ", o.gen_length,
           " generated tokens exceeds the model's max_sequence_length ", c.max_sequence_length);
    }
    return o.gen_length;
  }
  const int64_t wanted = o.max_length > 0 ? o.max_length : o.gen_length;
  const int64_t total = std::min(wanted, c.max_sequence_length - prompt_len) / o.block_length * o.block_length;
  if (total <= 0) {
    fail("generate: prompt ", r, " (", prompt_len, " tokens) leaves no room for one block of ",
         o.block_length, " tokens within the model's max_sequence_length ", c.max_sequence_length);
  }
  return total;
}

void validate(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
              const GenerateOptions& o) {
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
  }
  if (o.block_length <= 0) fail("--block-length must be positive");
  if (o.variable_length) {
    if ((o.max_length > 0 ? o.max_length : o.gen_length) <= 0) fail("--max-length must be positive");
    if (o.steps <= 0) fail("--steps (", o.steps, ") must be positive (steps per block with --variable-length)");
  } else {
    if (o.gen_length <= 0) fail("--gen-length must be positive");
    if (o.gen_length % o.block_length != 0) {
      fail("--gen-length (", o.gen_length, ") must be a multiple of --block-length (", o.block_length, ")");
    }
    const int64_t blocks = o.gen_length / o.block_length;
    if (o.steps <= 0 || o.steps % blocks != 0) {
      fail("--steps (", o.steps, ") must be a positive multiple of the number of blocks (", blocks, ")");
    }
  }
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) fail("--temperature must be a finite number >= 0");
  if (!(o.cfg_scale >= 0) || !std::isfinite(o.cfg_scale)) fail("--cfg-scale must be a finite number >= 0");
  if (o.cfg_scale > 0 && o.cache != CacheMode::kNone) {
    fail("--cfg-scale cannot be combined with --cache (Fast-dLLM's caches have no CFG)");
  }
  if (o.threshold && o.factor) fail("give --threshold or --factor, not both");
  if (o.threshold && !(*o.threshold >= 0 && *o.threshold <= 1)) fail("--threshold must be in [0, 1]");
  if (o.factor && !(*o.factor > 0 && std::isfinite(*o.factor))) fail("--factor must be a finite number > 0");
  if (!(o.end_think_boost >= 0) || !std::isfinite(o.end_think_boost)) {
    fail("--end-think-boost must be a finite number >= 0");
  }
  if (!std::isfinite(o.end_think_power)) fail("--end-think-power must be a finite number");
  for (int32_t id : o.end_think_ids) {
    if (id < 0 || id >= c.embedding_size) {
      fail("--end-think-text: token id ", id, " is outside the vocabulary [0, ", c.embedding_size, ")");
    }
  }
  if (!o.stop_strings.empty() && !o.detokenize) {
    fail("generate: stop strings need a tokenizer to decode the answer (none was given)");
  }
}

bool contains_sequence(std::span<const int32_t> tokens, std::span<const int32_t> seq) {
  if (seq.empty() || tokens.size() < seq.size()) return false;
  return std::search(tokens.begin(), tokens.end(), seq.begin(), seq.end()) != tokens.end();
}

// The token of `seq` that continues what precedes `pos`: after the longest proper prefix of
// `seq` that ends just before pos (within the answer, which starts at `answer_start`), else
// its first token (get_next_sequence_token_id of the released code).
int32_t next_sequence_token(std::span<const int32_t> canvas, int64_t pos, std::span<const int32_t> seq,
                            int64_t answer_start) {
  const int64_t longest = std::min<int64_t>(static_cast<int64_t>(seq.size()) - 1, pos - answer_start);
  for (int64_t k = longest; k > 0; --k) {
    if (std::equal(seq.begin(), seq.begin() + k, canvas.begin() + (pos - k))) return seq[k];
  }
  return seq[0];
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

StopMatch find_stop(std::span<const int32_t> answer, const GenerateOptions& o, int32_t eos_id) {
  const int64_t n = static_cast<int64_t>(answer.size());
  StopMatch m{.tokens = n};
  std::vector<int32_t> stop_ids = o.stop_tokens;
  if (stop_ids.empty() && o.stop_strings.empty()) stop_ids.push_back(eos_id);
  const auto tok_stop = std::find_first_of(answer.begin(), answer.end(), stop_ids.begin(), stop_ids.end());
  if (tok_stop != answer.end()) {
    m.found = true;
    m.tokens = tok_stop - answer.begin();
  }
  if (!o.detokenize) return m;
  const std::string text = o.detokenize(answer);
  size_t cut = std::string::npos;
  for (const auto& s : o.stop_strings) {
    if (!s.empty()) cut = std::min(cut, text.find(s));
  }
  if (cut != std::string::npos) {
    // The longest run of whole tokens whose text lies inside the cut text (a decoded prefix can
    // end in a replacement character for a split UTF-8 sequence, so test every length).
    const std::string_view kept(text.data(), cut);
    int64_t whole = 0;
    for (int64_t k = 1; k <= std::min(n, m.tokens); ++k) {
      if (kept.starts_with(o.detokenize(answer.first(static_cast<size_t>(k))))) whole = k;
    }
    if (!m.found || whole <= m.tokens) {
      m.found = true;
      m.tokens = whole;
      m.text.assign(kept);
      return m;
    }
  }
  m.text = m.tokens == n ? text : o.detokenize(answer.first(static_cast<size_t>(m.tokens)));
  return m;
}

std::vector<GenerateResult> generate(const Model& model,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& o) {
  const ModelConfig& c = model.config();
  validate(model, prompts, o);
  const int32_t mask = c.mask_token_id;
  const int64_t vocab = c.embedding_size;
  const int64_t bl = o.block_length;
  const bool parallel = o.threshold.has_value() || o.factor.has_value();
  const bool cfg = o.cfg_scale > 0;
  const bool boost = o.end_think_boost > 0 && !o.end_think_ids.empty();
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
  int64_t most_blocks = 0;
  for (size_t r = 0; r < prompts.size(); ++r) {
    Request& rq = reqs[r];
    rq.canvas = prompts[r];
    rq.prompt_len = static_cast<int64_t>(prompts[r].size());
    rq.total = answer_budget(c, o, r, rq.prompt_len);
    rq.n_blocks = rq.total / bl;
    most_blocks = std::max(most_blocks, rq.n_blocks);
    if (!o.variable_length) rq.canvas.resize(prompts[r].size() + o.gen_length, mask);
  }
  // Steps per block: the fixed canvas shares `steps` over its blocks; var_generate gives every
  // block's generate() call all of them.
  const int64_t spb = o.variable_length ? o.steps : o.steps / (o.gen_length / bl);

  ForwardState st;
  std::vector<int32_t> ids, cu, rows, uncond;
  std::vector<SeqCache> caches;
  std::vector<Feed> feeds(reqs.size());
  std::vector<float> logits;
  std::vector<double> conf;
  std::vector<int32_t> x0;

  for (int64_t b = 0; b < most_blocks; ++b) {
    std::vector<char> stalled(reqs.size(), 0);  // a step that only "committed" mask tokens
    for (Request& rq : reqs) {
      if (rq.active && b >= rq.n_blocks) rq.active = false;
      if (!rq.active) continue;
      if (o.variable_length) rq.canvas.resize(rq.canvas.size() + bl, mask);
      const int64_t b0 = rq.prompt_len + b * bl;
      const int64_t masks = std::count(rq.canvas.begin() + b0, rq.canvas.begin() + b0 + bl, mask);
      rq.schedule = num_transfer_tokens(masks, spb);
      if (o.cache != CacheMode::kNone) rq.cache.reset(c, static_cast<int64_t>(rq.canvas.size()), model.dtype());
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
        if (rq.active && o.cancelled && o.cancelled(static_cast<int64_t>(r))) {
          rq.active = false;
          rq.result.cancelled = true;
        }
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
      if (cfg) {  // unconditional twins: everything before this generate() call's block masked
        for (size_t r : stepping) {
          Request& rq = reqs[r];
          const int32_t base = cu.back();
          const int64_t context = o.variable_length ? rq.prompt_len + b * bl : rq.prompt_len;
          uncond.assign(rq.canvas.begin(), rq.canvas.end());
          std::fill(uncond.begin(), uncond.begin() + context, mask);
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
        const int64_t b0 = rq.prompt_len + b * bl;
        if (boost) {
          const std::span<const int32_t> answer(rq.canvas.data() + rq.prompt_len,
                                                rq.canvas.size() - rq.prompt_len);
          const auto first = std::find_if(rq.cand.begin(), rq.cand.end(), [&](int32_t p) { return p >= b0; });
          if (first != rq.cand.end() && !contains_sequence(answer, o.end_think_ids)) {
            const int64_t pos = *first;
            const double progress =
                std::clamp(static_cast<double>(pos - rq.prompt_len + 1) / static_cast<double>(rq.total), 0.0, 1.0);
            const int32_t tok = next_sequence_token(rq.canvas, pos, o.end_think_ids, rq.prompt_len);
            logits[(row + (first - rq.cand.begin())) * vocab + tok] +=
                static_cast<float>(o.end_think_boost * std::pow(progress, o.end_think_power));
          }
        }
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
    if (o.variable_length) {  // var_generate: stop once the answer so far holds a stop
      for (Request& rq : reqs) {
        if (!rq.active) continue;
        const std::span<const int32_t> answer(rq.canvas.data() + rq.prompt_len,
                                              rq.canvas.size() - rq.prompt_len);
        if (find_stop(answer, o, c.eos_token_id).found) {
          rq.result.stopped = true;
          rq.active = false;
        }
      }
    }
  }

  std::vector<GenerateResult> out;
  for (Request& rq : reqs) {
    GenerateResult res = std::move(rq.result);
    const std::span<const int32_t> answer(rq.canvas.data() + rq.prompt_len,
                                          rq.canvas.size() - rq.prompt_len);
    StopMatch stop = find_stop(answer, o, c.eos_token_id);
    res.stopped = stop.found;
    res.answer_length = stop.tokens;
    res.text = std::move(stop.text);
    res.ids.assign(answer.begin(), o.variable_length ? answer.begin() + stop.tokens : answer.end());
    res.canvas = std::move(rq.canvas);
    out.push_back(std::move(res));
  }
  return out;
}

}  // namespace illada
