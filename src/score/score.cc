// Monte-Carlo likelihood and confidence scoring (see score.h).
#include "score/score.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/check.h"
#include "util/rng.h"

namespace illada {
namespace {

// log softmax(row)[target] in double.
double log_prob(const float* row, int64_t vocab, int32_t target) {
  double mx = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
  return row[target] - mx - std::log(sum);
}

void check_ids(const Model& m, std::span<const int32_t> ids, const char* what) {
  for (int32_t id : ids) {
    if (id < 0 || id >= m.config().embedding_size) {
      fail(what, ": token id ", id, " is outside the vocabulary [0, ", m.config().embedding_size, ")");
    }
  }
}

// logits = u + (cfg + 1) (c - u) for the first half of the rows against the second half.
void apply_cfg(std::vector<float>& logits, size_t cond_floats, double cfg) {
  const float s = static_cast<float>(cfg + 1.0);
  for (size_t i = 0; i < cond_floats; ++i) {
    const float u = logits[cond_floats + i];
    logits[i] = u + s * (logits[i] - u);
  }
}

}  // namespace

std::vector<int64_t> stratified_mask_counts(int64_t k, int64_t answer_len, int64_t batch) {
  std::vector<int64_t> x(static_cast<size_t>(batch));
  const double step = batch > 1 ? static_cast<double>(answer_len) / batch : 0.0;
  for (int64_t i = 0; i < batch; ++i) {
    // torch.round rounds half to even, as nearbyint does in the default rounding mode. The
    // official code builds the values with a float32 torch.linspace; exact arithmetic here
    // gives the same counts for odd and power-of-two batch sizes (checked for A <= 40,
    // b <= 40 against torch 1.13); for other even sizes a float32 value can fall just
    // below an exact .5 and round the other way (e.g. A = 11, b = 18, k = 1).
    const auto v = static_cast<int64_t>(std::nearbyint(static_cast<double>(k) + i * step));
    x[i] = ((v - 1) % answer_len) + 1;
  }
  return x;
}

double log_likelihood(const Model& m, std::span<const int32_t> prompt,
                      std::span<const int32_t> answer, const LikelihoodOptions& o) {
  const int64_t p = static_cast<int64_t>(prompt.size()), a = static_cast<int64_t>(answer.size());
  if (a == 0) fail("likelihood: the answer is empty");
  if (o.batch_size <= 0 || o.mc_num <= 0 || o.mc_num % o.batch_size != 0) {
    fail("likelihood: `mc_num` (", o.mc_num, ") must be a positive multiple of `batch_size` (",
         o.batch_size, ")");
  }
  check_ids(m, prompt, "prompt");
  check_ids(m, answer, "answer");
  if (!(o.cfg_scale >= 0) || !std::isfinite(o.cfg_scale)) fail("likelihood: `cfg_scale` (", o.cfg_scale, ") must be a finite number >= 0");
  const int32_t mask = m.config().mask_token_id;
  const int64_t vocab = m.config().embedding_size, b = o.batch_size, len = p + a;
  const int64_t seq = len + (o.append_eos ? 1 : 0);  // the model input of one sample
  const bool cfg = o.cfg_scale > 0;
  ForwardState st;
  std::vector<int32_t> ids, cu, rows, targets, perm(static_cast<size_t>(a));
  std::vector<double> weight;  // A / x_i per masked row
  std::vector<float> logits;
  double total = 0.0;
  const int64_t n_batches = o.mc_num / b;
  for (int64_t j = 0; j < n_batches; ++j) {
    Rng rng(o.seed, static_cast<uint64_t>(j));
    const int64_t k = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(a)));
    const auto counts = stratified_mask_counts(k, a, b);
    ids.clear();
    cu.assign(1, 0);
    rows.clear();
    targets.clear();
    weight.clear();
    for (int64_t i = 0; i < b; ++i) {
      // A uniformly random set of counts[i] answer positions (Fisher-Yates on this sample's
      // own stream).
      std::iota(perm.begin(), perm.end(), 0);
      Rng prng(o.seed, (static_cast<uint64_t>(j) << 24) ^ (static_cast<uint64_t>(i) + 1) ^ (1ull << 62));
      for (int64_t t = a - 1; t > 0; --t) std::swap(perm[t], perm[prng.below(static_cast<uint64_t>(t + 1))]);
      const int32_t base = cu.back();
      ids.insert(ids.end(), prompt.begin(), prompt.end());
      ids.insert(ids.end(), answer.begin(), answer.end());
      for (int64_t t = 0; t < counts[i]; ++t) {
        const int64_t pos = p + perm[t];
        ids[base + pos] = mask;
      }
      for (int64_t pos = p; pos < len; ++pos) {
        if (ids[base + pos] == mask) {
          rows.push_back(static_cast<int32_t>(base + pos));
          targets.push_back(answer[pos - p]);
          weight.push_back(static_cast<double>(a) / counts[i]);
        }
      }
      if (o.append_eos) ids.push_back(m.config().eos_token_id);
      cu.push_back(static_cast<int32_t>(base + seq));
    }
    const size_t cond_rows = rows.size();
    if (cfg) {  // unconditional twins: the same noisy sequences with the prompt masked too
      for (int64_t i = 0; i < b; ++i) {
        const int32_t src = cu[i], base = cu.back();
        ids.insert(ids.end(), ids.begin() + src, ids.begin() + src + seq);
        std::fill(ids.begin() + base, ids.begin() + base + p, mask);
        cu.push_back(static_cast<int32_t>(base + seq));
      }
      const int32_t shift = cu[b];
      for (size_t r = 0; r < cond_rows; ++r) rows.push_back(rows[r] + shift);
    }
    logits.resize(rows.size() * vocab);
    m.forward({.ids = ids, .cu_seqlens = cu, .logit_rows = rows}, st, logits);
    if (cfg) apply_cfg(logits, cond_rows * vocab, o.cfg_scale);
    double loss = 0.0;
    for (size_t r = 0; r < cond_rows; ++r) {
      loss += -log_prob(logits.data() + r * vocab, vocab, targets[r]) * weight[r];
    }
    total += loss / static_cast<double>(b);
    if (o.on_batch) o.on_batch();
  }
  return -total / static_cast<double>(n_batches);
}

std::vector<ConfidenceScore> confidence_scores(const Model& m, std::span<const int32_t> prompt,
                                               const std::vector<std::vector<int32_t>>& answers,
                                               const ConfidenceOptions& o) {
  const int32_t mask = m.config().mask_token_id;
  const int64_t vocab = m.config().embedding_size, p = static_cast<int64_t>(prompt.size());
  if (!(o.cfg_scale >= 0) || !std::isfinite(o.cfg_scale)) fail("confidence score: `cfg_scale` (", o.cfg_scale, ") must be a finite number >= 0");
  const bool cfg = o.cfg_scale > 0;
  check_ids(m, prompt, "prompt");
  std::vector<std::vector<int32_t>> canvas;
  for (const auto& ans : answers) {
    if (ans.empty()) fail("confidence score: an answer is empty");
    check_ids(m, ans, "answer");
    canvas.emplace_back(prompt.begin(), prompt.end());
    canvas.back().resize(prompt.size() + ans.size(), mask);
    if (o.append_eos) canvas.back().push_back(m.config().eos_token_id);
  }
  std::vector<ConfidenceScore> out(answers.size());
  ForwardState st;
  std::vector<int32_t> ids, cu, rows;
  std::vector<std::pair<size_t, int64_t>> owner;  // (choice, answer position) per logit row
  std::vector<size_t> stepping;
  std::vector<float> logits;
  for (;;) {
    ids.clear();
    cu.assign(1, 0);
    rows.clear();
    owner.clear();
    stepping.clear();
    for (size_t c = 0; c < answers.size(); ++c) {
      const int64_t a = static_cast<int64_t>(answers[c].size());
      bool any = false;
      for (int64_t i = 0; i < a; ++i) {
        if (canvas[c][p + i] == mask && answers[c][i] != mask) any = true;
      }
      if (!any || out[c].forward_passes >= a) continue;
      stepping.push_back(c);
      const int32_t base = cu.back();
      ids.insert(ids.end(), canvas[c].begin(), canvas[c].end());
      cu.push_back(static_cast<int32_t>(base + canvas[c].size()));
      for (int64_t i = 0; i < a; ++i) {
        if (canvas[c][p + i] == mask) {
          rows.push_back(static_cast<int32_t>(base + p + i));
          owner.push_back({c, i});
        }
      }
      ++out[c].forward_passes;
    }
    if (rows.empty()) break;
    const size_t cond_rows = rows.size();
    if (cfg) {  // unconditional twins: the same canvases with the prompt masked
      size_t r = 0;
      for (size_t c : stepping) {
        const int32_t base = cu.back();
        ids.insert(ids.end(), canvas[c].begin(), canvas[c].end());
        std::fill(ids.begin() + base, ids.begin() + base + p, mask);
        cu.push_back(static_cast<int32_t>(base + canvas[c].size()));
        for (; r < cond_rows && owner[r].first == c; ++r) rows.push_back(static_cast<int32_t>(base + p + owner[r].second));
      }
    }
    logits.resize(rows.size() * vocab);
    m.forward({.ids = ids, .cu_seqlens = cu, .logit_rows = rows}, st, logits);
    if (cfg) apply_cfg(logits, cond_rows * vocab, o.cfg_scale);
    // Per choice: the still-masked position whose own token is most probable (lowest index on
    // ties) is unmasked and its log-probability added.
    std::vector<std::pair<double, int64_t>> best(answers.size(), {-INFINITY, -1});
    for (size_t r = 0; r < cond_rows; ++r) {
      const auto [c, i] = owner[r];
      const double lp = log_prob(logits.data() + r * vocab, vocab, answers[c][i]);
      if (best[c].second < 0 || lp > best[c].first) best[c] = {lp, i};
    }
    for (size_t c = 0; c < answers.size(); ++c) {
      if (best[c].second < 0) continue;
      out[c].sum += best[c].first;
      canvas[c][p + best[c].second] = answers[c][best[c].second];
    }
  }
  for (size_t c = 0; c < answers.size(); ++c) {
    out[c].normalized = out[c].sum / static_cast<double>(answers[c].size());
  }
  return out;
}

}  // namespace illada
