// Evaluation loop: one example at a time, each multiple-choice question's choices scored
// together, results streamed to the caller (per-example JSONL, progress).
#include "eval/harness.h"

#include <algorithm>
#include <cmath>

#include "model/special_tokens.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::eval {

McMethod parse_mc_method(const std::string& s) {
  if (s == "likelihood") return McMethod::kLikelihood;
  if (s == "confidence") return McMethod::kConfidence;
  fail("`method`: unknown scoring rule '", s, "' (expected likelihood or confidence)");
}

const char* mc_method_name(McMethod m) {
  return m == McMethod::kLikelihood ? "likelihood" : "confidence";
}

int32_t bos_to_add(const tokenizer::Tokenizer& tok) {
  const int32_t bos = tok.config().bos_id;
  if (bos < 0) fail("add_bos: the tokenizer has no BOS token (tokenizer_config.json bos_token)");
  const std::vector<int32_t> probe = tok.encode("a", true);
  return !probe.empty() && probe.front() == bos ? -1 : bos;
}

void split_context_continuation(const tokenizer::Tokenizer& tok, const std::string& context,
                                const std::string& continuation, bool add_bos,
                                std::vector<int32_t>& ctx_ids, std::vector<int32_t>& cont_ids) {
  std::string ctx = context, cont = continuation;
  if (add_bos && bos_to_add(tok) >= 0) ctx = *tok.config().bos_token + ctx;
  const size_t kept = tokenizer::strip_if(ctx, tokenizer::is_python_space, false, true).size();
  if (kept < ctx.size()) {
    cont = ctx.substr(kept) + cont;
    ctx.resize(kept);
  }
  ctx_ids = tok.encode(ctx, true);
  const std::vector<int32_t> whole = tok.encode(ctx + cont, true);
  cont_ids.assign(whole.begin() + std::min(whole.size(), ctx_ids.size()), whole.end());
}

EvalSummary evaluate(const Model& model, const tokenizer::Tokenizer& tok, const TaskFile& task,
                     const EvalOptions& o,
                     const std::function<void(const ExampleResult&)>& on_result) {
  std::optional<tokenizer::ChatTemplate> tmpl;
  if (o.chat) tmpl = tokenizer::ChatTemplate::from_config(tok.config(), o.chat_template);
  auto chat_prompt = [&](const std::string& user) {
    std::vector<tokenizer::ChatMessage> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    msgs.push_back({"user", user});
    return tok.encode(tmpl->render(msgs, {.bos_token = tok.config().bos_token.value_or("")}), false);
  };
  const bool add_bos = o.add_bos || task.header.add_bos;
  const bool append_eos = o.append_eos || task.header.append_eos;
  const int32_t bos = add_bos ? bos_to_add(tok) : -1;
  const std::string eos_text = model_special_tokens(model.config(), &tok).eos_text;  // checks they agree
  LikelihoodOptions lo = o.likelihood;
  lo.append_eos = lo.append_eos || append_eos;
  const ConfidenceOptions co{.cfg_scale = o.likelihood.cfg_scale, .append_eos = lo.append_eos};

  EvalSummary s;
  s.skipped = static_cast<int64_t>(task.errors.size());
  const int64_t total = o.limit > 0 ? std::min<int64_t>(o.limit, task.examples.size())
                                    : static_cast<int64_t>(task.examples.size());
  const int64_t context = model.config().max_sequence_length;
  auto skip = [&](ExampleResult& r, std::string why) {
    r.skipped = str_cat("line ", r.example->line, ": ", why);
    ++s.too_long;
    on_result(r);
  };
  for (int64_t i = 0; i < total; ++i) {
    const Example& e = task.examples[i];
    ExampleResult r{.example = &e};
    if (e.kind == ExampleKind::kMultipleChoice) {
      const std::string ctx = full_context(task.header, e.context);
      std::vector<std::vector<int32_t>> prompts, answers;
      for (const auto& choice : e.choices) {
        std::vector<int32_t> ctx_ids, cont_ids;
        if (o.chat) {
          ctx_ids = chat_prompt(ctx);
          cont_ids = tok.encode(choice, false);
        } else {
          split_context_continuation(tok, ctx, task.header.target_delimiter + choice, add_bos, ctx_ids, cont_ids);
        }
        if (cont_ids.empty()) r.skipped = str_cat("choice '", choice, "' encodes to no tokens");
        const size_t n_ids = ctx_ids.size() + cont_ids.size() + (lo.append_eos ? 1 : 0);
        if (r.skipped.empty() && static_cast<int64_t>(n_ids) > context) {
          r.skipped = str_cat("context and choice ", answers.size(), " take ", n_ids,
                              " tokens, more than the model's context of ", context);
        }
        prompts.push_back(std::move(ctx_ids));
        answers.push_back(std::move(cont_ids));
      }
      if (!r.skipped.empty()) {
        skip(r, r.skipped);
        continue;
      }
      const bool shared = std::all_of(prompts.begin(), prompts.end(),
                                      [&](const auto& p) { return p == prompts[0]; });
      if (o.method == McMethod::kConfidence) {
        std::vector<ConfidenceScore> sc;
        if (shared) {
          sc = confidence_scores(model, prompts[0], answers, co);  // all choices packed together
        } else {  // the context/choice boundary merged differently for some choice
          for (size_t c = 0; c < answers.size(); ++c) {
            sc.push_back(confidence_scores(model, prompts[c], {answers[c]}, co)[0]);
          }
        }
        for (const auto& c : sc) {
          r.scores.push_back(o.length_normalized ? c.normalized : c.sum);
          r.nfe += c.forward_passes;
        }
      } else {
        for (size_t c = 0; c < answers.size(); ++c) {
          r.scores.push_back(log_likelihood(model, prompts[c], answers[c], lo));
          r.nfe += lo.mc_num / lo.batch_size;
        }
      }
      r.predicted = std::max_element(r.scores.begin(), r.scores.end()) - r.scores.begin();
      r.correct = r.predicted == e.gold;
    } else {
      const std::string text = full_context(task.header, e.prompt);
      std::vector<int32_t> prompt = o.chat ? chat_prompt(text) : tok.encode(text, true);
      if (!o.chat && bos >= 0) prompt.insert(prompt.begin(), bos);
      GenerateOptions g = o.generation;
      // eval_illada.py: the length is what fits after the prompt, in whole blocks.
      const int64_t wanted = g.variable_length && g.max_length > 0 ? g.max_length : g.gen_length;
      const int64_t fits = g.block_length > 0
                               ? std::min(wanted, context - static_cast<int64_t>(prompt.size())) /
                                     g.block_length * g.block_length
                               : wanted;
      if (fits <= 0) {
        skip(r, str_cat("the prompt (", prompt.size(), " tokens) leaves no room for one block of ",
                        g.block_length, " tokens in the model's context of ", context));
        continue;
      }
      g.gen_length = fits;
      g.max_length = 0;
      g.stop_tokens.clear();
      g.stop_strings = e.stop;
      if (std::find(g.stop_strings.begin(), g.stop_strings.end(), eos_text) == g.stop_strings.end()) {
        g.stop_strings.push_back(eos_text);
      }
      g.stop_strings.insert(g.stop_strings.end(), o.generation.stop_strings.begin(), o.generation.stop_strings.end());
      g.detokenize = [&tok](std::span<const int32_t> ids) { return tok.decode(ids, false); };
      const auto res = generate(model, {prompt}, g);
      r.generated = res[0].text;
      r.generated_tokens = res[0].answer_length;
      r.nfe = res[0].nfe;
      r.correct = answer_matches(e, r.generated);
    }
    ++s.n;
    s.correct += r.correct;
    s.nfe += r.nfe;
    s.generated_tokens += r.generated_tokens;
    on_result(r);
  }
  if (s.n > 0) {
    s.accuracy = static_cast<double>(s.correct) / s.n;
    s.stderr_ = s.n > 1 ? std::sqrt(s.accuracy * (1 - s.accuracy) / (s.n - 1)) : 0.0;
  }
  return s;
}

}  // namespace illada::eval
