// The machine's fp32 FMA peak in GFLOP/s over `threads` threads: the roofline every CPU GEMM
// figure is a fraction of (no kernel can exceed it).
#pragma once

namespace switchyard::bench {
double fma_peak_gflops(unsigned threads);
/// The peak of AVX512_BF16's dot products (vdpbf16ps, zmm) over `threads` threads, in flops of
/// bfloat16 products summed in float; 0 where the host (this binary's -march=native) lacks them.
double bf16_dot_peak_gflops(unsigned threads);
/// The peak of AMX's bfloat16 tile products (tdpbf16ps) over `threads` threads, in flops; 0 where
/// the host lacks them or Linux refuses the process their state.
double amx_bf16_peak_gflops(unsigned threads);
/// Width of the vectors the peak loop uses (512, 256 or 128): the host's widest.
int fma_peak_vector_bits();
}  // namespace switchyard::bench
