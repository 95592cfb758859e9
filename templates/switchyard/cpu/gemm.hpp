// Batched GEMM on the CPU with a fused bias + activation epilogue (see common/gemm_args.h).
// GotoBLAS-style: one call handles one block of the grid, a slice of row tiles of one batch. For
// each chunk of the reduction, a group of A's rows is packed as [kk][row] (sized to half the L2),
// and for each column tile B's panel is packed (sized to L1); a register-blocked micro-kernel
// (kRowTile x kVecs vectors, GCC/clang vector extensions of kVecBytes, sized to the register file:
// 6 x 4 zmm, 8 x 3 NEON q registers, 6 x 2 ymm or xmm) then
// runs each row tile of the group past the panel, accumulating in C. The same micro-kernel serves
// the three layouts: A B (forward), A B^T (data gradient) and A^T B (weight gradient, the
// reduction over the run-time rows); packing absorbs the transposes. 16-bit operands are converted
// to float as they are packed, or, with kDot (bfloat16 on a CPU with AVX512_BF16), packed in pairs
// for its dot products (gemm_bf16_dot.hpp), which with kAmx (a CPU with AMX-BF16) run on AMX's
// tiles in row tiles of 16 instead (gemm_amx.hpp); their sums are kept in a float accumulator of
// the group's rows (capped at kNarrowAccBytes), rounded once in the epilogue. B's pairs, or float32
// B's panels, may also come packed ahead (GemmArgs::b_panels, from gemm_pack_b.hpp): a layer's
// weights packed once, which the micro-kernels then read in place, one contiguous run per tile and chunk.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cpu/gemm_amx.hpp>
#include <switchyard/cpu/gemm_bf16_dot.hpp>
#include <switchyard/cpu/gemm_pack.hpp>
#include <switchyard/cpu/math.hpp>
#include <switchyard/cpu/memory.hpp>
#include <switchyard/cpu/panel_prefetch.hpp>
#include <switchyard/cpu/register_block.hpp>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

// `aux` is the SwiGLU gate input or the pre-activation of the gradient epilogues (else unused).
template <typename A, int kAct>
inline A gemm_epilogue(A value, A aux) {
  if (kAct == kernels::kActRelu) return relu(value);
  if (kAct == kernels::kActGelu) return gelu(value);
  if (kAct == kernels::kActSilu) return silu(value);
  if (kAct == kernels::kActSwiglu) return silu(aux) * value;
  if (kAct == kernels::kActReluGrad) return value * relu_grad(aux);
  if (kAct == kernels::kActGeluGrad) return value * gelu_grad(aux);
  if (kAct == kernels::kActSiluGrad) return value * silu_grad(aux);
  return value;
}

// The share of `tiles` row (or column) tiles that part `part` of `parts` takes.
struct TileRange {
  int begin;
  int end;
};
inline TileRange tile_range(int tiles, int part, int parts) {
  return {static_cast<int>(static_cast<long>(tiles) * part / parts),
          static_cast<int>(static_cast<long>(tiles) * (part + 1) / parts)};
}

// The reduction runs in chunks of kGemmChunk: a chunk of a group's A rows, packed, stays in L2
// while the packed B panel of each column tile stays in L1 and every row tile streams past it.
constexpr int kGemmChunk = kernels::kGemmCpuChunk;
// The float sums of a group of 16-bit C rows: at most this many bytes (fewer rows per group).
constexpr long kNarrowAccBytes = 4l << 20;
// Blocks of at most kFewRowTiles row tiles pack B a span of column tiles at a time: kSpanBytes of
// packed panels, a quarter of a 1 MB L2, so that the span, the rows its packing fetches ahead
// (prefetch_rows.hpp) and A stay in L2. (Eight float32 tiles of 64 floats, 1 MB with the next
// span's lines, took a small batch's forward 308 ms against 287; bfloat16 pairs measured best at
// 256 KB too.)
constexpr int kFewRowTiles = 4;
constexpr long kSpanBytes = 256l << 10;
template <typename P, int kCols, bool kDot>
constexpr int span_tiles() {
  constexpr long tile_bytes = static_cast<long>(kDot ? kGemmChunk / 2 : kGemmChunk) * kCols * sizeof(P);
  return kSpanBytes / tile_bytes > 1 ? static_cast<int>(kSpanBytes / tile_bytes) : 1;
}

// acc = (load_c ? C : 0) + sum over kk of A(r, kk) * B(kk, j) for a kRowTile x kVecs vectors block
// of C (row pitch ldc). `ap` is A packed as [kk][kPackRows] (a tile's first kRowTile rows),
// `bp` B's panel as [kk][kVecs * kLanes]. `pacer` spaces the caller's prefetches (paced_steps).
template <typename T, int kLanes, int kRowTile, int kVecs, int kPackRows = kRowTile, typename Pacer>
inline void gemm_micro(const T* __restrict ap, const T* __restrict bp, T* __restrict c, long ldc, int k_len,
                       bool load_c, Pacer& pacer) {
  typedef T Vec __attribute__((vector_size(sizeof(T) * kLanes)));
  Vec acc[kRowTile][kVecs];
  start_register_block(acc, c, ldc, load_c);
  paced_steps(k_len, pacer, [&](int kk) {
    Vec bv[kVecs];
    load_panel_step(bv, bp + static_cast<long>(kk) * kVecs * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < kRowTile; ++r) {
      const T x = ap[kk * kPackRows + r];
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) acc[r][v] += x * bv[v];
    }
  });
  finish_register_block(acc, c, ldc, load_c);
}

// The micro-kernel for the `live` rows of a tile (fewer than kRowTile in the last one: a small
// batch's expert of 16 rows is tiles of 6, 6 and 4, not three of 6), so rows past C's end are
// never touched and no work is spent on them.
template <typename A, typename P, int kLanes, int kRowTile, int kVecs, bool kDot, int kRows = kRowTile, typename Pacer>
inline void gemm_micro_live(int live, const P* ap, const P* bp, A* c, long ldc, int depth, bool load_c, Pacer& pacer) {
  if constexpr (kRows > 1) {
    if (live < kRows)
      return gemm_micro_live<A, P, kLanes, kRowTile, kVecs, kDot, kRows - 1>(live, ap, bp, c, ldc, depth, load_c,
                                                                             pacer);
  }
  if constexpr (kDot)
    gemm_micro_bf16_dot<kRows, kVecs, kRowTile>(ap, bp, c, ldc, depth, load_c, pacer);
  else
    gemm_micro<A, kLanes, kRows, kVecs, kRowTile>(ap, bp, c, ldc, depth, load_c, pacer);
}

// A row of a column tile's sums, with bias and epilogue, stored to C. 16-bit C has its float sums
// apart; float C is its own sums, written in place, so the sums are copied first: the loop that
// writes C then reads nothing it writes and runs in vectors (converting to 16 bits one element at
// a time cost 14% of a bfloat16 weight gradient).
template <typename T, bool kBias, int kAct, int kCols>
inline void gemm_store_row(const compute_t<T>* sums, const T* __restrict bias, const T* __restrict aux, T* out) {
  using A = compute_t<T>;
  constexpr bool kAux = kernels::gemm_uses_aux(kAct);
  A row[kCols];
  for (int j = 0; j < kCols; ++j) row[j] = sums[j];
  for (int j = 0; j < kCols; ++j)
    out[j] = store<T>(gemm_epilogue<A, kAct>(row[j] + (kBias ? load(bias[j]) : A(0)), kAux ? load(aux[j]) : A(0)));
}

// What one call of gemm_rows computes. Forward and data gradient: C [out_rows, N] =
// epilogue(A op(B) + bias) reducing over K. Weight gradient (kTransA): C [K, N] = A^T B reducing
// over the run-time rows, so out_rows is K and `reduce` is the rows.
template <typename T>
struct GemmRowsArgs {
  const T* a;
  const T* b;
  const T* bias;
  const T* aux;
  T* c;
  int out_rows;
  int reduce;
  const unsigned* b_panels;  // B's whole column tiles packed ahead (GemmPackArgs), or null
};

// Where a group's sums are kept: C itself (float C), or the float sums of 16-bit C, the group's
// rows from row 0 with C's pitch, or (no scratch) a slice of columns from `col0` with its own
// pitch. The pitch is a constant, so the micro-kernels' row addresses are too (a pitch in a
// register cost AArch64's 8 x 3 block three of its 24 accumulators).
template <typename A, int kPitch>
struct GemmAcc {
  static constexpr long pitch = kPitch;
  A* data;
  int col0;
  A* at(int row, int col) const { return data + static_cast<long>(row) * kPitch + (col - col0); }
};

// One chunk of the reduction for the column tiles [n0, n_end) of kVecs vectors, over the packed
// A tiles [t0, t1) of a group, summing into `acc`; `last` applies bias and epilogue and writes C.
// `panel` holds `span` panels: B [K, N] is packed that many column tiles at a time (gemm_pack_b_span).
template <typename T, int kN, int kLdb, bool kTransB, bool kBias, int kAct, int kLanes, int kRowTile, int kVecs,
          bool kDot, bool kAmx, typename Acc>
void gemm_chunk_columns(const GemmRowsArgs<T>& g, const packed_t<T, kDot>* apack, packed_t<T, kDot>* panel, int span,
                        Acc acc, int t0, int t1, int n0, int n_end, int k0, int k_len, const unsigned* b_panels) {
  using A = compute_t<T>;
  using P = packed_t<T, kDot>;
  constexpr int kCols = kVecs * kLanes;
  const int depth = packed_depth<kDot, kAmx>(k_len);
  const bool first = k0 == 0, last = k0 + k_len == g.reduce;
  int packed_from = n0, packed_end = n0;  // the columns of the panels packed last
  PanelPrefetch next;
  long prefetch_share = 0;
  // This chunk's pairs of the packed panel of the column tile at n: one contiguous run, which the
  // next tile's micro-kernels fetch ahead as they do a packed span's successor.
  const long panel_words = static_cast<long>(packed_depth<kDot, kAmx>(g.reduce)) * kCols;
  auto packed_panel = [&](int n) {
    return b_panels + n / kCols * panel_words + static_cast<long>(packed_depth<kDot, kAmx>(k0)) * kCols;
  };
  constexpr bool kPanels = kReadsPanels<T, kDot, kAmx>;
  for (; n0 + kCols <= n_end; n0 += kCols) {
    if (kPanels && b_panels != nullptr) {
      packed_from = n0;
      prefetch_share = n0 + 2 * kCols > n_end ? next.stop()
                                              : next.start(packed_panel(n0 + kCols), 0, 1,
                                                           static_cast<long>(depth) * kCols * sizeof(P), t1 - t0);
    } else if (kTransB || span == 1) {
      if constexpr (kDot)
        gemm_pack_b_pairs<kN, kLdb, kTransB, kCols>(g.b, panel, n0, k0, k_len, depth);
      else
        gemm_pack_b<T, kN, kLdb, kTransB, kCols>(g.b, panel, n0, k0, k_len);
      packed_from = n0;
      const int next_n = n0 + kCols;
      if (next_n + kCols > n_end)
        prefetch_share = next.stop();
      else if (kTransB)
        prefetch_share = next.start(g.b + static_cast<long>(next_n) * kLdb + k0, kLdb * sizeof(T), kCols,
                                    k_len * sizeof(T), t1 - t0);
      else
        prefetch_share =
            next.start(g.b + static_cast<long>(k0) * kN + next_n, kN * sizeof(T), k_len, kCols * sizeof(T), t1 - t0);
    } else if (n0 >= packed_end) {
      const int left = (n_end - n0) / kCols;
      packed_from = n0;
      packed_end = n0 + (left < span ? left : span) * kCols;
      const int next_end = packed_end + span * kCols < n_end ? packed_end + span * kCols : n_end / kCols * kCols;
      const int next_cols = next_end > packed_end ? next_end - packed_end : 0;
      // The packing fetches its rows ahead itself, and the next span is fetched into L2 under this
      // span's micro-kernels where they take long enough to hide it: Zen 5's dot products and
      // FMAs (a small batch's bfloat16 forward 125-134 -> 89-98 ms, float32 230-243 -> 185-199),
      // not AMX's tiles, whose micro-kernels are short and whose prefetches then competed with the
      // packing's loads (a small batch's bfloat16 GEMMs 54 -> 70 ms on an Intel AMX VM).
      if (kAmx || next_cols == 0)
        prefetch_share = next.stop();
      else
        prefetch_share = next.start(g.b + static_cast<long>(k0) * kN + packed_end, kN * sizeof(T), k_len,
                                    next_cols * sizeof(T), static_cast<long>(t1 - t0) * ((packed_end - n0) / kCols));
      if constexpr (kDot)
        gemm_pack_b_span_pairs<kN, kCols>(g.b, panel, n0, k0, k_len, (packed_end - n0) / kCols, depth, next_cols);
      else
        gemm_pack_b_span<T, kN, kCols>(g.b, panel, n0, k0, k_len, (packed_end - n0) / kCols, next_cols);
    }
    const P* bp = kPanels && b_panels != nullptr
                      ? reinterpret_cast<const P*>(packed_panel(n0))
                      : panel + static_cast<long>((n0 - packed_from) / kCols) * depth * kCols;
    next.pace(prefetch_share, kAmx ? depth / kAmxPairs : depth);
    for (int t = t0; t < t1; ++t) {
      const int m0 = t * kRowTile;
      const int live = g.out_rows - m0 < kRowTile ? g.out_rows - m0 : kRowTile;
      A* block = acc.at(m0 - t0 * kRowTile, n0);
      const P* ap = apack + (t - t0) * kRowTile * depth;
      if constexpr (kAmx)
        gemm_micro_amx<kVecs>(ap, bp, block, acc.pitch, live, depth, !first, next);
      else
        gemm_micro_live<A, P, kLanes, kRowTile, kVecs, kDot>(live, ap, bp, block, acc.pitch, depth, !first, next);
      if (!last || (!kIsNarrow<T> && !kBias && kAct == kernels::kActNone)) continue;
      for (int r = 0; r < live; ++r) {
        const long at = static_cast<long>(m0 + r) * kN + n0;
        gemm_store_row<T, kBias, kAct, kCols>(block + r * acc.pitch, kBias ? g.bias + n0 : nullptr,
                                              kernels::gemm_uses_aux(kAct) ? g.aux + at : nullptr, g.c + at);
      }
    }
  }
}

// Columns past the last whole vector (all of them where N is below a vector, as in a gate's
// logits over a few experts): dot products, each summed in kParts independent partial sums
// that run in parallel (a vector where A and B are contiguous along the reduction) rather than
// one chain of dependent additions.
template <typename T, int kN, int kLda, int kLdb, bool kTransA, bool kTransB, bool kBias, int kAct>
void gemm_tail_columns(const GemmRowsArgs<T>& g, int n_begin, int m_begin, int m_end) {
  using A = compute_t<T>;
  constexpr int kParts = 64 / static_cast<int>(sizeof(A));
  auto a_at = [&](int m, long kk) {
    return load(kTransA ? g.a[kk * kLda + m] : g.a[static_cast<long>(m) * kLda + kk]);
  };
  auto b_at = [&](int n, long kk) { return load(kTransB ? g.b[static_cast<long>(n) * kLdb + kk] : g.b[kk * kN + n]); };
  for (int m = m_begin; m < m_end; ++m)
    for (int n = n_begin; n < kN; ++n) {
      A parts[kParts] = {};
      long kk = 0;
      for (; kk + kParts <= g.reduce; kk += kParts)
#pragma GCC unroll 16
        for (int j = 0; j < kParts; ++j) parts[j] += a_at(m, kk + j) * b_at(n, kk + j);
      A sum = A(0);
      for (int j = 0; j < kParts; ++j) sum += parts[j];
      for (; kk < g.reduce; ++kk) sum += a_at(m, kk) * b_at(n, kk);
      const long at = static_cast<long>(m) * kN + n;
      g.c[at] =
          store<T>(gemm_epilogue<A, kAct>(sum + (kBias ? load(g.bias[n]) : A(0)), g.aux ? load(g.aux[at]) : A(0)));
    }
}

// Tiles per group for `tiles` row tiles in groups of about `group` tiles: equal groups, and one
// group fewer where that stretches them by at most a quarter (1024 rows in groups of 1020 would
// read all of B again for the last 4 rows).
inline int group_tiles_for(int tiles, int group) {
  int groups = (tiles + group - 1) / group;
  if (groups > 1 && 4 * tiles <= 5 * group * (groups - 1)) --groups;
  return groups <= 1 ? (tiles > 0 ? tiles : 1) : (tiles + groups - 1) / groups;
}

// Where the thread's scratch is refused (no memory), gemm_rows works in a small stack frame
// instead: one row tile at a time over reduction chunks of kFallbackChunk steps, 16-bit C's sums
// kFallbackTiles column tiles at a time (the frame is then about 30 KB whatever N is: the pool's
// caller runs blocks too, on an application thread whose stack may be 128 KB).
constexpr int kFallbackChunk = 64;
constexpr int kFallbackTiles = 2;

// The row tiles [g0, g1) of a group over the columns [n0, n_end) (whole tiles), and with `tail`
// the whole vectors past the last full tile [kFullCols, kVecCols): A packed a chunk of `chunk`
// steps at a time into `apack`, reused by every column tile; B's panels in `panels` (`span` of them).
template <typename T, int kN, int kLda, int kLdb, bool kTransA, bool kTransB, bool kBias, int kAct, int kLanes,
          int kRowTile, int kVecs, bool kDot, bool kAmx, typename Acc>
void gemm_group(const GemmRowsArgs<T>& g, packed_t<T, kDot>* apack, packed_t<T, kDot>* panels, int span, Acc acc,
                int g0, int g1, int n0, int n_end, bool tail, int chunk) {
  using P = packed_t<T, kDot>;
  constexpr int kFullCols = kN / (kVecs * kLanes) * (kVecs * kLanes), kVecCols = kN / kLanes * kLanes;
  for (int k0 = 0; k0 < g.reduce; k0 += chunk) {
    const int k_len = g.reduce - k0 < chunk ? g.reduce - k0 : chunk;
    for (int t = g0; t < g1; ++t) {
      const int m0 = t * kRowTile;
      const int live = g.out_rows - m0 < kRowTile ? g.out_rows - m0 : kRowTile;
      P* out = apack + (t - g0) * kRowTile * packed_depth<kDot, kAmx>(k_len);
      if constexpr (kAmx)
        gemm_pack_a_amx<kLda, kTransA>(g.a, out, m0, live, k0, k_len);
      else if constexpr (kDot)
        gemm_pack_a_pairs<kLda, kTransA, kRowTile>(g.a, out, m0, live, k0, k_len);
      else
        gemm_pack_a<T, kLda, kTransA, kRowTile>(g.a, out, m0, live, k0, k_len);
    }
    if (n_end > n0)
      gemm_chunk_columns<T, kN, kLdb, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kDot, kAmx>(
          g, apack, panels, span, acc, g0, g1, n0, n_end, k0, k_len, g.b_panels);
    if (kVecs > 1 && tail)  // whole vectors past the last full tile, one at a time, packed from B
      gemm_chunk_columns<T, kN, kLdb, kTransB, kBias, kAct, kLanes, kRowTile, 1, kDot, kAmx>(
          g, apack, panels, 1, acc, g0, g1, kFullCols, kVecCols, k0, k_len, nullptr);
  }
}

// gemm_rows without scratch: see kFallbackChunk.
template <typename T, int kN, int kLda, int kLdb, bool kTransA, bool kTransB, bool kBias, int kAct, int kLanes,
          int kRowTile, int kVecs, bool kDot, bool kAmx>
void gemm_rows_in_stack(const GemmRowsArgs<T>& g, TileRange range, int n_begin, int n_end, bool last_cols) {
  using A = compute_t<T>;
  using P = packed_t<T, kDot>;
  constexpr int kCols = kVecs * kLanes, kSliceCols = kFallbackTiles * kCols;
  constexpr int kFullCols = kN / kCols * kCols, kVecCols = kN / kLanes * kLanes;
  alignas(64) P panel[kFallbackChunk * kCols];
  alignas(64) P apack[kRowTile * kFallbackChunk];
  alignas(64) A sums[kIsNarrow<T> ? kRowTile * kSliceCols : 1];
  const bool tail = kVecs > 1 && last_cols && kVecCols > kFullCols;
  for (int t = range.begin; t < range.end; ++t) {
    if constexpr (!kIsNarrow<T>) {
      const GemmAcc<A, kN> acc{reinterpret_cast<A*>(g.c) + static_cast<long>(t) * kRowTile * kN, 0};
      gemm_group<T, kN, kLda, kLdb, kTransA, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kDot, kAmx>(
          g, apack, panel, 1, acc, t, t + 1, n_begin, n_end, tail, kFallbackChunk);
      continue;
    }
    for (int s = n_begin; s < n_end; s += kSliceCols)
      gemm_group<T, kN, kLda, kLdb, kTransA, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kDot, kAmx>(
          g, apack, panel, 1, GemmAcc<A, kSliceCols>{sums, s}, t, t + 1, s,
          s + kSliceCols < n_end ? s + kSliceCols : n_end, false, kFallbackChunk);
    if (tail)
      gemm_group<T, kN, kLda, kLdb, kTransA, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kDot, kAmx>(
          g, apack, panel, 1, GemmAcc<A, kSliceCols>{sums, kFullCols}, t, t + 1, 0, 0, true, kFallbackChunk);
  }
}

// C's row tiles [range.begin, range.end), in groups of kGroupRows rows whose A chunk is packed
// once (in the thread's scratch, kept between launches) and reused by every column tile. 16-bit C
// sums a group in a float accumulator there too.
template <typename T, int kN, int kLda, int kLdb, bool kTransA, bool kTransB, bool kBias, int kAct, int kLanes,
          int kRowTile, int kVecs, int kGroupRows, bool kDot, bool kAmx>
void gemm_rows(const GemmRowsArgs<T>& g, TileRange range, TileRange col_tiles, bool last_cols) {
  using A = compute_t<T>;
  using P = packed_t<T, kDot>;  // as many of them as of A per packed step: pairs take half
  static_assert(sizeof(P) == sizeof(A), "gemm: the packed and accumulated elements share the scratch");
  constexpr int kCols = kVecs * kLanes;
  constexpr int kVecCols = kN / kLanes * kLanes;
  const int m_begin = range.begin * kRowTile,
            m_end = range.end * kRowTile < g.out_rows ? range.end * kRowTile : g.out_rows;
  const int n_begin = col_tiles.begin * kCols, n_end = last_cols ? kN : col_tiles.end * kCols;
  if (g.reduce == 0) {  // a weight gradient over no rows
    for (long m = m_begin; m < m_end; ++m)
      for (int n = n_begin; n < n_end; ++n) g.c[m * kN + n] = store<T>(A(0));
    return;
  }
  [[maybe_unused]] AmxTilesFor<kAmx> tiles;
  int group_tiles = group_tiles_for(range.end - range.begin, (kGroupRows + kRowTile - 1) / kRowTile);
  if (kIsNarrow<T>) {
    const long cap = kNarrowAccBytes / (static_cast<long>(sizeof(A)) * kRowTile * kN);
    group_tiles = group_tiles < cap ? group_tiles : (cap > 1 ? static_cast<int>(cap) : 1);
  }
  // A few row tiles (a small batch's experts) use each B panel a few times, so reading B is
  // most of the work: pack a span of column tiles at a time, each row of B one long run.
  const int span =
      g.b_panels == nullptr && !kTransB && range.end - range.begin <= kFewRowTiles ? span_tiles<P, kCols, kDot>() : 1;
  const long pack_count = static_cast<long>(group_tiles) * kRowTile * kGemmChunk;
  const long acc_count = kIsNarrow<T> ? static_cast<long>(group_tiles) * kRowTile * kN : 0;
  const long panel_count = static_cast<long>(span) * kGemmChunk * kCols;
  A* heap = static_cast<A*>(sy_cpu_thread_scratch(sizeof(A) * (pack_count + acc_count + panel_count)));
  if (heap == nullptr) {
    gemm_rows_in_stack<T, kN, kLda, kLdb, kTransA, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kDot, kAmx>(
        g, range, n_begin, col_tiles.end * kCols, last_cols);
  } else {
    P* apack = reinterpret_cast<P*>(heap);
    P* panels = reinterpret_cast<P*>(heap + pack_count + acc_count);
    for (int g0 = range.begin; g0 < range.end; g0 += group_tiles) {
      const int g1 = g0 + group_tiles < range.end ? g0 + group_tiles : range.end;
      const GemmAcc<A, kN> acc{
          kIsNarrow<T> ? heap + pack_count : reinterpret_cast<A*>(g.c) + static_cast<long>(g0) * kRowTile * kN, 0};
      gemm_group<T, kN, kLda, kLdb, kTransA, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kDot, kAmx>(
          g, apack, panels, span, acc, g0, g1, n_begin, col_tiles.end * kCols, last_cols, kGemmChunk);
    }
  }
  if (last_cols) gemm_tail_columns<T, kN, kLda, kLdb, kTransA, kTransB, kBias, kAct>(g, kVecCols, m_begin, m_end);
}

template <typename T, int kN, int kK, bool kTransA, bool kTransB, bool kBias, int kAct, int kVecBytes, int kRowTile,
          int kVecs, int kGroupRows, bool kBf16Dot, bool kAmx>
void gemm(const kernels::GemmArgs& args, unsigned block, unsigned grid) {
  static_assert(kN > 0 && kK > 0, "gemm: N and K must be positive");
  static_assert(kVecBytes >= 16 && kVecBytes <= 64, "gemm: vec_bytes is 16, 32 or 64");
  static_assert(kAmx ? kRowTile == kAmxRows : kRowTile >= 1 && kRowTile <= 8,
                "gemm: row tile must be in [1, 8], or 16 with amx");
  static_assert(kVecs >= 1 && kVecs <= 4, "gemm: tile_vecs must be in [1, 4]");
  static_assert(kGroupRows >= kRowTile, "gemm: a group holds at least one row tile");
  static_assert(kAct >= kernels::kActNone && kAct <= kernels::kActSiluGrad, "gemm: unknown activation");
  static_assert(!kTransA || (!kTransB && !kBias && kAct == kernels::kActNone),
                "gemm: the trans_a (weight gradient) form has no B transpose, bias or epilogue");
  static_assert(!kBf16Dot || (kIsBf16<T> && kVecBytes == 64),
                "gemm: bf16_dot is for bfloat16 operands in 64-byte vectors");
  static_assert(!kAmx || (kBf16Dot && kVecs == 4), "gemm: amx packs B as bf16_dot does, in 4 tiles of 16 columns");
#if !defined(__AVX512BF16__)
  static_assert(!kBf16Dot, "gemm: bf16_dot needs a CPU with AVX512_BF16 (vdpbf16ps)");
#endif
#if !defined(__AMX_TILE__) || !defined(__AMX_BF16__)
  static_assert(!kAmx, "gemm: amx needs a CPU with AMX-TILE and AMX-BF16 (tdpbf16ps)");
#endif
  constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(compute_t<T>));  // packed operands
  static_assert(kVecs * kLanes == kernels::gemm_cpu_tile_cols(kVecs, kVecBytes, sizeof(compute_t<T>)));
  // Blocks are laid out batch-major; each takes an equal share of its batch's tiles (see
  // gemm_cpu_split: rows first, then columns where the batch's rows are too few for its blocks).
  const int per_batch = static_cast<int>(grid / static_cast<unsigned>(args.batch));
  const int batch = static_cast<int>(block) / per_batch;
  const int part = static_cast<int>(block) % per_batch;
  const int rows = kernels::rows_used(args.row_counts, batch, args.rows);
  GemmRowsArgs<T> g{
      static_cast<const T*>(args.a) + args.a_batch_stride * batch,
      static_cast<const T*>(args.b) + args.b_batch_stride * batch,
      kBias ? static_cast<const T*>(args.bias) + static_cast<long>(kN) * batch : nullptr,
      kernels::gemm_uses_aux(kAct) ? static_cast<const T*>(args.aux) + args.c_batch_stride * batch : nullptr,
      static_cast<T*>(args.c) + args.c_batch_stride * batch,
      kTransA ? kK : rows,
      kTransA ? rows : kK,
      kReadsPanels<T, kBf16Dot, kAmx> && !kTransA && args.b_panels != nullptr
          ? static_cast<const unsigned*>(args.b_panels) + args.b_panels_batch_stride * batch
          : nullptr};
  const int row_tiles = (g.out_rows + kRowTile - 1) / kRowTile, col_tiles = kN / (kVecs * kLanes);
  const kernels::GemmCpuSplit split = kernels::gemm_cpu_split(per_batch, row_tiles, col_tiles);
  if (part >= split.rows * split.cols) return;
  const TileRange row_range = tile_range(row_tiles, part / split.cols, split.rows);
  const TileRange col_range = tile_range(col_tiles, part % split.cols, split.cols);
  const bool last_cols = part % split.cols == split.cols - 1;
  if (kTransA)  // A^T: A is [rows, K], B [rows, N]
    gemm_rows<T, kN, kK, kN, true, false, false, kernels::kActNone, kLanes, kRowTile, kVecs, kGroupRows, kBf16Dot,
              kAmx>(g, row_range, col_range, last_cols);
  else
    gemm_rows<T, kN, kK, kK, false, kTransB, kBias, kAct, kLanes, kRowTile, kVecs, kGroupRows, kBf16Dot, kAmx>(
        g, row_range, col_range, last_cols);
}

}  // namespace cpu
}  // namespace switchyard
