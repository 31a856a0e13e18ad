// `illada generate` and `illada chat`: text generation with every sampler of src/sample, on
// token ids or text (tokenizer.json next to the model, or --tokenizer), with chat templates.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/parse_util.h"
#include "sample/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::cli {
namespace {

std::atomic<bool> g_interrupted{false};

struct GenFlags {
  std::string model, tokenizer, dtype = "bf16", format = "text", remasking = "low_confidence";
  std::string cache = "none", chat_template, system, end_think_text = "</think>";
  std::vector<std::string> prompts, prompt_ids, stops;
  int64_t gen_length = 128, block_length = 32, steps = 128, max_length = 0;
  double temperature = 0.0, cfg_scale = 0.0, end_think_boost = 0.0, end_think_power = 2.0;
  std::optional<double> threshold, factor;
  bool variable_length = false, chat = false, visual = false, logits_eos_inf = false;
  bool confidence_eos_eot_inf = false, allow_mask_prediction = false;
  uint64_t seed = 0;
};

void add_sampling_flags(CLI::App* cmd, GenFlags& f) {
  cmd->add_option("--model", f.model, "Hugging Face style model directory")->required();
  cmd->add_option("--tokenizer", f.tokenizer, "Directory with tokenizer.json (default: --model)");
  cmd->add_option("--dtype", f.dtype, "Compute precision")->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--gen-length", f.gen_length, "Tokens to generate (fixed canvas)");
  cmd->add_option("--block-length", f.block_length, "Semi-autoregressive block length");
  cmd->add_option("--steps", f.steps,
                  "Denoising steps: over the whole canvas, or per block with --variable-length");
  cmd->add_option("--temperature", f.temperature, "0: greedy; > 0: Gumbel-max sampling");
  cmd->add_option("--remasking", f.remasking, "Confidence measure")
      ->check(CLI::IsMember({"low_confidence", "random", "margin", "entropy"}));
  cmd->add_option("--cfg-scale", f.cfg_scale, "Classifier-free guidance scale (0: off)");
  cmd->add_flag("--variable-length", f.variable_length,
                "iLLaDA (var_generate): add one block at a time, stop after the block whose "
                "answer holds a stop (EOS, EOT, --stop)");
  cmd->add_option("--max-length", f.max_length,
                  "Variable length: most tokens (default --gen-length; cut to whole blocks and "
                  "to what the context leaves)");
  cmd->add_option("--stop", f.stops, "Text that ends the answer (repeatable; EOS/EOT always do)");
  cmd->add_option("--end-think-boost", f.end_think_boost,
                  "Logit bonus for the next token of --end-think-text, times progress^power (0: off)");
  cmd->add_option("--end-think-power", f.end_think_power, "Exponent of the answer progress in the boost");
  cmd->add_option("--end-think-text", f.end_think_text, "The end-of-thinking text the boost pushes towards");
  cmd->add_option("--threshold", f.threshold, "Fast-dLLM parallel decoding: commit confidence >= TAU");
  cmd->add_option("--factor", f.factor, "Fast-dLLM factor rule for parallel decoding");
  cmd->add_option("--cache", f.cache, "Block-wise KV cache")->check(CLI::IsMember({"none", "prefix", "dual"}));
  cmd->add_option("--chat-template", f.chat_template, "Override the chat template (llada, llama3, none)");
  cmd->add_option("--system", f.system, "System message for chat templates");
  cmd->add_flag("--logits-eos-inf", f.logits_eos_inf, "Never pick EOS");
  cmd->add_flag("--confidence-eos-eot-inf", f.confidence_eos_eot_inf, "Commit EOS/EOT picks last");
  cmd->add_flag("--allow-mask-prediction", f.allow_mask_prediction,
                "Let argmax pick the mask token, as the official code does");
  cmd->add_option("--seed", f.seed, "Random seed (temperature > 0, random remasking)");
  cmd->add_flag("--visual", f.visual, "Show the canvas being denoised live");
}

GenerateOptions to_options(const GenFlags& f, const Model& m,
                           const tokenizer::Tokenizer* tok) {
  GenerateOptions o{.gen_length = f.gen_length, .block_length = f.block_length, .steps = f.steps,
                    .temperature = f.temperature, .remasking = parse_remasking(f.remasking),
                    .cfg_scale = f.cfg_scale, .logits_eos_inf = f.logits_eos_inf,
                    .confidence_eos_eot_inf = f.confidence_eos_eot_inf,
                    .variable_length = f.variable_length, .max_length = f.max_length,
                    .end_think_boost = f.end_think_boost, .end_think_power = f.end_think_power,
                    .threshold = f.threshold, .factor = f.factor,
                    .cache = parse_cache_mode(f.cache),
                    .allow_mask_prediction = f.allow_mask_prediction, .seed = f.seed};
  if (!tok) {  // ids only: stop at the EOS id
    if (!f.stops.empty()) fail("--stop needs a tokenizer (give --tokenizer DIR)");
    if (f.end_think_boost > 0) fail("--end-think-boost needs a tokenizer (give --tokenizer DIR)");
    o.stop_tokens.push_back(m.config().eos_token_id);
    return o;
  }
  // As the released code: stop strings searched in the decoded answer (special tokens kept).
  o.detokenize = [tok](std::span<const int32_t> ids) { return tok->decode(ids, false); };
  o.stop_strings.push_back(tok->decode(std::span<const int32_t>(&m.config().eos_token_id, 1), false));
  const int32_t eot = tok->token_to_id("<|eot_id|>");
  o.eot_token_id = eot;
  if (eot >= 0) o.stop_strings.push_back("<|eot_id|>");
  o.stop_strings.insert(o.stop_strings.end(), f.stops.begin(), f.stops.end());
  if (f.end_think_boost > 0) o.end_think_ids = tok->encode(f.end_think_text, false);
  return o;
}

// Live view of the canvas: generated part, masks drawn as a shaded block.
void draw_canvas(const StepInfo& s, const tokenizer::Tokenizer* tok, int32_t mask) {
  std::string line;
  for (size_t p = s.prompt_length; p < s.canvas.size(); ++p) {
    if (s.canvas[p] == mask) {
      line += "\xe2\x96\x91";  // U+2591 light shade
    } else if (tok) {
      const int32_t id = s.canvas[p];
      line += tok->is_special(id) ? std::string("\xc2\xb7") : tok->decode({&id, 1}, true);
    } else {
      line += std::to_string(s.canvas[p]) + " ";
    }
  }
  std::fprintf(stderr, "\033[2K\r\033[36m[block %lld step %lld]\033[0m %s\033[0J", (long long)s.block,
               (long long)s.step, line.c_str());
  std::fflush(stderr);
}

std::vector<int32_t> render_prompt(const GenFlags& f, const tokenizer::Tokenizer& tok,
                                   std::vector<tokenizer::ChatMessage> messages) {
  if (!f.chat) return tok.encode(messages.back().content, true);
  if (!f.system.empty()) messages.insert(messages.begin(), {"system", f.system});
  const auto tmpl = tokenizer::ChatTemplate::from_config(tok.config(), f.chat_template);
  const std::string text = tmpl.render(messages, {.bos_token = tok.config().bos_token.value_or("")});
  return tok.encode(text, false);
}

void on_sigint(int) { g_interrupted = true; }

void run_generate(const GenFlags& f) {
  if (f.prompts.empty() == f.prompt_ids.empty()) fail("give --prompt TEXT or --prompt-ids IDS (one of them)");
  const Model model = Model::load(f.model, parse_compute_type(f.dtype));
  std::optional<tokenizer::Tokenizer> tok;
  if (!f.prompts.empty() || !f.tokenizer.empty()) {
    tok = tokenizer::Tokenizer::load(f.tokenizer.empty() ? f.model : f.tokenizer);
  }
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& p : f.prompt_ids) prompts.push_back(parse_id_list(p, "--prompt-ids"));
  for (const auto& p : f.prompts) prompts.push_back(render_prompt(f, *tok, {{"user", p}}));
  GenerateOptions o = to_options(f, model, tok ? &*tok : nullptr);
  if (f.visual) {
    const int32_t mask = model.config().mask_token_id;
    const tokenizer::Tokenizer* t = tok ? &*tok : nullptr;
    o.on_step = [t, mask](const StepInfo& s) { draw_canvas(s, t, mask); };
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = generate(model, prompts, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (f.visual) std::fprintf(stderr, "\n");
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json j = {{"ids", r.ids}, {"nfe", r.nfe}, {"seconds", secs},
                        {"tokens_per_s", secs > 0 ? r.ids.size() / secs : 0.0}};
    j["stopped"] = r.stopped;
    if (f.variable_length) j["stopped_at_eos"] = r.stopped;  // older name, kept for scripts
    // JSON needs valid UTF-8; a model can emit any bytes (U+FFFD replaces invalid ones).
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
  std::fprintf(stderr, "[%lld forward passes, %.2f s]\n", (long long)results[0].nfe, secs);
}

void run_chat(GenFlags f) {
  f.chat = true;
  const Model model = Model::load(f.model, parse_compute_type(f.dtype));
  const auto tok = tokenizer::Tokenizer::load(f.tokenizer.empty() ? f.model : f.tokenizer);
  tokenizer::ChatTemplate::from_config(tok.config(), f.chat_template);  // fail early if unknown
  GenerateOptions o = to_options(f, model, &tok);
  const int32_t mask = model.config().mask_token_id;
  std::signal(SIGINT, on_sigint);
  o.on_step = [&](const StepInfo& s) {
    if (g_interrupted) throw Error("interrupted");
    if (f.visual) draw_canvas(s, &tok, mask);
  };
  std::vector<tokenizer::ChatMessage> history;
  const bool tty = isatty(STDIN_FILENO);
  std::fprintf(stderr, "illada chat: type a message; an empty line or Ctrl-D ends, Ctrl-C stops an answer.\n");
  for (;;) {
    if (tty) std::fprintf(stderr, "\033[1m> \033[0m");
    std::string line;
    g_interrupted = false;
    if (!std::getline(std::cin, line) || line.empty()) break;
    history.push_back({"user", line});
    try {
      const auto prompt = render_prompt(f, tok, history);
      const auto res = generate(model, {prompt}, o);
      if (f.visual) std::fprintf(stderr, "\n");
      const std::string& answer = res[0].text;
      std::printf("%s\n", answer.c_str());
      std::fflush(stdout);
      history.push_back({"assistant", answer});
    } catch (const Error& e) {
      std::fprintf(stderr, "\033[0m\n[%s]\n", e.what());  // terminal back to normal
      history.pop_back();
      if (!g_interrupted) throw;
    }
  }
  std::signal(SIGINT, SIG_DFL);
}

}  // namespace

void register_generate(CLI::App& app) {
  auto f = std::make_shared<GenFlags>();
  auto* gen = app.add_subcommand("generate", "Generate text by masked diffusion");
  add_sampling_flags(gen, *f);
  gen->add_option("--prompt", f->prompts, "Prompt text (repeat for a batch)");
  gen->add_option("--prompt-ids", f->prompt_ids, "Prompt token ids, e.g. 1,2,3 (repeat for a batch)");
  gen->add_flag("--chat", f->chat, "Wrap the prompt in the model's chat template");
  gen->add_option("--format", f->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  gen->callback([f] { run_generate(*f); });

  auto c = std::make_shared<GenFlags>();
  c->variable_length = true;
  c->gen_length = 256;
  c->steps = 256;
  auto* chat = app.add_subcommand("chat", "Multi-turn chat with the model's chat template");
  add_sampling_flags(chat, *c);
  chat->callback([c] { run_chat(*c); });
}

}  // namespace illada::cli
