// illada_generate: the C options struct checked field by field (errors name the field), the
// lengths it leaves unset derived as `illada generate` derives them, the stops the model's
// tokenizer implies, and the step callback that can cancel one request of the batch.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "capi/handles.h"
#include "capi/text.h"
#include "sample/generate.h"
#include "sample/lengths.h"

namespace illada::capi {
namespace {

constexpr int64_t kMaxTokens = int64_t{1} << 20;  // as the CLI's limit on token counts

void check_count(int64_t v, const char* field) {
  if (v < 0 || v > kMaxTokens) {
    fail("`", field, "` (", v, ") must be in [0, ", kMaxTokens, "] (0: derived)");
  }
}

// The library's rule (sample/lengths.h), 0 meaning unset: the rule of `illada generate`.
AnswerLengths derive_lengths(const illada_generate_params& p, int64_t longest_prompt, int64_t context) {
  check_count(p.gen_length, "gen_length");
  check_count(p.block_length, "block_length");
  check_count(p.steps, "steps");
  auto given = [](int64_t v) { return v > 0 ? std::optional<int64_t>(v) : std::nullopt; };
  return illada::derive_lengths({.length = given(p.gen_length),
                                 .block_length = given(p.block_length),
                                 .steps = given(p.steps),
                                 .variable_length = p.variable_length != 0},
                                kDefaultGenLength, longest_prompt, context);
}

Remasking remasking_of(illada_remasking r) {
  switch (r) {
    case ILLADA_REMASKING_LOW_CONFIDENCE: return Remasking::kLowConfidence;
    case ILLADA_REMASKING_RANDOM: return Remasking::kRandom;
    case ILLADA_REMASKING_MARGIN: return Remasking::kMargin;
    case ILLADA_REMASKING_ENTROPY: return Remasking::kEntropy;
  }
  fail("remasking ", static_cast<int>(r), " is not one of ILLADA_REMASKING_* (0..3)");
}

CacheMode cache_of(illada_cache c) {
  switch (c) {
    case ILLADA_CACHE_NONE: return CacheMode::kNone;
    case ILLADA_CACHE_PREFIX: return CacheMode::kPrefix;
    case ILLADA_CACHE_DUAL: return CacheMode::kDual;
  }
  fail("cache ", static_cast<int>(c), " is not one of ILLADA_CACHE_* (0..2)");
}

void check_finite(double v, double lo, const char* field) {
  if (!std::isfinite(v) || v < lo) fail(field, " (", v, ") must be a finite number >= ", lo);
}

// GenerateOptions from the C params, the derived lengths and the model's tokenizer (as the
// CLI's sampling_options: with a tokenizer the answer ends at the EOS text, <|eot_id|> when the
// vocabulary has it and the given stop strings, searched in the decoded answer; without, at the
// EOS id).
GenerateOptions options_of(const illada_generate_params& p, const AnswerLengths& len, const illada_model& m) {
  check_finite(p.temperature, 0, "temperature");
  check_finite(p.cfg_scale, 0, "cfg_scale");
  check_finite(p.end_think_boost, 0, "end_think_boost");
  if (!std::isfinite(p.end_think_power)) fail("end_think_power (", p.end_think_power, ") must be a finite number");
  if (std::isnan(p.threshold) || p.threshold > 1) fail("threshold (", p.threshold, ") must be in [0, 1] (< 0: off)");
  if (std::isnan(p.factor) || std::isinf(p.factor)) fail("factor (", p.factor, ") must be a finite number (<= 0: off)");
  if (p.n_stop_strings > 0) need(p.stop_strings, "stop_strings");
  if (p.n_stop_tokens > 0) need(p.stop_tokens, "stop_tokens");
  const ModelConfig& c = m.model.config();
  GenerateOptions o{.gen_length = len.length,
                    .block_length = len.block_length,
                    .steps = len.steps,
                    .temperature = p.temperature,
                    .remasking = remasking_of(p.remasking),
                    .cfg_scale = p.cfg_scale,
                    .logits_eos_inf = p.logits_eos_inf != 0,
                    .confidence_eos_eot_inf = p.confidence_eos_eot_inf != 0,
                    .variable_length = p.variable_length != 0,
                    .max_length = p.variable_length ? len.length : 0,
                    .end_think_boost = p.end_think_boost,
                    .end_think_power = p.end_think_power,
                    .cache = cache_of(p.cache),
                    .allow_mask_prediction = p.allow_mask_prediction != 0,
                    .seed = p.seed};
  if (p.threshold >= 0) o.threshold = p.threshold;
  if (p.factor > 0) o.factor = p.factor;
  for (size_t i = 0; i < p.n_stop_tokens; ++i) {
    if (p.stop_tokens[i] < 0 || p.stop_tokens[i] >= c.embedding_size) {
      fail("stop_tokens[", i, "] (", p.stop_tokens[i], ") is outside the vocabulary [0, ", c.embedding_size, ")");
    }
  }
  if (!m.tokenizer) {
    if (p.n_stop_strings > 0) need_tokenizer(m, "stop_strings");
    if (p.end_think_boost > 0) need_tokenizer(m, "end_think_boost");
    o.stop_tokens.push_back(c.eos_token_id);
    o.stop_tokens.insert(o.stop_tokens.end(), p.stop_tokens, p.stop_tokens + p.n_stop_tokens);
    return o;
  }
  const tokenizer::Tokenizer* tok = &*m.tokenizer;
  o.detokenize = [tok](std::span<const int32_t> ids) { return tok->decode(ids, false); };
  o.stop_strings.push_back(tok->decode(std::span<const int32_t>(&c.eos_token_id, 1), false));
  const int32_t eot = tok->token_to_id("<|eot_id|>");
  o.eot_token_id = eot;
  if (eot >= 0) o.stop_strings.push_back("<|eot_id|>");
  for (size_t i = 0; i < p.n_stop_strings; ++i) {
    o.stop_strings.push_back(need(p.stop_strings[i], "a stop string"));
  }
  o.stop_tokens.assign(p.stop_tokens, p.stop_tokens + p.n_stop_tokens);
  if (p.end_think_boost > 0) o.end_think_ids = tok->encode(p.end_think_text ? p.end_think_text : "</think>", false);
  return o;
}

void clear_one(illada_generation& g) {
  std::free(g.ids);
  std::free(g.text);
  std::memset(&g, 0, sizeof g);
}

}  // namespace
}  // namespace illada::capi

using namespace illada;
using namespace illada::capi;

extern "C" {

illada_generate_params illada_generate_default_params(void) {
  illada_generate_params p;
  std::memset(&p, 0, sizeof p);
  p.gen_length = 0;
  p.block_length = 0;
  p.steps = 0;
  p.temperature = 0.0;
  p.remasking = ILLADA_REMASKING_LOW_CONFIDENCE;
  p.cfg_scale = 0.0;
  p.variable_length = 0;
  p.end_think_boost = 0.0;
  p.end_think_power = 2.0;
  p.end_think_text = nullptr;
  p.threshold = -1.0;
  p.factor = 0.0;
  p.cache = ILLADA_CACHE_NONE;
  p.seed = 0;
  p.step_callback = nullptr;
  p.step_user_data = nullptr;
  return p;
}

illada_status illada_generate(illada_context* ctx, const illada_tokens* prompts, size_t n_prompts,
                              const illada_generate_params* params, illada_generation* results) {
  return run(ctx, "illada_generate", [&] {
    need(results, "results");
    for (size_t i = 0; i < n_prompts; ++i) std::memset(&results[i], 0, sizeof results[i]);
    if (n_prompts == 0) fail("no prompt given (n_prompts is 0)");
    need(prompts, "prompts");
    const illada_generate_params p = params ? *params : illada_generate_default_params();
    const illada_model& m = *ctx->model;
    std::vector<std::vector<int32_t>> batch;
    int64_t longest = 0;
    for (size_t i = 0; i < n_prompts; ++i) {
      const auto ids = ids_of(prompts[i].ids, prompts[i].n_ids, str_cat("prompts[", i, "]").c_str());
      batch.emplace_back(ids.begin(), ids.end());
      longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
    }
    const AnswerLengths len = derive_lengths(p, longest, m.model.config().max_sequence_length);
    GenerateOptions o = options_of(p, len, m);
    if (len.steps > len.length) {
      log(*ctx, ILLADA_LOG_WARN,
          str_cat("steps ", len.steps, " is more than the ", len.length,
                  " tokens to generate; a step that would commit no token is skipped"));
    }
    // The callback's answer cancels its request before that request's next step.
    std::vector<char> cancelled(n_prompts, 0);
    if (p.step_callback) {
      o.on_step = [&](const StepInfo& s) {
        const illada_step step{.request = static_cast<size_t>(s.request),
                               .block = s.block,
                               .step = s.step,
                               .canvas = s.canvas.data(),
                               .canvas_length = s.canvas.size(),
                               .prompt_length = static_cast<size_t>(s.prompt_length),
                               .committed = s.committed.data(),
                               .n_committed = s.committed.size()};
        if (p.step_callback(&step, p.step_user_data) != 0) cancelled[static_cast<size_t>(s.request)] = 1;
      };
      o.cancelled = [&](int64_t r) { return cancelled[static_cast<size_t>(r)] != 0; };
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = generate(m.model, batch, o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<illada_generation> filled(out.size());
    try {
      for (size_t i = 0; i < out.size(); ++i) {
        illada_generation& g = filled[i];
        std::memset(&g, 0, sizeof g);
        g.ids = malloc_ids(out[i].ids);
        g.n_ids = out[i].ids.size();
        g.answer_length = out[i].answer_length;
        if (m.tokenizer) {
          g.text = malloc_string(out[i].text);
          g.text_length = out[i].text.size();
        }
        g.nfe = out[i].nfe;
        g.stopped = out[i].stopped ? 1 : 0;
        g.cancelled = out[i].cancelled ? 1 : 0;
      }
    } catch (...) {
      for (auto& g : filled) clear_one(g);
      throw;
    }
    std::memcpy(results, filled.data(), filled.size() * sizeof(illada_generation));
    log(*ctx, ILLADA_LOG_INFO,
        str_cat("generated ", n_prompts, " answer(s) of up to ", len.length, " tokens (block ", len.block_length, ", ",
                len.steps, " steps", p.variable_length ? " per block, variable length" : "", "): ", out[0].nfe,
                " forward passes, ", secs, " s"));
  });
}

void illada_generation_clear(illada_generation* results, size_t n_results) {
  if (results == nullptr) return;
  for (size_t i = 0; i < n_results; ++i) clear_one(results[i]);
}

}  // extern "C"
