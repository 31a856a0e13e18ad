// Prometheus text for the server's metrics (metrics.h).
#include "serve/metrics.h"

#include "kernels/gemm.h"

#include <algorithm>
#include <cstdio>

namespace illada::serve {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kRateWindowSeconds = 10.0;

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  header(out, name, "histogram", help);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : batch_size_({1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64}),
      latency_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}),
      first_token_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}) {}

void Metrics::request_done(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

void Metrics::ended(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++ended_[reason];
}

void Metrics::set_queue(int64_t waiting, int64_t active) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_ = waiting;
  active_ = active;
}

void Metrics::forward_pass(int64_t requests, int64_t rows, int64_t committed) {
  std::lock_guard<std::mutex> lock(mu_);
  ++forward_passes_;
  rows_ += rows;
  committed_ += committed;
  largest_batch_ = std::max(largest_batch_, requests);
  batch_size_.observe(static_cast<double>(requests));
  const auto now = Clock::now();
  recent_.emplace_back(now, committed);
  while (!recent_.empty() && std::chrono::duration<double>(now - recent_.front().first).count() > kRateWindowSeconds) {
    recent_.pop_front();
  }
}

void Metrics::completion(double seconds, double first_token_seconds, int64_t completion_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seconds >= 0) latency_.observe(seconds);
  if (first_token_seconds >= 0) first_token_.observe(first_token_seconds);
  completion_tokens_ += completion_tokens;
}

int64_t Metrics::forward_passes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return forward_passes_;
}

int64_t Metrics::largest_batch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return largest_batch_;
}

std::string Metrics::prometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  header(out, "illada_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [key, n] : requests_) {
    out += "illada_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  }
  header(out, "illada_rejected_total", "counter", "Generation requests refused before they ran, by reason.");
  for (const auto& [reason, n] : rejected_) {
    out += "illada_rejected_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  }
  header(out, "illada_requests_ended_total", "counter",
         "Generation requests that ended without their answer, by reason (client_gone, timeout, shutdown, error).");
  for (const auto& [reason, n] : ended_) {
    out += "illada_requests_ended_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  }
  header(out, "illada_queue_depth", "gauge", "Sequences (choices) waiting for a place in the batch.");
  out += "illada_queue_depth " + std::to_string(waiting_) + "\n";
  header(out, "illada_active_sequences", "gauge", "Sequences (choices) in the running batch.");
  out += "illada_active_sequences " + std::to_string(active_) + "\n";
  header(out, "illada_forward_passes_total", "counter", "Forward passes of the model (one per engine step).");
  out += "illada_forward_passes_total " + std::to_string(forward_passes_) + "\n";
  header(out, "illada_forward_rows_total", "counter", "Token rows fed to the model, all passes together.");
  out += "illada_forward_rows_total " + std::to_string(rows_) + "\n";
  header(out, "illada_committed_tokens_total", "counter", "Canvas positions decided (unmasked), all requests.");
  out += "illada_committed_tokens_total " + std::to_string(committed_) + "\n";
  header(out, "illada_completion_tokens_total", "counter", "Completion tokens returned (usage.completion_tokens).");
  out += "illada_completion_tokens_total " + std::to_string(completion_tokens_) + "\n";
  header(out, "illada_gemm_primitives", "counter",
         "oneDNN matrix-product primitives created (one per distinct product shape, again after an eviction).");
  out += "illada_gemm_primitives " + std::to_string(gemm_primitives_created()) + "\n";
  header(out, "illada_gemm_primitives_cached", "gauge",
         "oneDNN matrix-product primitives held now (at most " + std::to_string(kGemmCacheDefaultLimit) +
             "; the least recently used goes first).");
  out += "illada_gemm_primitives_cached " + std::to_string(gemm_primitives_cached()) + "\n";
  header(out, "illada_batch_size_max", "gauge", "Most sequences that shared one forward pass so far.");
  out += "illada_batch_size_max " + std::to_string(largest_batch_) + "\n";
  double rate = 0;
  const auto now = Clock::now();
  int64_t n = 0;
  double span = 0;
  for (const auto& [t, c] : recent_) {
    const double age = std::chrono::duration<double>(now - t).count();
    if (age > kRateWindowSeconds) continue;
    n += c;
    span = std::max(span, age);
  }
  if (n > 0) rate = static_cast<double>(n) / std::max(span, 1.0);
  header(out, "illada_tokens_per_second", "gauge",
         "Positions committed per second over the last 10 seconds (0 when idle longer).");
  out += "illada_tokens_per_second " + num(rate) + "\n";
  batch_size_.write(out, "illada_batch_size", "Sequences per forward pass.");
  latency_.write(out, "illada_request_duration_seconds", "Time from a generation request's arrival to its answer.");
  first_token_.write(out, "illada_time_to_first_token_seconds",
                     "Time from a streamed request's arrival to its first text.");
  return out;
}

}  // namespace illada::serve
