// The HTTP side of `illada serve` (server.h): routes, authentication, streaming, shutdown.
#include "serve/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <cstdio>
#include <cstring>
#include <httplib.h>

#include "serve/web_assets.h"
#include "tokenizer/utf8.h"
#include "util/rng.h"

namespace illada::serve {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string new_id(const char* prefix) {
  static const uint64_t start = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  static std::atomic<uint64_t> counter{0};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(random_bits(start, counter++, 0)));
  return prefix + std::string(buf);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

int port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return -1;
}

bool socket_ports(int fd, int& local, int& remote) {
  sockaddr_storage a{}, b{};
  socklen_t la = sizeof(a), lb = sizeof(b);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &la) != 0) return false;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&b), &lb) != 0) return false;
  local = port_of(a);
  remote = port_of(b);
  return true;
}

}  // namespace

// Tells whether the client of a request has gone away, by peeking at its socket (cpp-httplib
// hands handlers no socket: it is found by the request's two ports). A request whose client
// left is cancelled between two steps instead of computing an answer nobody reads.
class ConnectionWatch {
 public:
  explicit ConnectionWatch(const httplib::Request& req) : local_(req.local_port), remote_(req.remote_port) {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return;
    while (const dirent* e = ::readdir(d)) {
      char* end = nullptr;
      const long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0') continue;
      int l = 0, r = 0;
      if (socket_ports(static_cast<int>(fd), l, r) && l == local_ && r == remote_) {
        fd_ = static_cast<int>(fd);
        break;
      }
    }
    ::closedir(d);
  }

  bool closed() const {
    if (fd_ < 0) return false;  // not found: rely on failed writes
    int l = 0, r = 0;
    if (!socket_ports(fd_, l, r) || l != local_ || r != remote_) return true;  // the socket is gone
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    char c;
    return (p.revents & POLLIN) && ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

 private:
  int local_, remote_;
  int fd_ = -1;
};

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Every byte of the longer string is read whatever the contents; only the lengths leak.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Runs every text-to-ids encoding of the server on one thread (ServedModel::encode): the
// tokenizer's per-thread word cache (6 MiB) then exists once, not once per HTTP thread.
class EncodeWorker {
 public:
  explicit EncodeWorker(const tokenizer::Tokenizer& tok) : tok_(tok), thread_([this] { run(); }) {}
  ~EncodeWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::vector<int32_t> encode(const std::string& text, bool special) {
    std::packaged_task<std::vector<int32_t>()> task([&] { return tok_.encode(text, special); });
    auto result = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result.get();  // rethrows what encode threw
  }

 private:
  void run() {
    for (;;) {
      std::packaged_task<std::vector<int32_t>()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  const tokenizer::Tokenizer& tok_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<std::vector<int32_t>()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

struct Server::Impl {
  Impl(const ServedModel& s, ServeOptions o, Metrics& m)
      : served(s), opts(std::move(o)), metrics(m), encoder(*s.tok), engine(*s.model, opts.engine, m) {
    served.encode = [this](const std::string& text, bool special) { return encoder.encode(text, special); };
  }

  ServedModel served;  // a copy, with `encode` on the worker
  const ServeOptions opts;
  Metrics& metrics;
  httplib::Server http;
  EncodeWorker encoder;
  Engine engine;
  std::atomic<bool> draining{false}, stopped{false};
  const int64_t created = unix_seconds();

  void routes();
  void completion(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  bool stream(const std::shared_ptr<struct StreamState>& st, httplib::DataSink& sink);
  json denoising_chunk(const struct StreamState& st, const StepEvent& e) const;
  ApiError end_error(const Job& job) const;
  static bool needs_auth(const std::string& path);
};

// What a streaming response carries from the handler into its content provider.
struct StreamState {
  std::shared_ptr<Job> job;
  std::shared_ptr<CompletionPlan> plan;
  std::shared_ptr<ConnectionWatch> watch;
  Endpoint ep = Endpoint::kChat;
  std::string id;
  int64_t created = 0;
  bool include_usage = false;
  std::vector<TextStream> streams;
  std::vector<char> finished;
  int64_t completion_tokens = 0;
  bool first_text = false;
};

bool Server::Impl::needs_auth(const std::string& path) {
  return path.starts_with("/v1/") || path == "/tokenize" || path == "/detokenize" || path == "/metrics";
}

ApiError Server::Impl::end_error(const Job& job) const {
  switch (job.end) {
    case JobEnd::kTimeout:
      return ApiError(504, "the request ran past the server's deadline of " + json(opts.timeout_seconds).dump() +
                               " s (--timeout) and was cancelled", "", "timeout_error", "timeout");
    case JobEnd::kShutdown:
      return ApiError(503, "the server shut down before this answer was complete", "", "server_error", "shutting_down");
    case JobEnd::kClientGone:
      return ApiError(499, "the client closed the connection", "", "invalid_request_error", "client_closed");
    default:
      return ApiError(500, "generation failed: " + job.error, "", "server_error");
  }
}

json Server::Impl::denoising_chunk(const StreamState& st, const StepEvent& e) const {
  const int32_t mask = served.model->config().mask_token_id;
  json tokens = json::array();
  for (int32_t id : e.answer) {
    if (id == mask) {
      tokens.push_back(nullptr);
    } else {
      tokens.push_back(tokenizer::utf8_lossy(served.tok->decode(std::span<const int32_t>(&id, 1), false)));
    }
  }
  json c = chunk_choice(st.ep, e.choice, "", false);
  c["denoising"] = {{"block", e.block}, {"step", e.step}, {"forward_passes", e.nfe},
                    {"tokens", tokens}, {"committed", e.committed}};
  return chunk(st.ep, st.id, st.created, served.name, json::array({c}));
}

bool Server::Impl::stream(const std::shared_ptr<StreamState>& sp, httplib::DataSink& sink) {
  StreamState& st = *sp;
  Job& job = *st.job;
  const int64_t k = job.choices();
  auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
  auto event = [&](const json& j) { return write("data: " + dump(j) + "\n\n"); };
  auto gone = [&] {
    job.cancel = true;
    return false;
  };
  if (st.ep == Endpoint::kChat) {  // the first chunk of each choice carries the role
    for (int64_t c = 0; c < k; ++c) {
      if (!event(chunk(st.ep, st.id, st.created, served.name, json::array({chunk_choice(st.ep, c, "", true)})))) {
        return gone();
      }
    }
  }
  int64_t seen = -1;
  for (;;) {
    std::deque<StepEvent> events;
    std::vector<std::vector<int32_t>> answers(static_cast<size_t>(k));
    std::vector<char> done;
    bool finished = false;
    JobEnd end = JobEnd::kNone;
    {
      std::unique_lock<std::mutex> lk(job.mu);
      seen = job.wait_change(lk, seen, Clock::now() + 250ms);
      events.swap(job.events);
      for (int64_t c = 0; c < k; ++c) {
        if (!st.finished[c]) answers[c] = job.answer[c];
      }
      done = job.done;
      finished = job.finished;
      end = job.end;
    }
    if (st.watch->closed()) return gone();
    for (const StepEvent& e : events) {
      if (!event(denoising_chunk(st, e))) return gone();
    }
    for (int64_t c = 0; c < k; ++c) {
      if (st.finished[c]) continue;
      std::vector<json> out;
      if (done[c]) {
        const AnswerText a = choice_answer(job, c, *st.plan, served);
        const std::string rest = st.streams[c].finish(a.text);
        if (!rest.empty()) out.push_back(chunk_choice(st.ep, c, rest, false));
        out.push_back(chunk_choice(st.ep, c, "", false, a.stopped ? "stop" : "length"));
        st.finished[c] = 1;
        st.completion_tokens += a.tokens;
      } else if (end == JobEnd::kNone) {
        const std::string delta = st.streams[c].update(answers[c]);
        if (!delta.empty()) out.push_back(chunk_choice(st.ep, c, delta, false));
      }
      for (const json& ch : out) {
        if (!st.first_text && ch.value("finish_reason", json()).is_null()) {
          st.first_text = true;
          metrics.completion(-1, std::chrono::duration<double>(Clock::now() - job.arrived).count(), 0);
        }
        if (!event(chunk(st.ep, st.id, st.created, served.name, json::array({ch})))) return gone();
      }
    }
    if (finished) break;
  }
  if (job.end != JobEnd::kNone) {
    if (job.end == JobEnd::kClientGone) return false;
    event(end_error(job).body());
  } else {
    metrics.completion(std::chrono::duration<double>(Clock::now() - job.arrived).count(), -1, st.completion_tokens);
    if (st.include_usage) {
      const Usage usage{st.plan->prompt_tokens, st.completion_tokens};
      if (!event(chunk(st.ep, st.id, st.created, served.name, json::array(), usage.to_json()))) return gone();
    }
  }
  if (!write("data: [DONE]\n\n")) return gone();
  sink.done();
  return true;
}

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  const auto arrived = Clock::now();
  const CompletionRequest r = parse_completion_request(req.body, ep, opts.limits);
  auto plan = std::make_shared<CompletionPlan>(plan_completion(r, served));
  auto job = std::make_shared<Job>();
  job->prompts = plan->prompts;
  job->n = r.n;
  job->options = plan->options;
  job->step_events = r.stream && r.denoising;
  job->arrived = arrived;
  job->deadline = arrived + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts.timeout_seconds));
  switch (engine.submit(job)) {
    case Engine::Admit::kQueued:
      break;
    case Engine::Admit::kDraining:
      metrics.rejected("shutting_down");
      throw ApiError(503, "the server is shutting down", "", "server_error", "shutting_down");
    case Engine::Admit::kQueueFull:
      metrics.rejected("queue_full");
      res.set_header("Retry-After", "1");
      throw ApiError(429, "the server is busy: " + std::to_string(engine.queued()) + " sequences wait for a place in the "
                          "batch (--max-queue " + std::to_string(opts.engine.max_queue) + "); retry later",
                     "", "rate_limit_error", "rate_limit_exceeded");
    case Engine::Admit::kTooLarge:
      metrics.rejected("too_large");
      throw ApiError(400, "n x prompts = " + std::to_string(job->choices()) + " answers exceed the server's batch of " +
                              std::to_string(opts.engine.max_batch) + " sequences (--max-batch)", "n");
  }
  auto watch = std::make_shared<ConnectionWatch>(req);
  const std::string id = new_id(ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
  if (r.stream) {
    auto st = std::make_shared<StreamState>();
    st->job = job;
    st->plan = plan;
    st->watch = watch;
    st->ep = ep;
    st->id = id;
    st->created = unix_seconds();
    st->include_usage = r.include_usage;
    for (int64_t c = 0; c < job->choices(); ++c) st->streams.push_back(choice_stream(*plan, served));
    st->finished.assign(static_cast<size_t>(job->choices()), 0);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, st](size_t, httplib::DataSink& sink) {
          try {
            return stream(st, sink);
          } catch (const std::exception& e) {  // a bug: end this response, never the process
            st->job->cancel = true;
            std::fprintf(stderr, "illada serve: error while streaming %s: %s\n", st->id.c_str(), e.what());
            return false;
          }
        },
        [job](bool success) {
          if (!success) job->cancel = true;  // the client went away: stop the job
        });
    return;
  }
  {
    std::unique_lock<std::mutex> lk(job->mu);
    int64_t seen = -1;
    while (!job->finished) {
      seen = job->wait_change(lk, seen, Clock::now() + 250ms);
      if (!job->finished && watch->closed()) job->cancel = true;
    }
  }
  if (job->end != JobEnd::kNone) throw end_error(*job);
  std::vector<ChoiceAnswer> answers;
  Usage usage{.prompt_tokens = plan->prompt_tokens};
  for (int64_t c = 0; c < job->choices(); ++c) {
    const AnswerText a = choice_answer(*job, c, *plan, served);
    answers.push_back({c, a.text, a.stopped ? "stop" : "length"});
    usage.completion_tokens += a.tokens;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - arrived).count();
  metrics.completion(seconds, -1, usage.completion_tokens);
  json body = completion_response(ep, id, unix_seconds(), served.name, answers, usage);
  int64_t nfe = 0;
  for (const GenerateResult& g : job->results) nfe += g.nfe;
  const double gen = std::chrono::duration<double>(Clock::now() - job->started).count();
  body["timings"] = {{"forward_passes", nfe},
                     {"queued_seconds", std::chrono::duration<double>(job->started - arrived).count()},
                     {"generation_seconds", gen},
                     {"tokens_per_second", gen > 0 ? static_cast<double>(usage.completion_tokens) / gen : 0.0}};
  send_json(res, 200, body);
}

void Server::Impl::routes() {
  // Every handler answers bad input with an OpenAI error object, never with a crash.
  auto guarded = [this](auto fn) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const ApiError& e) {
        send_json(res, e.status(), e.body());
      } catch (const std::bad_alloc&) {
        send_json(res, 507, error_body("out of memory for this request", "server_error"));
      } catch (const std::exception& e) {
        send_json(res, 500, error_body(std::string("internal error: ") + e.what(), "server_error"));
      }
    };
  };
  http.Post("/v1/chat/completions", guarded([this](const auto& req, auto& res) { completion(req, res, Endpoint::kChat); }));
  http.Post("/v1/completions", guarded([this](const auto& req, auto& res) { completion(req, res, Endpoint::kCompletion); }));
  http.Get("/v1/models", guarded([this](const auto&, auto& res) {
    const json model = {{"id", served.name}, {"object", "model"}, {"created", created}, {"owned_by", "illada"},
                        {"max_model_len", served.model->config().max_sequence_length}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
  }));
  http.Get("/health", guarded([this](const auto&, auto& res) {
    const bool d = draining.load();
    send_json(res, d ? 503 : 200,
              {{"status", d ? "draining" : "ok"}, {"model", served.name}, {"running", engine.running()},
               {"queued", engine.queued()}, {"forward_passes", metrics.forward_passes()}});
  }));
  http.Get("/metrics", guarded([this](const auto&, auto& res) {
    res.set_content(metrics.prometheus(), "text/plain; version=0.0.4; charset=utf-8");
  }));
  http.Post("/tokenize", guarded([this](const auto& req, auto& res) {
    const json j = parse_json_object(req.body);
    const char* key = j.contains("content") ? "content" : "prompt";
    if (!j.contains(key) || !j[key].is_string()) throw ApiError(400, "'content' must be a string (the text to tokenize)", "content");
    bool special = false;
    for (const char* k : {"add_special", "add_special_tokens"}) {
      if (j.contains(k)) {
        if (!j[k].is_boolean()) throw ApiError(400, std::string("'") + k + "' must be true or false", k);
        special = j[k].get<bool>();
      }
    }
    const auto ids = served.encode_text(j[key].get<std::string>(), special);
    send_json(res, 200, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", served.model->config().max_sequence_length}});
  }));
  http.Post("/detokenize", guarded([this](const auto& req, auto& res) {
    const json j = parse_json_object(req.body);
    if (!j.contains("tokens") || !j["tokens"].is_array()) throw ApiError(400, "'tokens' must be an array of token ids", "tokens");
    std::vector<int32_t> ids;
    const int64_t vocab = served.model->config().embedding_size;
    for (size_t i = 0; i < j["tokens"].size(); ++i) {
      const json& v = j["tokens"][i];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
        throw ApiError(400, "'tokens[" + std::to_string(i) + "]' must be a token id in [0, " + std::to_string(vocab) +
                                "), got " + dump(v), "tokens");
      }
      ids.push_back(v.get<int32_t>());
    }
    const std::string text = tokenizer::utf8_lossy(served.tok->decode(ids, false));
    send_json(res, 200, {{"content", text}, {"prompt", text}});
  }));
  http.Get("/(.*)", guarded([](const auto& req, auto& res) {
    const std::string name = req.matches[1].str().empty() ? "index.html" : req.matches[1].str();
    const WebAsset* a = find_web_asset(name);
    if (!a) throw ApiError(404, "no route " + req.path, "", "invalid_request_error", "not_found");
    res.set_content(a->data, a->size, web_content_type(name));
  }));
}

Server::Server(const ServedModel& served, ServeOptions opts) {
  ILLADA_CHECK(served.model && served.tok);
  impl_ = std::make_unique<Impl>(served, std::move(opts), metrics_);
  Impl& s = *impl_;
  const size_t threads = static_cast<size_t>(s.opts.engine.max_batch + s.opts.engine.max_queue + 8);
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.http.set_payload_max_length(s.opts.max_body_bytes);
  s.http.set_keep_alive_timeout(2);
  s.http.set_read_timeout(30);
  s.http.set_write_timeout(30);
  s.http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (s.opts.api_key.empty() || !Impl::needs_auth(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    const std::string given = h.compare(0, prefix.size(), prefix) == 0 ? h.substr(prefix.size()) : std::string();
    if (constant_time_equal(given, s.opts.api_key) && !given.empty()) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_json(res, 401, error_body(h.empty() ? "this server needs an API key: send \"Authorization: Bearer KEY\""
                                             : "incorrect API key provided",
                                   "invalid_request_error", "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  s.http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 413) msg = "the request body is larger than this server takes (--max-body-bytes)";
    if (res.status == 404) msg = "no route " + req.method + " " + req.path;
    if (res.status == 405) msg = "method " + req.method + " is not allowed on " + req.path;
    send_json(res, res.status, error_body(msg, "invalid_request_error"));
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_json(res, 500, error_body("internal error", "server_error"));
  });
  s.http.set_logger([&s](const httplib::Request& req, const httplib::Response& res) {
    static const char* kRoutes[] = {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health",
                                    "/metrics", "/tokenize", "/detokenize", "/"};
    std::string route = "other";
    for (const char* r : kRoutes) {
      if (req.path == r) route = r;
    }
    if (route == "other" && req.method == "GET" && find_web_asset(req.path.substr(1))) route = "/";
    s.metrics.request_done(route, res.status);
    if (s.opts.log_requests) {
      std::fprintf(stderr, "illada serve: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    }
  });
  s.routes();
}

Server::~Server() { shutdown(0); }

int Server::bind() {
  // A client that goes away mid-answer must not end the process: cpp-httplib writes with
  // send() flags 0, so a write to a closed socket raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  Impl& s = *impl_;
  int port = s.opts.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.opts.host);
  } else if (!s.http.bind_to_port(s.opts.host, port)) {
    port = -1;
  }
  if (port < 0) {
    fail("serve: cannot listen on ", s.opts.host, ":", s.opts.port,
         " (address in use, not an address of this machine, or a port below 1024 without the right to it)");
  }
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::hurry() { impl_->engine.hurry(); }

void Server::shutdown(double drain_seconds) {
  Impl& s = *impl_;
  if (s.stopped.exchange(true)) return;
  s.draining = true;
  s.engine.drain(drain_seconds);
  s.http.stop();
}

}  // namespace illada::serve
