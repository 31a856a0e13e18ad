// The engine thread (engine.h): admit queued jobs between steps, one Sampler::step() per
// iteration, results and step events handed to the waiting handlers.
#include "serve/engine.h"

#include <algorithm>

#include "util/check.h"

namespace illada::serve {

using namespace std::chrono_literals;

int64_t Job::wait_change(std::unique_lock<std::mutex>& lk, int64_t seen, Clock::time_point until) {
  cv.wait_until(lk, until, [&] { return version != seen || finished; });
  return version;
}

Engine::Engine(const Model& model, EngineOptions opts, Metrics& metrics)
    : model_(model), opts_(opts), metrics_(metrics), sampler_(model) {
  ILLADA_CHECK(opts_.max_batch >= 1 && opts_.max_queue >= 0);
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() { drain(0); }

Engine::Admit Engine::submit(const std::shared_ptr<Job>& job) {
  const int64_t k = job->choices();
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_ || stopping_) return Admit::kDraining;
  if (k > opts_.max_batch) return Admit::kTooLarge;
  // A job that fits the batch right now starts at the next step without queueing.
  const bool runs_now = queue_.empty() && running_choices_ + k <= opts_.max_batch;
  if (!runs_now && queued_choices_ + k > opts_.max_queue) return Admit::kQueueFull;
  {
    std::lock_guard<std::mutex> jl(job->mu);
    const auto c = static_cast<size_t>(k);
    job->answer.assign(c, {});
    job->nfe.assign(c, 0);
    job->done.assign(c, 0);
    job->results.assign(c, {});
  }
  queue_.push_back(job);
  queued_choices_ += k;
  metrics_.set_queue(queued_choices_, running_choices_);
  cv_.notify_all();
  return Admit::kQueued;
}

void Engine::hurry() {
  std::lock_guard<std::mutex> lock(mu_);
  hurry_ = true;
  cv_.notify_all();
}

int64_t Engine::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_choices_;
}

int64_t Engine::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_choices_;
}

void Engine::drain(double seconds) {
  std::unique_lock<std::mutex> lk(mu_);
  draining_ = true;
  cv_.wait_for(lk, std::chrono::duration<double>(std::max(seconds, 0.0)),
               [&] { return hurry_ || (queue_.empty() && running_choices_ == 0); });
  stopping_ = true;
  cv_.notify_all();
  lk.unlock();
  if (thread_.joinable()) thread_.join();
}

void Engine::end_job(Job& job, JobEnd end, const std::string& error) {
  std::lock_guard<std::mutex> jl(job.mu);
  if (job.finished) return;
  job.finished = true;
  job.end = end;
  job.error = error;
  static const char* kReasons[] = {"none", "timeout", "shutdown", "client_gone", "error"};
  metrics_.ended(kReasons[static_cast<int>(end)]);
  ++job.version;
  job.cv.notify_all();
}

void Engine::admit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> jl(job->mu);
    job->admitted = true;
    job->started = Clock::now();
    ++job->version;
    job->cv.notify_all();
  }
  Job* j = job.get();
  for (int64_t c = 0; c < job->choices(); ++c) {
    GenerateOptions o = job->options;
    o.on_step = [j, c](const StepInfo& s) {
      std::lock_guard<std::mutex> jl(j->mu);
      auto& answer = j->answer[static_cast<size_t>(c)];
      answer.assign(s.canvas.begin() + s.prompt_length, s.canvas.end());
      const int64_t nfe = ++j->nfe[static_cast<size_t>(c)];
      if (j->step_events) {
        StepEvent e{.choice = c, .block = s.block, .step = s.step, .nfe = nfe, .answer = answer};
        for (int32_t p : s.committed) e.committed.push_back(static_cast<int32_t>(p - s.prompt_length));
        j->events.push_back(std::move(e));
      }
      ++j->version;
      j->cv.notify_all();
    };
    o.cancelled = [j](int64_t) { return j->cancel.load() || Clock::now() >= j->deadline; };
    try {
      const int64_t id = sampler_.add(job->prompts[static_cast<size_t>(c / job->n)], std::move(o), c % job->n);
      running_.push_back({id, {job, c}});
    } catch (const std::exception& e) {
      // Checked by the handler before submitting; reaching this is a bug, not bad input.
      for (auto& [id, r] : running_) {
        if (r.job == job) sampler_.cancel(id);
      }
      end_job(*job, JobEnd::kError, e.what());
      std::lock_guard<std::mutex> lock(mu_);
      running_choices_ -= job->choices() - c;  // the choices never added
      return;
    }
  }
}

void Engine::run() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> admitted;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      for (;;) {
        const auto now = Clock::now();
        for (auto it = queue_.begin(); it != queue_.end();) {
          Job& job = **it;
          const bool gone = job.cancel.load(), late = now >= job.deadline;
          if (gone || late || stopping_) {
            queued_choices_ -= job.choices();
            end_job(job, gone ? JobEnd::kClientGone : late ? JobEnd::kTimeout : JobEnd::kShutdown, "");
            it = queue_.erase(it);
          } else {
            ++it;
          }
        }
        while (!stopping_ && !queue_.empty() && running_choices_ + queue_.front()->choices() <= opts_.max_batch) {
          admitted.push_back(queue_.front());
          queued_choices_ -= queue_.front()->choices();
          running_choices_ += queue_.front()->choices();
          queue_.pop_front();
        }
        stop = stopping_;
        if (stop || !admitted.empty() || !running_.empty()) break;
        cv_.wait_for(lk, 100ms);  // wakes to expire queued jobs even when nothing runs
      }
      metrics_.set_queue(queued_choices_, running_choices_);
    }
    if (stop && running_.empty()) return;
    for (const auto& job : admitted) admit(job);
    if (stop) {
      for (auto& [id, r] : running_) sampler_.cancel(id);
    }
    StepReport rep;
    try {
      rep = sampler_.step();
    } catch (const std::exception& e) {
      // A forward pass that fails (non-finite logits) fails every request it held.
      for (auto& [id, r] : running_) {
        sampler_.cancel(id);
        end_job(*r.job, JobEnd::kError, e.what());
      }
      rep = sampler_.step();  // every request cancelled: no forward pass
    }
    if (rep.requests > 0) metrics_.forward_pass(rep.requests, rep.rows, rep.committed);
    for (int64_t id : rep.finished) {
      auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& e) { return e.first == id; });
      if (it == running_.end()) continue;
      Running r = std::move(it->second);
      running_.erase(it);
      GenerateResult res = sampler_.take(id);
      {
        std::lock_guard<std::mutex> lock(mu_);
        --running_choices_;
        if (running_choices_ == 0 && queue_.empty()) cv_.notify_all();  // drain() waits for this
      }
      Job& job = *r.job;
      if (res.cancelled) {
        const JobEnd why = stop ? JobEnd::kShutdown : job.cancel.load() ? JobEnd::kClientGone : JobEnd::kTimeout;
        end_job(job, why, "");
        for (auto& [other, o] : running_) {
          if (o.job == r.job) sampler_.cancel(other);
        }
        continue;
      }
      std::lock_guard<std::mutex> jl(job.mu);
      if (job.finished) continue;
      const auto c = static_cast<size_t>(r.choice);
      const size_t prompt_len = job.prompts[c / static_cast<size_t>(job.n)].size();
      job.answer[c].assign(res.canvas.begin() + static_cast<std::ptrdiff_t>(prompt_len), res.canvas.end());
      job.nfe[c] = res.nfe;
      job.results[c] = std::move(res);
      job.done[c] = 1;
      job.finished = std::all_of(job.done.begin(), job.done.end(), [](char d) { return d != 0; });
      ++job.version;
      job.cv.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      metrics_.set_queue(queued_choices_, running_choices_);
    }
    if (stop && running_.empty()) return;
  }
}

}  // namespace illada::serve
