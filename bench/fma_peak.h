// The machine's fp32 FMA peak in GFLOP/s over `threads` threads: the roofline every CPU GEMM
// figure is a fraction of (no kernel can exceed it).
#pragma once

namespace switchyard::bench {
double fma_peak_gflops(unsigned threads);
/// Width of the vectors the peak loop uses (512, 256 or 128): the host's widest.
int fma_peak_vector_bits();
}  // namespace switchyard::bench
