// `illada serve`: an OpenAI-compatible HTTP server (cpp-httplib) over the step-level batching
// engine, with Server-Sent Events streaming, a Prometheus /metrics, token routes, and the web
// page that shows the denoising. Routes and fields: docs/serve.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "serve/completion.h"
#include "serve/engine.h"
#include "serve/metrics.h"
#include "serve/openai_api.h"

namespace illada::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (bind() says which)
  std::string api_key;             // non-empty: API routes need "Authorization: Bearer KEY"
  EngineOptions engine;
  double timeout_seconds = 600;    // a request's deadline, queueing included
  size_t max_body_bytes = 4 << 20;
  RequestLimits limits;
  bool log_requests = true;        // one line per request on stderr
};

class Server {
 public:
  // `served` must outlive the server.
  Server(const ServedModel& served, ServeOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port. Throws Error naming host:port on failure.
  int bind();
  // Serves until shutdown() (after bind()).
  void run();
  // Stops taking generation requests (503), lets running and queued ones finish for up to
  // `drain_seconds`, ends the rest (their clients get an error), then stops the HTTP server so
  // that run() returns. Thread-safe; a second call returns at once.
  void shutdown(double drain_seconds);
  // Cuts a shutdown()'s drain short (a second Ctrl-C): running requests end now.
  void hurry();

  Metrics& metrics() { return metrics_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Metrics metrics_;
};

// Equality of two strings in time that depends on their lengths only (API keys).
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace illada::serve
