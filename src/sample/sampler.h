// The step-wise sampling engine behind generate() and the server's step-level batching:
// requests join between steps, each step() runs ONE packed forward pass over every request that
// has a position to decide, and every request moves through its own blocks and steps with its
// own options (lengths, steps, threshold, cache mode, temperature, CFG, stops). A request's
// tokens depend only on its own prompt, options and random stream, never on what it shares a
// pass with (the packed forward is batch-invariant: tests/sample/batch_invariance_test.cc).
//
//   Sampler s(model);
//   const int64_t id = s.add(prompt, options);
//   while (s.step().requests > 0) {}
//   GenerateResult r = s.take(id);
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sample/generate.h"

namespace illada {

// What one step() did.
struct StepReport {
  int64_t requests = 0;   // requests in this step's forward pass (0: no pass was run)
  int64_t sequences = 0;  // packed sequences, CFG's unconditional twins included
  int64_t rows = 0;       // token rows fed to the model
  int64_t committed = 0;  // positions committed by this step, all requests together
  std::vector<int64_t> finished;  // ids of the requests that finished in this step()
};

class Sampler {
 public:
  // batch_invariant: every forward pass in batch-invariant products (GenerateOptions); the
  // per-request options' own field is not read.
  explicit Sampler(const Model& model, bool batch_invariant = true);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Checks the prompt and options (Error with generate()'s messages; `stream` names the prompt
  // in them) and queues the request: it takes its first step in the next step(). `stream` keys
  // the request's random draws (Gumbel noise, random remasking) together with opts.seed, and is
  // StepInfo::request and the argument of opts.cancelled; generate() gives each prompt its
  // index. Returns the request's id.
  int64_t add(std::vector<int32_t> prompt, GenerateOptions opts, int64_t stream = 0);

  // The checks add() makes, without adding: throws Error as add() would.
  static void check(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& opts,
                    int64_t stream = 0);

  // One packed forward pass for every unfinished request with a masked position to decide,
  // then each one's commits, its on_step callback, and its move to the next block or to the
  // end. Requests whose cancel() was called or whose opts.cancelled says so finish first.
  // Throws Error if the forward pass does (non-finite logits); the requests then stay as they
  // were before this step (cancel them, or step again).
  StepReport step();

  // Finishes the request before its next step (its result has `cancelled` set). Unknown or
  // finished ids are ignored.
  void cancel(int64_t id);

  bool finished(int64_t id) const;   // true also for ids not (or no longer) held
  int64_t unfinished() const;        // requests that still take steps
  int64_t held() const;              // requests added and not yet taken

  // The result of a finished request, which then leaves the sampler. Throws Error for an
  // unknown id or one still running.
  GenerateResult take(int64_t id);

 private:
  struct Request;
  struct Scratch;
  void prepare(Request& rq);
  void finish(Request& rq, bool cancelled);

  const Model& model_;
  const bool batch_invariant_;
  std::vector<std::unique_ptr<Request>> requests_;  // in the order they were added
  std::unique_ptr<Scratch> scratch_;
  int64_t next_id_ = 0;
};

}  // namespace illada
