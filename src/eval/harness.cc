// Evaluation loop: one example at a time, each multiple-choice question's choices scored
// together, results streamed to the caller (per-example JSONL, progress).
#include "eval/harness.h"

#include <algorithm>
#include <cmath>

#include "tokenizer/chat_template.h"
#include "util/check.h"

namespace illada::eval {

McMethod parse_mc_method(const std::string& s) {
  if (s == "likelihood") return McMethod::kLikelihood;
  if (s == "confidence") return McMethod::kConfidence;
  fail("--method: unknown scoring rule '", s, "' (expected likelihood or confidence)");
}

const char* mc_method_name(McMethod m) {
  return m == McMethod::kLikelihood ? "likelihood" : "confidence";
}

void split_context_continuation(const tokenizer::Tokenizer& tok, const std::string& context,
                                const std::string& continuation, std::vector<int32_t>& ctx_ids,
                                std::vector<int32_t>& cont_ids) {
  std::string ctx = context, cont = continuation;
  size_t n_spaces = 0;
  while (n_spaces < ctx.size() && ctx[ctx.size() - 1 - n_spaces] == ' ') ++n_spaces;
  if (n_spaces > 0) {
    cont = ctx.substr(ctx.size() - n_spaces) + cont;
    ctx.resize(ctx.size() - n_spaces);
  }
  ctx_ids = tok.encode(ctx, true);
  const std::vector<int32_t> whole = tok.encode(ctx + cont, true);
  if (whole.size() > ctx_ids.size() && std::equal(ctx_ids.begin(), ctx_ids.end(), whole.begin())) {
    cont_ids.assign(whole.begin() + ctx_ids.size(), whole.end());
  } else {  // the boundary merged into one token: encode the continuation on its own
    cont_ids = tok.encode(cont, false);
  }
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
  std::vector<int32_t> stops = o.generation.stop_tokens;
  if (stops.empty()) stops.push_back(model.config().eos_token_id);

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
          split_context_continuation(tok, ctx, task.header.target_delimiter + choice, ctx_ids, cont_ids);
        }
        if (cont_ids.empty()) r.skipped = str_cat("choice '", choice, "' encodes to no tokens");
        if (r.skipped.empty() && static_cast<int64_t>(ctx_ids.size() + cont_ids.size()) > context) {
          r.skipped = str_cat("context and choice ", answers.size(), " take ", ctx_ids.size() + cont_ids.size(),
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
          sc = confidence_scores(model, prompts[0], answers);  // all choices packed together
        } else {  // the context/choice boundary merged differently for some choice
          for (size_t c = 0; c < answers.size(); ++c) {
            sc.push_back(confidence_scores(model, prompts[c], {answers[c]})[0]);
          }
        }
        for (const auto& c : sc) {
          r.scores.push_back(o.length_normalized ? c.normalized : c.sum);
          r.nfe += c.forward_passes;
        }
      } else {
        for (size_t c = 0; c < answers.size(); ++c) {
          r.scores.push_back(log_likelihood(model, prompts[c], answers[c], o.likelihood));
          r.nfe += o.likelihood.mc_num / o.likelihood.batch_size;
        }
      }
      r.predicted = std::max_element(r.scores.begin(), r.scores.end()) - r.scores.begin();
      r.correct = r.predicted == e.gold;
    } else {
      const std::string text = full_context(task.header, e.prompt);
      const std::vector<int32_t> prompt = o.chat ? chat_prompt(text) : tok.encode(text, true);
      const GenerateOptions& g = o.generation;
      const int64_t answer = g.variable_length && g.max_length > 0 ? g.max_length : g.gen_length;
      if (static_cast<int64_t>(prompt.size()) + answer > context) {
        skip(r, str_cat("the prompt (", prompt.size(), " tokens) and ", answer,
                        " generated tokens exceed the model's context of ", context));
        continue;
      }
      const auto res = generate(model, {prompt}, o.generation);
      auto end = std::find_first_of(res[0].ids.begin(), res[0].ids.end(), stops.begin(), stops.end());
      r.generated = tok.decode(std::span<const int32_t>(res[0].ids.data(), end - res[0].ids.begin()), true);
      r.generated_tokens = end - res[0].ids.begin();
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
