// AMX's tile registers configured as every kernel here uses them: all eight tiles 16 rows of 64
// bytes (a 16 x 16 float tile of C, 16 x 16 pairs of bfloat16 for A and B). Shared by the GEMM
// template and moe_bench's peak loop, so both run on the same configuration.
#pragma once

namespace switchyard {
namespace cpu {

constexpr int kAmxRows = 16;  // rows of every tile
constexpr int kAmxCols = 16;  // 32-bit columns of every tile: floats of C, pairs of A and B

// The tile configuration (palette 1) with every tile 16 rows of 64 bytes, loaded for the lifetime of
// the object (on one thread: a call of gemm_rows, a peak loop) and released after it, so the tile state
// is not saved on context switches once the work is done.
class AmxTiles {
 public:
  AmxTiles() {
#if defined(__AMX_TILE__)
    struct alignas(64) Config {
      unsigned char palette;
      unsigned char start_row;
      unsigned char reserved[14];
      unsigned short colsb[16];
      unsigned char rows[16];
    } config{};
    config.palette = 1;
    for (int t = 0; t < 8; ++t) {
      config.colsb[t] = kAmxCols * 4;
      config.rows[t] = kAmxRows;
    }
    __asm__ volatile("ldtilecfg %0" : : "m"(config));
#endif
  }
  ~AmxTiles() {
#if defined(__AMX_TILE__)
    __asm__ volatile("tilerelease" ::: "memory");
#endif
  }
  AmxTiles(const AmxTiles&) = delete;
  AmxTiles& operator=(const AmxTiles&) = delete;
};

}  // namespace cpu
}  // namespace switchyard
