// `illada generate` and `illada chat`: text generation with every sampler of src/sample, on
// token ids or text (tokenizer.json next to the model, or --tokenizer), with chat templates.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/parse_util.h"
#include "cli/sampling.h"
#include "cli/visual.h"
#include "sample/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::cli {
namespace {

struct GenFlags {
  ModelFlags model;
  ChatFlags chat;
  SamplingFlags sampling;
  std::string format = "text";
  std::vector<std::string> prompts, prompt_ids;
  bool visual = false, quiet = false;
};

void add_common_flags(CLI::App* cmd, GenFlags& f, const std::string& length_default, bool with_chat_switch) {
  add_model_flags(cmd, f.model);
  add_sampling_flags(cmd, f.sampling, length_default);
  add_chat_flags(cmd, f.chat, with_chat_switch);
  flag(cmd, "--visual", f.visual, "Show the canvas being denoised live (stderr)");
  add_quiet_flag(cmd, f.quiet);
}

std::vector<int32_t> render_prompt(const ChatFlags& f, const tokenizer::Tokenizer& tok,
                                   std::vector<tokenizer::ChatMessage> messages) {
  if (!f.chat) return tok.encode(messages.back().content, true);
  if (!f.system.empty()) messages.insert(messages.begin(), {"system", f.system});
  const auto tmpl = tokenizer::ChatTemplate::from_config(tok.config(), f.chat_template);
  const std::string text = tmpl.render(messages, {.bos_token = tok.config().bos_token.value_or("")});
  return tok.encode(text, false);
}

// Batch-invariant products (the default) read the packed matrices as chunks (kernels/gemm.h).
Model load_model(const ModelFlags& f, const SamplingFlags& s) {
  return Model::load(f.model, parse_compute_type(f.dtype), /*pack=*/true, f.check_tensors,
                     s.no_batch_invariant ? WeightsLayout::kWhole : WeightsLayout::kChunks);
}

void run_generate(GenFlags& f, const CLI::App* cmd) {
  if (cmd->count("--prompt") == 0 && cmd->count("--prompt-ids") == 0) {
    fail("give --prompt TEXT or --prompt-ids 1,2,3 (the prompt)");
  }
  if (cmd->count("--prompt") > 0 && cmd->count("--prompt-ids") > 0) fail("give --prompt or --prompt-ids, not both");
  if (f.chat.chat && f.prompts.empty()) fail("--chat needs a text prompt (--prompt TEXT)");
  const Model model = load_model(f.model, f.sampling);
  std::optional<tokenizer::Tokenizer> tok;
  if (!f.prompts.empty() || !f.model.tokenizer.empty()) {
    tok = tokenizer::Tokenizer::load(f.model.tokenizer.empty() ? f.model.model : f.model.tokenizer);
  }
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& p : f.prompt_ids) prompts.push_back(parse_id_list(p, "--prompt-ids"));
  for (const auto& p : f.prompts) {
    prompts.push_back(render_prompt(f.chat, *tok, {{"user", p}}));
    if (prompts.back().empty()) fail("--prompt '", p, "' encodes to no tokens (this tokenizer adds no BOS)");
  }
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  const SamplingLengths len = derive_lengths(f.sampling, kDefaultGenLength, longest, model.config().max_sequence_length);
  GenerateOptions o = sampling_options(f.sampling, len, model, tok ? &*tok : nullptr);
  if (len.steps > len.length && !f.quiet) {
    std::fprintf(stderr, "illada: note: --steps %lld is more than the %lld tokens to generate; a step that would "
                 "commit no token is skipped, so at most one step per token runs\n",
                 static_cast<long long>(len.steps), static_cast<long long>(len.length));
  }
  std::optional<CanvasView> view;
  if (f.visual) {
    view.emplace(tok ? &*tok : nullptr, model.config().mask_token_id);
    o.on_step = [&view](const StepInfo& s) { view->draw(s); };
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = generate(model, prompts, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (view) view->finish();
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json j = {{"ids", r.ids}, {"nfe", r.nfe}, {"seconds", secs},
                        {"tokens_per_s", secs > 0 ? r.ids.size() / secs : 0.0}};
    j["stopped"] = r.stopped;
    if (f.sampling.variable_length) j["stopped_at_eos"] = r.stopped;  // older name, kept for scripts
    // The answer cut at its first stop, special tokens kept (the released code's text). JSON
    // needs valid UTF-8; a model can emit any bytes (U+FFFD replaces invalid ones).
    if (tok) j["text"] = tokenizer::utf8_lossy(r.text);
    all.push_back(j);
  }
  if (f.format == "json") {
    std::printf("%s\n", (all.size() == 1 ? all[0] : nlohmann::json{{"results", all}}).dump().c_str());
    return;
  }
  for (const auto& j : all) {
    if (j.contains("text")) {
      std::printf("%s\n", j["text"].get<std::string>().c_str());
    } else {
      std::printf("%s\n", j["ids"].dump().c_str());
    }
  }
  if (!f.quiet) {
    std::fprintf(stderr, "[%lld tokens, %lld steps, %lld forward passes, %.2f s]\n", (long long)len.length,
                 (long long)len.steps, (long long)results[0].nfe, secs);
  }
}

// ---------------------------------------------------------------------------------- chat

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

struct Interrupted {};  // thrown from the step callback: unwinds generate() only

// Reads stdin a line at a time without blocking past a Ctrl-C: the wait is a poll that wakes
// every 100 ms to look at the flag, so a SIGINT that lands just before the wait (after the
// prompt is printed), or on another thread than this one, still ends the read.
class LineReader {
 public:
  enum class Got { kLine, kEof, kInterrupted };
  Got next(std::string& line) {
    for (;;) {
      const size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return Got::kLine;
      }
      if (eof_) {
        if (pending_.empty()) return Got::kEof;
        line = std::move(pending_);  // a last line without a newline
        pending_.clear();
        return Got::kLine;
      }
      if (g_interrupted) return Got::kInterrupted;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR) fail("reading the terminal failed: ", std::strerror(errno));
      if (r <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        fail("reading the terminal failed: ", std::strerror(errno));
      }
      if (n == 0) {
        eof_ = true;
      } else {
        pending_.append(buf, static_cast<size_t>(n));
      }
    }
  }

 private:
  std::string pending_;
  bool eof_ = false;
};

// The answer length of a chat turn and the history that leaves room for it: the oldest turns
// go first (the system message never), and the last message alone may shorten the answer.
struct TurnPlan {
  std::vector<int32_t> prompt;
  int64_t answer = 0;
  int dropped_turns = 0;
};

void run_chat(GenFlags& f) {
  f.chat.chat = true;
  const Model model = load_model(f.model, f.sampling);
  const auto tok = tokenizer::Tokenizer::load(f.model.tokenizer.empty() ? f.model.model : f.model.tokenizer);
  tokenizer::ChatTemplate::from_config(tok.config(), f.chat.chat_template);  // fail early if unknown
  SamplingFlags sf = f.sampling;
  sf.variable_length = true;  // chat answers grow a block at a time and stop at EOS/EOT
  if (sf.gen_length && !sf.max_length) sf.max_length = sf.gen_length;
  const int64_t ctx = model.config().max_sequence_length;
  // The longest answer: --max-length, else 256 tokens but at most half the context, so that
  // the conversation keeps the other half.
  const int64_t unit = sf.block_length ? *sf.block_length : kDefaultBlockLength;
  const int64_t cap = sf.max_length ? *sf.max_length : std::max<int64_t>(unit, std::min<int64_t>(256, ctx / 2) / unit * unit);
  if (cap >= ctx) fail("--max-length ", cap, " leaves no room for a message in the model's context of ", ctx, " tokens");
  SamplingFlags probe = sf;
  probe.max_length = cap;
  const SamplingLengths first = derive_lengths(probe, cap, -1, ctx);  // checks the flags once
  const int64_t block = first.block_length;
  const int64_t steps_per_block = first.steps;  // variable length: steps count per block

  std::optional<CanvasView> view;
  if (f.visual) view.emplace(&tok, model.config().mask_token_id);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the prompt ends the read, and the session
  struct sigaction old_sa {};
  sigaction(SIGINT, &sa, &old_sa);

  std::vector<tokenizer::ChatMessage> history;
  const bool tty = isatty(STDIN_FILENO);
  LineReader input;
  if (!f.quiet) {
    std::fprintf(stderr,
                 "illada chat: %s (context %lld tokens, answers up to %lld). Ctrl-C stops an answer; "
                 "Ctrl-C or Ctrl-D at the prompt ends.\n",
                 f.model.model.c_str(), static_cast<long long>(ctx), static_cast<long long>(cap));
  }
  for (;;) {
    g_interrupted = false;
    if (tty) std::fprintf(stderr, "\033[1m> \033[0m");
    std::string line;
    const LineReader::Got got = input.next(line);
    if (got != LineReader::Got::kLine) {
      if (tty) std::fprintf(stderr, "\n");
      break;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    history.push_back({"user", line});
    // A message that alone leaves no room for an answer is refused; the history stays.
    const int64_t alone = static_cast<int64_t>(render_prompt(f.chat, tok, {history.back()}).size());
    if (ctx - alone < block) {
      std::fprintf(stderr, "[this message takes %lld tokens with the chat template, leaving less than one block "
                   "(%lld tokens) of the model's context of %lld for an answer; write a shorter one]\n",
                   static_cast<long long>(alone), static_cast<long long>(block), static_cast<long long>(ctx));
      history.pop_back();
      continue;
    }
    // Fit the conversation: drop the oldest exchange until the answer has room.
    TurnPlan plan;
    for (;;) {
      plan.prompt = render_prompt(f.chat, tok, history);
      const int64_t room = ctx - static_cast<int64_t>(plan.prompt.size());
      if (room >= cap) {
        plan.answer = cap;
        break;
      }
      if (history.size() > 1) {
        history.erase(history.begin(), history.begin() + std::min<size_t>(2, history.size() - 1));
        ++plan.dropped_turns;
        continue;
      }
      plan.answer = room / block * block;  // the message alone: a shorter answer (>= one block)
      break;
    }
    if (plan.dropped_turns > 0 && !f.quiet) {
      std::fprintf(stderr, "[the conversation filled the model's context of %lld tokens: dropped the oldest %s]\n",
                   static_cast<long long>(ctx),
                   plan.dropped_turns == 1 ? "exchange" : (std::to_string(plan.dropped_turns) + " exchanges").c_str());
    }
    SamplingFlags turn = sf;
    turn.max_length = plan.answer;
    turn.block_length = block;
    turn.steps = steps_per_block;
    const SamplingLengths len = derive_lengths(turn, plan.answer, static_cast<int64_t>(plan.prompt.size()), ctx);
    GenerateOptions o = sampling_options(turn, len, model, &tok);
    o.on_step = [&](const StepInfo& s) {
      if (g_interrupted) throw Interrupted{};
      if (view) view->draw(s);
    };
    try {
      const auto res = generate(model, {plan.prompt}, o);
      if (view) view->finish();
      const std::string& answer = res[0].text;
      std::printf("%s\n", answer.c_str());
      std::fflush(stdout);
      history.push_back({"assistant", answer});
    } catch (const Interrupted&) {
      if (view) view->finish();
      std::fprintf(stderr, "\033[0m\n[interrupted]\n");  // terminal attributes back to normal
      history.pop_back();
    } catch (...) {  // a broken model (NaN logits, ...): end the session, one message from main
      if (view) view->finish();
      sigaction(SIGINT, &old_sa, nullptr);
      throw;
    }
  }
  sigaction(SIGINT, &old_sa, nullptr);
}

}  // namespace

void register_generate(CLI::App& app) {
  auto f = std::make_shared<GenFlags>();
  auto* gen = app.add_subcommand("generate", "Generate text by masked diffusion");
  add_common_flags(gen, *f, "128, or less (a multiple of 32) when the prompt leaves less room in the model's context",
                   /*with_chat_switch=*/true);
  texts(gen, "--prompt", f->prompts, "Prompt text (repeat for a batch)");
  texts(gen, "--prompt-ids", f->prompt_ids, "Prompt token ids, e.g. 1,2,3 (repeat for a batch)");
  choice(gen, "--format", f->format, {"text", "json"}, "Output format (json keys: ids, text, stopped, nfe, seconds)");
  gen->callback([f, gen] { run_generate(*f, gen); });

  auto c = std::make_shared<GenFlags>();
  auto* chat = app.add_subcommand("chat", "Multi-turn chat with the model's chat template (variable-length answers)");
  add_common_flags(chat, *c, "256, at most half the model's context; a long message shortens it",
                   /*with_chat_switch=*/false);
  chat->callback([c] { run_chat(*c); });
}

}  // namespace illada::cli
