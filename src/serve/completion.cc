// Request planning and answers (completion.h).
#include "serve/completion.h"

#include <algorithm>
#include <regex>

#include "model/special_tokens.h"
#include "sample/lengths.h"
#include "sample/sampler.h"

namespace illada::serve {
namespace {

// The library names its options in backquotes (`steps`); the API's fields are the same words
// in quotes, and the lengths are max_tokens here.
std::string api_words(const std::string& message) {
  static const std::regex option("`([a-z][a-z0-9_]*)`");
  std::string out;
  std::sregex_iterator it(message.begin(), message.end(), option), end;
  size_t last = 0;
  for (; it != end; ++it) {
    out += message.substr(last, it->position() - last);
    std::string name = (*it)[1].str();
    if (name == "gen_length" || name == "max_length") name = "max_tokens";
    out += "'" + name + "'";
    last = it->position() + it->length();
  }
  return out + message.substr(last);
}


}  // namespace

CompletionPlan plan_completion(const CompletionRequest& r, const ServedModel& m) {
  const ModelConfig& c = m.model->config();
  const tokenizer::Tokenizer& tok = *m.tok;
  CompletionPlan plan;
  const std::string prompt_field = r.endpoint == Endpoint::kChat ? "messages" : "prompt";
  if (r.endpoint == Endpoint::kChat) {
    if (!m.chat) {
      throw ApiError(400, "this model has no chat template that illada knows (tokenizer_config.json chat_template): "
                          "start the server with --chat-template NAME, or use /v1/completions", "messages");
    }
    const std::string text = m.chat->render(r.messages, {.bos_token = tok.config().bos_token.value_or("")});
    plan.prompts.push_back(m.encode_text(text, false));
  } else {
    for (size_t i = 0; i < r.prompts.size(); ++i) {
      const PromptInput& in = r.prompts[i];
      const std::string param = r.prompts.size() == 1 ? "prompt" : "prompt[" + std::to_string(i) + "]";
      if (in.is_ids) {
        for (int32_t id : in.ids) {
          if (id >= c.embedding_size) {
            throw ApiError(400, "'" + param + "' has token id " + std::to_string(id) + " outside the vocabulary [0, " +
                                    std::to_string(c.embedding_size) + ")", param);
          }
        }
        plan.prompts.push_back(in.ids);
      } else {
        plan.prompts.push_back(m.encode_text(in.text, true));
      }
      if (plan.prompts.back().empty()) throw ApiError(400, "'" + param + "' encodes to no tokens", param);
    }
  }
  int64_t longest = 0;
  for (const auto& p : plan.prompts) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
    plan.prompt_tokens += static_cast<int64_t>(p.size());
  }
  const int64_t ctx = c.max_sequence_length;
  const int64_t bl = r.block_length.value_or(kDefaultBlockLength);
  const int64_t room = ctx - longest;
  if (room < bl) {
    throw ApiError(400, "the prompt (" + std::to_string(longest) + " tokens) leaves " + std::to_string(std::max<int64_t>(room, 0)) +
                            " tokens of the model's context of " + std::to_string(ctx) +
                            ", less than one block (block_length " + std::to_string(bl) + "): shorten it",
                   prompt_field, "invalid_request_error", "context_length_exceeded");
  }
  GenerateOptions& o = plan.options;
  o.block_length = bl;
  o.variable_length = r.variable_length;
  if (r.variable_length) {
    // var_generate: one block at a time until a stop; the maximum is max_tokens rounded up to
    // whole blocks, and the sampler cuts it to what the context leaves.
    plan.max_tokens = r.max_tokens.value_or(room);
    o.max_length = o.gen_length = (plan.max_tokens + bl - 1) / bl * bl;
    o.steps = r.steps.value_or(bl);
  } else {
    plan.max_tokens = r.max_tokens.value_or(room / bl * bl);
    o.gen_length = (plan.max_tokens + bl - 1) / bl * bl;
    if (longest + o.gen_length > ctx) {
      throw ApiError(400, "max_tokens " + std::to_string(plan.max_tokens) + " (" + std::to_string(o.gen_length) +
                              " tokens in whole blocks of " + std::to_string(bl) + ") plus the prompt (" +
                              std::to_string(longest) + " tokens) exceeds the model's context of " + std::to_string(ctx) +
                              " tokens", "max_tokens", "invalid_request_error", "context_length_exceeded");
    }
    const int64_t blocks = o.gen_length / bl;
    o.steps = r.steps.value_or(o.gen_length);
    if (o.steps % blocks != 0) {
      throw ApiError(400, "'steps' (" + std::to_string(o.steps) + ") must be a multiple of the number of blocks (" +
                              std::to_string(blocks) + ": max_tokens in whole blocks of " + std::to_string(bl) +
                              ") without variable_length", "steps");
    }
  }
  o.temperature = r.temperature;
  o.remasking = parse_remasking(r.remasking);
  o.cfg_scale = r.cfg_scale;
  o.threshold = r.threshold;
  o.factor = r.factor;
  o.cache = parse_cache_mode(r.cache.value_or(r.cfg_scale > 0 ? "none" : "dual"));
  o.seed = r.seed;
  o.batch_invariant = m.batch_invariant;
  // What ends an answer, as `illada generate` with a tokenizer: the EOS text, <|eot_id|> when the
  // tokenizer has it, and the request's stop strings, searched in the decoded answer.
  const tokenizer::Tokenizer* tp = &tok;
  o.detokenize = [tp](std::span<const int32_t> ids) { return tp->decode(ids, false); };
  const SpecialTokens special = model_special_tokens(c, &tok);  // the one owner of EOS/EOT
  o.stop_strings = special.stop_texts();
  o.eot_token_id = special.eot;
  o.stop_strings.insert(o.stop_strings.end(), r.stop.begin(), r.stop.end());
  std::erase_if(o.stop_strings, [](const std::string& s) { return s.empty(); });
  plan.stop_strings = o.stop_strings;
  for (size_t i = 0; i < plan.prompts.size(); ++i) {
    try {
      Sampler::check(*m.model, plan.prompts[i], o, static_cast<int64_t>(i));
    } catch (const Error& e) {
      throw ApiError(400, api_words(e.what()));
    }
  }
  return plan;
}

AnswerText choice_answer(const Job& job, int64_t c, const CompletionPlan& plan, const ServedModel& m) {
  const GenerateResult& res = job.results[static_cast<size_t>(c)];
  const size_t prompt_len = plan.prompts[static_cast<size_t>(c / job.n)].size();
  const std::span<const int32_t> answer(res.canvas.data() + prompt_len, res.canvas.size() - prompt_len);
  const tokenizer::Tokenizer* tp = m.tok;
  return final_answer(answer, res.stopped, res.answer_length, res.text, plan.max_tokens,
                      [tp](std::span<const int32_t> ids) { return tp->decode(ids, false); });
}

TextStream choice_stream(const CompletionPlan& plan, const ServedModel& m) {
  const tokenizer::Tokenizer* tp = m.tok;
  return TextStream([tp](std::span<const int32_t> ids) { return tp->decode(ids, false); }, plan.stop_strings,
                    m.model->config().mask_token_id, plan.max_tokens);
}

}  // namespace illada::serve
