// Head-major bf16 attention. Called inside the task loop's parallel region,
// oneDNN runs each product on the calling thread, so one fork per layer
// replaces the product, softmax, conversion and scatter passes, and a task's
// scores never leave its core's L2.
#include "kernels/cpu/attention_bf16.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/bf16_ops.h"
#include "util/isa_dispatch.h"
#include "kernels/cpu/task_gemm.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::cpu {
namespace {

// Scores of one task stay within this many floats (1 MiB), half of one core's
// L2.
constexpr int64_t kTaskScoreFloats = int64_t{1} << 18;

}  // namespace
}  // namespace illada::cpu

#define ILLADA_ISA_BODY "kernels/cpu/attention_bf16_isa.inc"
#include "util/foreach_isa.inc"

namespace illada::cpu {

void attention_bf16_heads(bf16* out, const bf16* q, int64_t q_rows, const bf16* k, const bf16* v,
                          int64_t kv_rows, const AttentionShape& s, Bf16AttentionWorkspace& ws) {
  ILLADA_DISPATCH(attention_bf16_heads, out, q, q_rows, k, v, kv_rows, s, ws)
}

}  // namespace illada::cpu
