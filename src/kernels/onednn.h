// The oneDNN engine every product kernel shares, and what oneDNN can do on this CPU. oneDNN
// picks its own instructions at run time; two things are decided here: the ILLADA_ISA cap is
// passed on to it, and bf16 products fall back to fp32 ones where it has no bf16 kernels.
#pragma once

#include <cstdint>
#include <dnnl.hpp>

#include "util/aligned.h"
#include "util/bf16.h"

namespace illada::onednn {

// The CPU engine. Before the first one is created, an ILLADA_ISA level below the CPU's is
// passed on to oneDNN (dnnl::set_max_cpu_isa), so that ILLADA_ISA=avx2 runs the products an
// AVX2 machine runs. set_isa_cap() does not reach oneDNN, which dispatches once per process.
dnnl::engine& engine();

// Whether bf16 products run on oneDNN's bf16 kernels. oneDNN 2.x has none below AVX-512 (a
// bf16 matmul cannot be created on an AVX2 machine); there, and while isa_level() is below
// kAvx512, the product kernels widen their bf16 operands to fp32 (exact) and run the fp32
// product: the same inputs and fp32 accumulation, so the same results up to summation order.
bool bf16_products();

// The first n values at p, widened to fp32 into buf (grown as needed); returns buf.data().
// Runs on the calling thread (callers may be tasks of a parallel loop) unless parallel.
float* widened(const bf16* p, int64_t n, Buffer<float>& buf, bool parallel = false);

}  // namespace illada::onednn
