// The machine's fp32 FMA peak in GFLOP/s over `threads` threads (a baseline for GEMM figures).
#pragma once

namespace switchyard::bench {
double fma_peak_gflops(unsigned threads);
}
