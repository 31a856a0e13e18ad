// `illada serve`: the OpenAI-compatible server of src/serve on one loaded model, with a clean
// shutdown on SIGTERM/SIGINT (drain, then cancel). docs/serve.md describes the API.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/flags.h"
#include "serve/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"

namespace illada::cli {
namespace {

struct ServeFlags {
  ModelFlags model;
  std::string host = "127.0.0.1", api_key, chat_template, model_name;
  int port = 8080;
  int64_t max_batch = 8, max_queue = 32, max_body = 4 << 20;
  double timeout = 600, drain = 30;
  bool no_batch_invariant = false, quiet = false;
};

bool loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string default_name(const std::string& path) {
  std::filesystem::path p(path);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string().empty() ? "illada" : p.filename().string();
}

void run_serve(ServeFlags& f) {
  if (f.api_key.empty()) {
    if (const char* k = std::getenv("ILLADA_API_KEY")) f.api_key = k;
  }
  // SIGINT and SIGTERM go to one thread that drains the server (every thread started from here
  // on inherits the blocked mask, so no other thread is interrupted by them).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // Batch-invariant products (the default) read the packed matrices as chunks (kernels/gemm.h).
  const Model model = Model::load(f.model.model, parse_compute_type(f.model.dtype), /*pack=*/true, f.model.check_tensors,
                                  f.no_batch_invariant ? WeightsLayout::kWhole : WeightsLayout::kChunks);
  const std::string tok_dir = f.model.tokenizer.empty() ? f.model.model : f.model.tokenizer;
  const auto tok = tokenizer::Tokenizer::load(tok_dir);
  serve::ServedModel served{.model = &model, .tok = &tok,
                            .name = f.model_name.empty() ? default_name(f.model.model) : f.model_name,
                            .batch_invariant = !f.no_batch_invariant};
  try {
    served.chat = tokenizer::ChatTemplate::from_config(tok.config(), f.chat_template);
  } catch (const Error& e) {
    if (!f.chat_template.empty()) throw;
    std::fprintf(stderr, "illada serve: note: %s; /v1/chat/completions will answer 400 (give --chat-template)\n", e.what());
  }
  serve::ServeOptions opts{.host = f.host, .port = f.port, .api_key = f.api_key,
                           .engine = {.max_batch = f.max_batch, .max_queue = f.max_queue},
                           .timeout_seconds = f.timeout, .max_body_bytes = static_cast<size_t>(f.max_body),
                           .log_requests = !f.quiet};
  serve::Server server(served, opts);
  const int port = server.bind();
  if (!loopback(f.host) && f.api_key.empty()) {
    std::fprintf(stderr, "illada serve: warning: listening on %s without --api-key: anyone who reaches this address "
                 "can use the model\n", f.host.c_str());
  }
  const std::string shown = f.host.find(':') != std::string::npos ? "[" + f.host + "]" : f.host;
  std::fprintf(stderr, "illada serve: listening on http://%s:%d (model %s, context %lld, %s, max batch %lld, queue %lld%s)\n",
               shown.c_str(), port, served.name.c_str(), static_cast<long long>(model.config().max_sequence_length),
               f.model.dtype.c_str(), static_cast<long long>(f.max_batch), static_cast<long long>(f.max_queue),
               f.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);

  std::atomic<bool> exiting{false};
  std::thread drainer;
  std::thread watcher([&] {
    for (int signals = 0;;) {
      int sig = 0;
      if (sigwait(&sigs, &sig) != 0 || exiting) return;
      if (++signals == 1) {
        std::fprintf(stderr, "illada serve: %s: finishing the running requests (at most %g s; again to cancel them)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", f.drain);
        drainer = std::thread([&] { server.shutdown(f.drain); });
      } else {
        std::fprintf(stderr, "illada serve: cancelling the running requests\n");
        server.hurry();
      }
    }
  });
  server.run();
  server.shutdown(0);  // returns at once after a signal's shutdown; else (listen failed) stops all
  exiting = true;
  pthread_kill(watcher.native_handle(), SIGTERM);  // wakes sigwait
  watcher.join();
  if (drainer.joinable()) drainer.join();
  if (!f.quiet) std::fprintf(stderr, "illada serve: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server with streaming, step-level batching and a web page (docs/serve.md)");
  add_model_flags(cmd, f->model);
  text(cmd, "--host", f->host, "Address to listen on (loopback by default; another address exposes the model)");
  num(cmd, "--port", f->port, Range<int>{0, 65535}, "Port (0: any free port, printed at start)");
  text(cmd, "--api-key", f->api_key,
       "Require 'Authorization: Bearer KEY' on the API routes (also read from $ILLADA_API_KEY)", "none: no key");
  num(cmd, "--max-batch", f->max_batch, Range<int64_t>{1, 256}, "Most sequences (answers) sharing each forward pass");
  num(cmd, "--max-queue", f->max_queue, Range<int64_t>{0, 4096},
      "Most sequences waiting for a place in the batch; more get 429 with Retry-After");
  num(cmd, "--timeout", f->timeout, Range<double>{0, 1e6, true}, "Seconds a request may take, queueing included");
  num(cmd, "--drain-timeout", f->drain, Range<double>{0, 1e6},
      "On SIGTERM/SIGINT: seconds the running requests may take to finish before they are cancelled");
  num(cmd, "--max-body-bytes", f->max_body, Range<int64_t>{1024, int64_t{1} << 30}, "Largest request body (413 beyond)");
  text(cmd, "--chat-template", f->chat_template,
       "Chat template instead of tokenizer_config.json's: llada, llama3 or none", "the tokenizer's");
  text(cmd, "--model-name", f->model_name, "Model id in /v1/models and responses", "the model's folder name");
  flag(cmd, "--no-batch-invariant", f->no_batch_invariant,
       "oneDNN's fastest product for every batch shape: faster on matrices wider than 512, but an answer at "
       "temperature 0 may then depend on the requests it was batched with");
  add_quiet_flag(cmd, f->quiet)->description("No line per request on stderr");
  cmd->callback([f] { run_serve(*f); });
}

}  // namespace illada::cli
