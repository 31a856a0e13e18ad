// Single-threaded bf16 products for one task of an already parallel loop (attention's
// per-head products, forward and backward). oneDNN runs each on the calling thread with the
// caller's scratchpad: oneDNN's own global scratchpad is shared, and two tasks running
// products at once would corrupt each other's. Every thread keeps its own bound memory objects
// and stream per product shape, so a warm call allocates nothing and takes no lock (the
// allocations and the cache lock were about a tenth of a small model's training step).
#pragma once

#include <cstdint>

#include "util/aligned.h"
#include "util/bf16.h"

namespace illada::cpu {

// All dense, fp32 C [m, n] (row stride n):
//   kScores:  C = A [m, k] · B^T, B [n, k]
//   kNN:      C = A [m, k] · B [k, n]
//   kAtNN:    C = A^T · B, A stored [k, m], B [k, n]; kAtNNAcc: C += the same.
enum class TaskProductKind { kScores, kNN, kAtNN, kAtNNAcc };

// Creates (JIT-compiles) the product if new. Call it before the parallel loop, so that no
// task waits on another's creation and an error is thrown outside the parallel region.
void prepare_task_product(int64_t m, int64_t n, int64_t k, TaskProductKind kind);

// Runs the product on the calling thread; scratch is the thread's scratchpad (grown as needed).
void run_task_product(float* c, const bf16* a, const bf16* b, int64_t m, int64_t n, int64_t k,
                      TaskProductKind kind, Buffer<uint8_t>& scratch);

}  // namespace illada::cpu
