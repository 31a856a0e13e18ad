// Step-level batching for the server: HTTP handlers submit jobs (a prompt set with n choices
// each), one engine thread runs the step-wise Sampler over every admitted choice, so that
// concurrent requests share each forward pass; a request joins at the next step and leaves
// when it is done. The queue is bounded (submit() says when it is full), every job has a
// deadline, and a job whose client went away is cancelled between two steps.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sample/sampler.h"
#include "serve/metrics.h"

namespace illada::serve {

using Clock = std::chrono::steady_clock;

// One step of one choice, for front ends that show the denoising (stream_options.denoising).
struct StepEvent {
  int64_t choice = 0;
  int64_t block = 0, step = 0;
  int64_t nfe = 0;                 // forward passes of this choice so far
  std::vector<int32_t> answer;     // the canvas after the prompt, masks included
  std::vector<int32_t> committed;  // answer positions committed by this step
};

// Why a job ended without its answers.
enum class JobEnd { kNone, kTimeout, kShutdown, kClientGone, kError };

// A generation request as the engine runs it. Handlers create it, submit it and wait on it;
// the engine thread fills it. All members behind `mu` once submitted.
struct Job {
  // Set before submit().
  std::vector<std::vector<int32_t>> prompts;
  int64_t n = 1;                 // choices per prompt; choice i runs prompt i / n
  GenerateOptions options;       // without on_step / cancelled (the engine sets its own)
  bool step_events = false;      // keep every step in `events` (else only the latest canvas)
  Clock::time_point arrived = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();

  int64_t choices() const { return static_cast<int64_t>(prompts.size()) * n; }

  // Filled by the engine.
  std::mutex mu;
  std::condition_variable cv;
  bool admitted = false;
  Clock::time_point started;               // when it joined the batch
  std::vector<std::vector<int32_t>> answer;  // [choice] latest answer canvas
  std::vector<int64_t> nfe;                // [choice]
  std::vector<char> done;                  // [choice]
  std::vector<GenerateResult> results;     // [choice], valid once done
  std::deque<StepEvent> events;            // with step_events
  int64_t version = 0;                     // bumped on every change (for waiters)
  bool finished = false;                   // every choice done, or the job ended
  JobEnd end = JobEnd::kNone;
  std::string error;                       // with kError
  std::atomic<bool> cancel{false};         // set by the handler: the client went away

  // Waits until `version` differs from `seen`, the job finished, or `until`; returns the
  // version now. Call with the lock held.
  int64_t wait_change(std::unique_lock<std::mutex>& lk, int64_t seen, Clock::time_point until);
};

struct EngineOptions {
  int64_t max_batch = 8;   // choices in the running batch (each a sequence of every pass)
  int64_t max_queue = 32;  // choices waiting for a place
};

class Engine {
 public:
  Engine(const Model& model, EngineOptions opts, Metrics& metrics);
  ~Engine();  // cancels what is left and joins the engine thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  enum class Admit { kQueued, kQueueFull, kTooLarge, kDraining };
  // Queues the job (it runs as soon as the batch has room for all its choices).
  Admit submit(const std::shared_ptr<Job>& job);

  // Stops admitting (submit() answers kDraining), lets the running and queued jobs finish for
  // up to `seconds`, then ends the rest with JobEnd::kShutdown and stops the engine thread.
  void drain(double seconds);
  // Ends a drain() now: what still runs ends with JobEnd::kShutdown. Thread-safe.
  void hurry();

  int64_t queued() const;   // choices waiting
  int64_t running() const;  // choices in the batch
  const EngineOptions& options() const { return opts_; }
  const Model& model() const { return model_; }

 private:
  struct Running {
    std::shared_ptr<Job> job;
    int64_t choice = 0;
  };
  void run();
  void admit(const std::shared_ptr<Job>& job);
  void end_job(Job& job, JobEnd end, const std::string& error);

  const Model& model_;
  const EngineOptions opts_;
  Metrics& metrics_;
  Sampler sampler_;  // used by the engine thread only
  std::vector<std::pair<int64_t, Running>> running_;  // sampler id -> choice (engine thread)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int64_t queued_choices_ = 0, running_choices_ = 0;
  bool draining_ = false, stopping_ = false, hurry_ = false;
  std::thread thread_;
};

}  // namespace illada::serve
