// The server's counters, gauges and histograms, written in Prometheus' text exposition format
// (GET /metrics). Thread-safe: HTTP handlers and the engine thread record into one Metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace illada::serve {

// A cumulative histogram with fixed upper bounds (Prometheus' `le` buckets).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket, _sum and _count lines of metric `name`.
  void write(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound (not cumulative), plus one for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void request_done(const std::string& route, int status);       // every HTTP response
  void rejected(const std::string& reason);                        // queue full, draining, ...
  void ended(const std::string& reason);                           // a job ended without its answer
  void set_queue(int64_t waiting, int64_t active);                 // requests (choices)
  // One forward pass of the engine: requests (choices) in it, token rows fed, positions committed.
  void forward_pass(int64_t requests, int64_t rows, int64_t committed);
  // A finished request's latency, a streamed request's time to its first text (either < 0: not
  // recorded by this call) and its completion tokens.
  void completion(double seconds, double first_token_seconds, int64_t completion_tokens);

  int64_t forward_passes() const;
  int64_t largest_batch() const;
  std::string prometheus() const;  // text format 0.0.4

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> rejected_, ended_;
  int64_t waiting_ = 0, active_ = 0;
  int64_t forward_passes_ = 0, rows_ = 0, committed_ = 0, largest_batch_ = 0, completion_tokens_ = 0;
  Histogram batch_size_, latency_, first_token_;
  // Committed positions of the last seconds, for a current tokens/s.
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> recent_;
};

}  // namespace illada::serve
