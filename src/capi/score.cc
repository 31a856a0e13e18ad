// illada_score / illada_score_text (multiple choice by confidence or Monte-Carlo likelihood, as
// `illada score`) and illada_logits (one forward pass).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "capi/handles.h"
#include "capi/text.h"
#include "eval/harness.h"
#include "score/score.h"
#include "tokenizer/chat_template.h"

namespace illada::capi {
namespace {

constexpr int64_t kMaxMcSamples = int64_t{1} << 16;  // as the CLI's limit

void check_params(const illada_score_params& p) {
  if (p.method != ILLADA_SCORE_CONFIDENCE && p.method != ILLADA_SCORE_LIKELIHOOD) {
    fail("method ", static_cast<int>(p.method), " is not ILLADA_SCORE_CONFIDENCE (0) or ILLADA_SCORE_LIKELIHOOD (1)");
  }
  if (!std::isfinite(p.cfg_scale) || p.cfg_scale < 0) fail("cfg_scale (", p.cfg_scale, ") must be a finite number >= 0");
  if (p.method == ILLADA_SCORE_LIKELIHOOD) {
    if (p.mc_num < 1 || p.mc_num > kMaxMcSamples) fail("mc_num (", p.mc_num, ") must be in [1, ", kMaxMcSamples, "]");
    if (p.mc_batch_size < 0 || p.mc_batch_size > kMaxMcSamples) {
      fail("mc_batch_size (", p.mc_batch_size, ") must be in [0, ", kMaxMcSamples, "] (0: derived)");
    }
    if (p.mc_batch_size > 0 && p.mc_num % p.mc_batch_size != 0) {
      fail("mc_num (", p.mc_num, ") must be a multiple of mc_batch_size (", p.mc_batch_size, ")");
    }
  }
}

// The largest divisor of mc_num up to 16 unless given (as `illada score`).
int64_t batch_size_of(const illada_score_params& p) {
  if (p.mc_batch_size > 0) return p.mc_batch_size;
  for (int64_t b = std::min<int64_t>(16, p.mc_num); b > 1; --b) {
    if (p.mc_num % b == 0) return b;
  }
  return 1;
}

// Scores choice c of `answers` after prompts[c] (all prompts equal: the confidence rule packs
// the choices into shared forward passes).
void score_all(illada_context& ctx, const std::vector<std::vector<int32_t>>& prompts,
               const std::vector<std::vector<int32_t>>& answers, const illada_score_params& p, double* scores) {
  const Model& model = ctx.model->model;
  const int64_t context = model.config().max_sequence_length;
  for (size_t c = 0; c < answers.size(); ++c) {
    if (answers[c].empty()) fail("choice ", c, " is empty (it encodes to no tokens)");
    const size_t n_ids = prompts[c].size() + answers[c].size() + (p.append_eos ? 1 : 0);
    if (static_cast<int64_t>(n_ids) > context) {
      fail("the prompt and choice ", c, " take ", n_ids, " tokens, more than the model's context of ", context,
           " (max_sequence_length)");
    }
  }
  std::vector<double> out;
  if (p.method == ILLADA_SCORE_CONFIDENCE) {
    const ConfidenceOptions co{.cfg_scale = p.cfg_scale, .append_eos = p.append_eos != 0};
    const bool shared = std::all_of(prompts.begin(), prompts.end(), [&](const auto& q) { return q == prompts[0]; });
    std::vector<ConfidenceScore> cs;
    if (shared) {
      cs = confidence_scores(model, prompts[0], answers, co);
    } else {
      for (size_t c = 0; c < answers.size(); ++c) cs.push_back(confidence_scores(model, prompts[c], {answers[c]}, co)[0]);
    }
    for (const auto& s : cs) out.push_back(p.normalize ? s.normalized : s.sum);
  } else {
    LikelihoodOptions lo{.mc_num = p.mc_num, .batch_size = batch_size_of(p), .cfg_scale = p.cfg_scale,
                         .append_eos = p.append_eos != 0, .seed = p.seed};
    const int64_t total = lo.mc_num / lo.batch_size * static_cast<int64_t>(answers.size());
    int64_t done = 0;
    if (p.progress_callback) {
      lo.on_batch = [&] {
        if (p.progress_callback(++done, total, p.progress_user_data) != 0) {
          throw ApiError(ILLADA_ERROR_CANCELLED, "cancelled by the progress callback");
        }
      };
    }
    for (size_t c = 0; c < answers.size(); ++c) out.push_back(log_likelihood(model, prompts[c], answers[c], lo));
  }
  for (size_t c = 0; c < out.size(); ++c) {
    if (!std::isfinite(out[c])) fail("the score of choice ", c, " is not finite (", out[c], ")");
  }
  std::copy(out.begin(), out.end(), scores);
}

}  // namespace
}  // namespace illada::capi

using namespace illada;
using namespace illada::capi;

extern "C" {

illada_score_params illada_score_default_params(void) {
  illada_score_params p;
  std::memset(&p, 0, sizeof p);
  p.method = ILLADA_SCORE_CONFIDENCE;
  p.normalize = 0;
  p.mc_num = 128;
  p.mc_batch_size = 0;
  p.cfg_scale = 0.0;
  p.append_eos = 0;
  p.add_bos = 0;
  p.seed = 0;
  p.progress_callback = nullptr;
  p.progress_user_data = nullptr;
  return p;
}

illada_status illada_score(illada_context* ctx, illada_tokens prompt, const illada_tokens* choices, size_t n_choices,
                           const illada_score_params* params, double* scores) {
  return run(ctx, "illada_score", [&] {
    need(scores, "scores");
    if (n_choices == 0) fail("no choice given (n_choices is 0)");
    need(choices, "choices");
    const illada_score_params p = params ? *params : illada_score_default_params();
    check_params(p);
    if (p.add_bos) fail("add_bos applies to text prompts (illada_score_text); with ids, put the BOS id in the prompt");
    const auto pr = ids_of(prompt.ids, prompt.n_ids, "prompt");
    std::vector<std::vector<int32_t>> prompts, answers;
    for (size_t c = 0; c < n_choices; ++c) {
      const auto a = ids_of(choices[c].ids, choices[c].n_ids, str_cat("choices[", c, "]").c_str());
      answers.emplace_back(a.begin(), a.end());
      prompts.emplace_back(pr.begin(), pr.end());
    }
    score_all(*ctx, prompts, answers, p, scores);
  });
}

illada_status illada_score_text(illada_context* ctx, const char* prompt, const char* const* choices, size_t n_choices,
                                const illada_prompt_params* prompt_params, const illada_score_params* params,
                                double* scores) {
  return run(ctx, "illada_score_text", [&] {
    need(prompt, "prompt");
    need(scores, "scores");
    if (n_choices == 0) fail("no choice given (n_choices is 0)");
    need(choices, "choices");
    const illada_score_params p = params ? *params : illada_score_default_params();
    check_params(p);
    const illada_prompt_params pp = prompt_params ? *prompt_params : illada_prompt_default_params();
    const auto& tok = need_tokenizer(*ctx->model);
    // As `illada score --prompt P --choices ...`: a chat prompt is the rendered template and
    // each choice encoded alone; a plain one is split into context and " choice" continuation.
    std::vector<int32_t> chat_ids;
    if (pp.chat) chat_ids = encode_prompt(*ctx->model, prompt, pp);
    std::vector<std::vector<int32_t>> prompts, answers;
    for (size_t c = 0; c < n_choices; ++c) {
      const char* choice = need(choices[c], "a choice");
      std::vector<int32_t> context, continuation;
      if (pp.chat) {
        context = chat_ids;
        continuation = tok.encode(choice, false);
      } else {
        eval::split_context_continuation(tok, prompt, std::string(" ") + choice, p.add_bos != 0, context,
                                         continuation);
      }
      if (continuation.empty()) fail("choice ", c, " ('", choice, "') encodes to no tokens");
      prompts.push_back(std::move(context));
      answers.push_back(std::move(continuation));
    }
    score_all(*ctx, prompts, answers, p, scores);
  });
}

illada_status illada_logits(illada_context* ctx, const illada_token* ids, size_t n_ids, float* logits,
                            size_t capacity) {
  return run(ctx, "illada_logits", [&] {
    if (n_ids == 0) fail("no token given (n_ids is 0)");
    const auto in = ids_of(ids, n_ids, "illada_logits");
    need(logits, "logits");
    const Model& model = ctx->model->model;
    const auto vocab = static_cast<size_t>(model.config().embedding_size);
    if (capacity / vocab < n_ids) {
      fail("capacity (", capacity, " floats) is less than n_ids * n_vocab = ", n_ids, " * ", vocab);
    }
    model.forward({.ids = in}, ctx->forward_state, std::span<float>(logits, n_ids * vocab));
  });
}

}  // extern "C"
