#include "jit/kernels/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "jit/kernels/elementwise.h"

namespace switchyard::kernels {
namespace {

// Whether bfloat16 GEMMs pack their operands in pairs for AVX512_BF16's dot products: where the CPU
// compiled for has them and 64-byte vectors to hold them, and either runs them at the FMA's rate
// (AMD) or has AMX's tiles, which take the same pairs. Elsewhere (Intel without usable AMX: Cooper
// Lake, or Sapphire Rapids under a Linux before 5.16) float FMAs on converted operands are 2x faster.
bool uses_bf16_dot(const Target& target, DType dtype, int vec_bytes) {
  return dtype == DType::kBFloat16 && vec_bytes == 64 && target.has(kCpuBf16Dot) &&
         (target.has(kCpuFastBf16Dot) || target.has(kCpuAmxBf16));
}

// Whether bfloat16 GEMMs run on AMX's tiles: where they use the dot products' pairs and the CPU
// compiled for has AMX-BF16 (usable: see host_cpu_features).
bool uses_amx(const Target& target, bool bf16_dot) {
  return bf16_dot && target.has(kCpuAmxBf16);
}

// The CPU micro-kernel's block of C in vector registers, sized to the register file of the CPU
// compiled for, with 24 accumulators where there are 32 registers: 6 x 4 zmm on AVX-512, 8 x 3 q
// registers on AArch64 (BLIS's armv8a 8 x 12 floats: 24 accumulators, 3 of B, 2 of A's 8 rows for
// fmla by element); 6 x 2 of the 16 ymm/xmm registers of AVX2 and SSE (BLIS Haswell's 6 x 16).
struct CpuRegisterBlock {
  int rows;
  int vecs;
};
// With AMX, four C tiles of 16 x 16 floats (the other four tile registers hold A's tile and B's).
CpuRegisterBlock cpu_register_block(const Target& target, int vec_bytes, bool amx) {
  if (amx) return {16, 4};
  if (vec_bytes == 64) return {6, 4};
  if (target.has(kCpu32VectorRegisters)) return {8, 3};
  return {6, 2};
}

// A's rows packed per chunk of the reduction: half of the L2 of the CPU compiled for
// (CpuTarget::l2_bytes), the rest for B's panels and C, in whole row tiles. 16-bit operands are
// packed as float, or keep their 16 bits for dot products.
int64_t cpu_group_rows(const Target& target, DType dtype, bool bf16_dot, int row_tile) {
  const long l2 = target.cpu_l2_bytes();
  const int64_t packed_bytes = bf16_dot ? 2 : std::max<int64_t>(static_cast<int64_t>(dtype_size(dtype)), 4);
  const int64_t rows = l2 / 2 / (kGemmCpuChunk * packed_bytes);
  return std::clamp<int64_t>(rows / row_tile * row_tile, 4 * row_tile, 4096);
}

// The SIMT GEMM's square tile: 128 (8 x 8 accumulators a thread) unless N or K is 64 or fewer (the
// gate's few experts as columns, as the reduction of its data gradient or as the rows of its
// weight gradient). Such GEMMs are bound by memory: 64 x 64 tiles give them four times the blocks
// and leave no lanes on zeros; and a whole reduction in one step (K = 8) spilled the 128 x 128
// tile's registers (ptxas hoists all its shared loads).
int64_t gemm_simt_tile(const GemmShape& shape) {
  const bool narrow = shape.n <= kGemmSimtTileNarrow || shape.k <= kGemmSimtTileNarrow;
  return narrow ? kGemmSimtTileNarrow : kGemmSimtTile;
}

// SWITCHYARD_GEMM: the best GEMM candidate a CUDA target may use ("auto": wgmma on sm_90a, then
// mma.sync, then SIMT; "mma": no wgmma; "simt": CUDA cores only), read once per process so that
// warm and the run it serves choose the same kernels.
enum class GemmCeiling { kAuto, kMma, kSimt };
GemmCeiling gemm_ceiling() {
  static const GemmCeiling ceiling = [] {
    const char* raw = std::getenv("SWITCHYARD_GEMM");
    const std::string text = raw ? raw : "";
    if (text.empty() || text == "auto") return GemmCeiling::kAuto;
    if (text == "mma") return GemmCeiling::kMma;
    if (text == "simt") return GemmCeiling::kSimt;
    SY_THROW(UserError) << "SWITCHYARD_GEMM='" << text << "' is not a GEMM choice; expected auto, mma or simt";
  }();
  return ceiling;
}

}  // namespace

// The weight-gradient form (trans_a) has no B transpose, bias or epilogue.
void check_trans_a(const KernelSpec& spec) {
  SY_CHECK(!spec.bool_param("trans_a") ||
           (!spec.bool_param("trans_b") && !spec.bool_param("bias") && spec.int_param("activation") == kActNone))
      << "kernel spec " << spec.to_string() << ": trans_a takes no trans_b, bias or activation";
}

KernelFamily gemm_family() {
  KernelFamily f;
  f.name = "gemm";
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"n", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"k", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"trans_a", ParamDecl::Kind::kBool},
              {"trans_b", ParamDecl::Kind::kBool},
              {"bias", ParamDecl::Kind::kBool},
              {"activation", ParamDecl::Kind::kInt, kActNone, kActSiluGrad},
              {"vec_bytes", ParamDecl::Kind::kInt, 16, 64},
              {"row_tile", ParamDecl::Kind::kInt, 1, 16},
              {"tile_vecs", ParamDecl::Kind::kInt, 1, 4},
              {"group_rows", ParamDecl::Kind::kInt, 1, 4096},
              {"bf16_dot", ParamDecl::Kind::kBool},
              {"amx", ParamDecl::Kind::kBool}};
  f.cpu_header = "switchyard/cpu/gemm.hpp";
  f.cpu_function = "switchyard::cpu::gemm";
  f.args_type = "switchyard::kernels::GemmArgs";
  f.cpu_dtypes = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  f.check = [](const KernelSpec& spec) {
    int64_t v = spec.int_param("vec_bytes");
    SY_CHECK(v == 16 || v == 32 || v == 64) << "kernel spec " << spec.to_string() << ": vec_bytes must be 16, 32 or 64";
    SY_CHECK(spec.target.is_cpu()) << "kernel spec " << spec.to_string() << ": gemm is a CPU family";
    check_trans_a(spec);
    SY_CHECK(!spec.bool_param("bf16_dot") || (spec.dtype_param("dtype") == DType::kBFloat16 && v == 64))
        << "kernel spec " << spec.to_string() << ": bf16_dot is for bfloat16 with vec_bytes 64";
    const int64_t row_tile = spec.int_param("row_tile");
    SY_CHECK(spec.bool_param("amx") ? spec.bool_param("bf16_dot") && row_tile == 16 && spec.int_param("tile_vecs") == 4
                                    : row_tile <= 8)
        << "kernel spec " << spec.to_string()
        << ": amx is for bf16_dot with row_tile 16 and tile_vecs 4; without it row_tile is at most 8";
  };
  return f;
}

KernelFamily gemm_pack_b_family() {
  KernelFamily f;
  f.name = "gemm_pack_b";
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"n", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"k", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"trans_b", ParamDecl::Kind::kBool},
              {"tile_cols", ParamDecl::Kind::kInt, 4, 256}};
  f.cpu_header = "switchyard/cpu/gemm_pack_b.hpp";
  f.cpu_function = "switchyard::cpu::gemm_pack_b";
  f.args_type = "switchyard::kernels::GemmPackArgs";
  f.cpu_dtypes = {DType::kBFloat16, DType::kFloat32};
  f.check = [](const KernelSpec& spec) {
    // The micro-kernels' tiles: whole 16-column vectors of pairs, float vectors of 4 lanes or more.
    const int64_t tile_cols = spec.int_param("tile_cols"), unit = gemm_packs_pairs(spec) ? 16 : 4;
    SY_CHECK(tile_cols % unit == 0 && spec.int_param("n") >= tile_cols)
        << "kernel spec " << spec.to_string() << ": tile_cols must be a multiple of " << unit
        << " and n at least one tile of tile_cols columns";
  };
  return f;
}

// The CUDA-core and mma.sync families take every form: B [K, N] or [N, K] (trans_b, the data
// gradient) and the weight gradient (trans_a).
KernelFamily cuda_gemm_family(const std::string& name, bool simt) {
  KernelFamily f;
  f.name = name;
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"n", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"k", ParamDecl::Kind::kInt, 1, 1 << 20}};
  if (simt) {
    f.params.push_back({"trans_a", ParamDecl::Kind::kBool});
    f.params.push_back({"trans_b", ParamDecl::Kind::kBool});
  }
  f.params.push_back({"bias", ParamDecl::Kind::kBool});
  f.params.push_back({"activation", ParamDecl::Kind::kInt, kActNone, kActSiluGrad});
  if (!simt) {  // after the epilogue: the templates' parameter order
    f.params.push_back({"trans_b", ParamDecl::Kind::kBool});
    f.params.push_back({"trans_a", ParamDecl::Kind::kBool});
  }
  f.cuda_header = "switchyard/cuda/" + name + ".cuh";
  f.cuda_function = "switchyard::cuda::" + name;
  f.args_type = "switchyard::kernels::GemmArgs";
  return f;
}

// The mma.sync families' rule: whole 128-column tiles of N, K in steps of `k_unit` (whole
// 128-row tiles for the weight gradient), sm_80 or newer.
void check_mma_sync(const KernelSpec& spec, int64_t k_unit, const char* what) {
  SY_CHECK(spec.int_param("n") % kGemmMmaTileN == 0 && spec.int_param("k") % k_unit == 0)
      << "kernel spec " << spec.to_string() << ": the " << what << " GEMM needs n % " << kGemmMmaTileN
      << " == 0 and k % " << k_unit << " == 0";
  SY_CHECK(spec.target.sm >= 80) << "kernel spec " << spec.to_string() << ": mma.sync " << what
                                 << " needs sm_80 or newer";
  check_trans_a(spec);
  SY_CHECK(!spec.bool_param("trans_a") || spec.int_param("k") % kGemmMmaTileM == 0)
      << "kernel spec " << spec.to_string() << ": the tensor-core weight gradient needs k % " << kGemmMmaTileM
      << " == 0";
}

KernelFamily gemm_simt_family() {
  KernelFamily f = cuda_gemm_family("gemm_simt", true);
  f.cuda_dtypes = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  f.params.push_back({"tile", ParamDecl::Kind::kInt, kGemmSimtTileNarrow, kGemmSimtTile});
  f.check = [](const KernelSpec& spec) {
    check_trans_a(spec);
    const int64_t tile = spec.int_param("tile");
    SY_CHECK(tile == kGemmSimtTile || tile == kGemmSimtTileNarrow)
        << "kernel spec " << spec.to_string() << ": tile must be " << kGemmSimtTileNarrow << " or " << kGemmSimtTile;
  };
  return f;
}
KernelFamily gemm_mma_family() {
  KernelFamily f = cuda_gemm_family("gemm_mma", false);
  f.cuda_dtypes = {DType::kFloat16, DType::kBFloat16};
  f.check = [](const KernelSpec& spec) { check_mma_sync(spec, kGemmMmaTileK, "bf16/f16 tensor-core"); };
  return f;
}

KernelFamily gemm_tf32_family() {
  KernelFamily f = cuda_gemm_family("gemm_tf32", false);
  f.cuda_dtypes = {DType::kFloat32};
  f.check = [](const KernelSpec& spec) { check_mma_sync(spec, 16, "TF32"); };
  return f;
}

KernelFamily gemm_wgmma_family() {
  KernelFamily f;
  f.name = "gemm_wgmma";
  f.params = {{"dtype", ParamDecl::Kind::kDType},
              {"n", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"k", ParamDecl::Kind::kInt, 1, 1 << 20},
              {"bias", ParamDecl::Kind::kBool},
              {"activation", ParamDecl::Kind::kInt, kActNone, kActSiluGrad},
              {"trans_b", ParamDecl::Kind::kBool},
              {"tile_n", ParamDecl::Kind::kInt, 128, 256},
              {"trans_a", ParamDecl::Kind::kBool}};
  f.cuda_header = "switchyard/cuda/gemm_wgmma.cuh";
  f.cuda_function = "switchyard::cuda::gemm_wgmma";
  // TMA reads its descriptors from parameter space: the whole struct is a __grid_constant__.
  f.args_type = "const __grid_constant__ switchyard::kernels::GemmWgmmaArgs";
  // float32 runs as TF32: a float32 spec exists only where the layer allows TF32 (uses_wgmma).
  f.cuda_dtypes = {DType::kFloat16, DType::kBFloat16, DType::kFloat32};
  f.check = [](const KernelSpec& spec) {
    const int64_t tile_n = spec.int_param("tile_n");
    const int64_t k_unit = wgmma_k_unit(static_cast<int>(dtype_size(spec.dtype_param("dtype"))));
    SY_CHECK(tile_n == 128 || tile_n == 256) << "kernel spec " << spec.to_string() << ": tile_n must be 128 or 256";
    SY_CHECK(spec.int_param("n") % tile_n == 0 && spec.int_param("k") % k_unit == 0)
        << "kernel spec " << spec.to_string() << ": the wgmma GEMM needs n % tile_n == 0 and k % " << k_unit
        << " == 0 (rows of 16 bytes for TMA)";
    SY_CHECK(spec.dtype_param("dtype") != DType::kFloat32 || spec.bool_param("trans_b") != spec.bool_param("trans_a"))
        << "kernel spec " << spec.to_string()
        << ": TF32 wgmma reads both operands K-major: float32 needs trans_b, or trans_a (its operands transposed "
           "ahead)";
    SY_CHECK(spec.target.sm == 90 && spec.target.arch_specific)
        << "kernel spec " << spec.to_string() << ": wgmma and setmaxnreg need sm_90a";
    check_trans_a(spec);
  };
  return f;
}

GemmWgmmaArgs gemm_wgmma_args(const KernelSpec& spec, const GemmArgs& gemm, const TmaEncoder& encode) {
  SY_INTERNAL_CHECK(spec.family == "gemm_wgmma") << spec.to_string();
  const unsigned long long batch = gemm.batch, rows = gemm.rows, k = spec.int_param("k"), n = spec.int_param("n");
  const GemmTileShape tile = gemm_tile_shape(spec);  // the family's rule, as the launch uses it
  const bool trans_a = spec.bool_param("trans_a");
  const auto el = static_cast<unsigned>(dtype_size(spec.dtype_param("dtype")));
  // One 128-byte swizzled row: a k-block's depth, an MN-major box's width, a C box's width.
  const auto row = static_cast<unsigned>(wgmma_tile_k(static_cast<int>(el)));
  const auto tile_m = static_cast<unsigned>(kWgmmaTileM), tile_n = static_cast<unsigned>(tile.n);
  const bool pre_transposed = wgmma_pre_transposed(static_cast<int>(el), trans_a);
  SY_INTERNAL_CHECK(!pre_transposed || rows * el % 16 == 0)
      << spec.to_string() << ": transposed operands' rows of " << rows << " are not whole 16 bytes";
  GemmWgmmaArgs args{};
  // The K-major boxes: tile_k of the reduction by 128 rows of A or tile_n of B; the MN-major ones
  // 64 x 64. The weight gradient's operands transposed ahead are K-major, the rows their reduction.
  const TmaOperand a = pre_transposed ? TmaOperand{{rows, k, batch}, {rows * el, k * rows * el}, {row, tile_m, 1}, el}
                       : trans_a      ? TmaOperand{{k, rows, batch}, {k * el, rows * k * el}, {row, row, 1}, el}
                                      : TmaOperand{{k, rows, batch}, {k * el, rows * k * el}, {row, tile_m, 1}, el};
  const TmaOperand b = pre_transposed ? TmaOperand{{rows, n, batch}, {rows * el, n * rows * el}, {row, tile_n, 1}, el}
                       : trans_a      ? TmaOperand{{n, rows, batch}, {n * el, rows * n * el}, {row, row, 1}, el}
                       : spec.bool_param("trans_b")
                           ? TmaOperand{{k, n, batch}, {k * el, n * k * el}, {row, tile_n, 1}, el}
                           : TmaOperand{{n, k, batch}, {n * el, n * k * el}, {row, row, 1}, el};
  const unsigned long long out_rows = trans_a ? k : rows;
  const unsigned box_rows = kWgmmaStoreBoxBytes / kWgmmaRowBytes;
  const TmaOperand c{{n, out_rows, batch}, {n * el, out_rows * n * el}, {row, box_rows, 1}, el};
  args.a = encode(gemm.a, a);
  args.b = encode(gemm.b, b);
  args.c = encode(gemm.c, c);
  args.gemm = gemm;
  args.tiles_m = static_cast<int>((out_rows + tile.m - 1) / tile.m);
  args.tiles_n = static_cast<int>(n / tile.n);
  args.tiles = static_cast<int>(batch) * args.tiles_m * args.tiles_n;
  return args;
}

bool uses_wgmma(const GemmShape& shape, const Target& target) {
  if (!target.is_cuda() || target.sm != 90 || !target.arch_specific || shape.n % 128 != 0 || !shape.aligned_16 ||
      gemm_ceiling() != GemmCeiling::kAuto)
    return false;
  // K under one k-block (the top gate's experts as K): a GEMM bound by memory, which the SIMT
  // kernel's narrow tiles spread over more blocks than the persistent 128 x 256 tiles would.
  const auto el = static_cast<int>(dtype_size(shape.dtype));
  if (shape.k < wgmma_tile_k(el) || shape.k % wgmma_k_unit(el) != 0) return false;
  if (shape.dtype == DType::kFloat16 || shape.dtype == DType::kBFloat16) return true;
  return shape.dtype == DType::kFloat32 && shape.allow_tf32 && shape.trans_b != shape.trans_a;
}

bool gemm_reads_transposed_operands(const KernelSpec& gemm) {
  return gemm.family == "gemm_wgmma" &&
         wgmma_pre_transposed(static_cast<int>(dtype_size(gemm.dtype_param("dtype"))), gemm.bool_param("trans_a"));
}

KernelSpec gemm_operand_transpose_spec(const KernelSpec& gemm) {
  SY_INTERNAL_CHECK(gemm_reads_transposed_operands(gemm)) << gemm.to_string() << " reads its operands as stored";
  return elementwise_spec(gemm.dtype_param("dtype"), kEwTranspose, kActNone, gemm.target);
}

bool uses_tensor_cores(const GemmShape& shape, const Target& target) {
  if (!target.is_cuda() || target.sm < 80 || gemm_ceiling() == GemmCeiling::kSimt || !shape.aligned_16 ||
      shape.n % kGemmMmaTileN != 0)
    return false;
  // The weight gradient: its output rows (K) in whole 128-row tiles.
  if (shape.trans_a && shape.k % kGemmMmaTileM != 0) return false;
  if (shape.dtype == DType::kFloat16 || shape.dtype == DType::kBFloat16) return shape.k % kGemmMmaTileK == 0;
  return shape.dtype == DType::kFloat32 && shape.allow_tf32 && shape.k % 16 == 0;
}

KernelSpec gemm_spec(const GemmShape& shape, const Target& target) {
  if (target.is_cuda()) {
    KernelSpec spec;
    spec.target = target;
    spec.params = {{"dtype", shape.dtype}, {"n", shape.n}, {"k", shape.k}};
    if (uses_wgmma(shape, target)) {
      spec.family = "gemm_wgmma";
      spec.params.push_back({"bias", shape.bias});
      spec.params.push_back({"activation", static_cast<int64_t>(shape.activation)});
      spec.params.push_back({"trans_b", shape.trans_b});
      spec.params.push_back({"tile_n", int64_t{shape.n % 256 == 0 ? 256 : 128}});
      spec.params.push_back({"trans_a", shape.trans_a});
      return spec;
    }
    const bool tensor_cores = uses_tensor_cores(shape, target);
    spec.family = !tensor_cores ? "gemm_simt" : shape.dtype == DType::kFloat32 ? "gemm_tf32" : "gemm_mma";
    // In each family's template parameter order.
    using Param = std::pair<std::string, ParamValue>;
    const Param bias{"bias", shape.bias}, act{"activation", static_cast<int64_t>(shape.activation)};
    const Param trans_a{"trans_a", shape.trans_a}, trans_b{"trans_b", shape.trans_b};
    if (spec.family == "gemm_simt")
      spec.params.insert(spec.params.end(), {trans_a, trans_b, bias, act, {"tile", gemm_simt_tile(shape)}});
    else
      spec.params.insert(spec.params.end(), {bias, act, trans_b, trans_a});
    return spec;
  }
  // NOTE: the vectors of the CPU compiled for (SWITCHYARD_CPU may name a narrower one than this
  // host's), so that every machine of a fleet sharing a cache asks for the same specs.
  const int vec_bytes = target.cpu_vector_bytes();
  const bool bf16_dot = uses_bf16_dot(target, shape.dtype, vec_bytes);
  const bool amx = uses_amx(target, bf16_dot);
  const CpuRegisterBlock block = cpu_register_block(target, vec_bytes, amx);
  KernelSpec spec;
  spec.family = "gemm";
  spec.params = {{"dtype", shape.dtype},
                 {"n", shape.n},
                 {"k", shape.k},
                 {"trans_a", shape.trans_a},
                 {"trans_b", shape.trans_b},
                 {"bias", shape.bias},
                 {"activation", static_cast<int64_t>(shape.activation)},
                 {"vec_bytes", static_cast<int64_t>(vec_bytes)},
                 {"row_tile", int64_t{block.rows}},
                 {"tile_vecs", int64_t{block.vecs}},
                 {"group_rows", cpu_group_rows(target, shape.dtype, bf16_dot, block.rows)},
                 {"bf16_dot", bf16_dot},
                 {"amx", amx}};
  spec.target = target;
  return spec;
}

GemmTileShape gemm_tile_shape(const KernelSpec& spec) {
  if (spec.family == "gemm") {
    const int compute_bytes = spec.dtype_param("dtype") == DType::kFloat64 ? 8 : 4;
    return {spec.int_param("row_tile"),
            gemm_cpu_tile_cols(static_cast<int>(spec.int_param("tile_vecs")),
                               static_cast<int>(spec.int_param("vec_bytes")), compute_bytes)};
  }
  if (spec.family == "gemm_simt") return {spec.int_param("tile"), spec.int_param("tile")};
  if (spec.family == "gemm_wgmma") return {kWgmmaTileM, spec.int_param("tile_n")};
  SY_INTERNAL_CHECK(spec.family == "gemm_mma" || spec.family == "gemm_tf32") << spec.to_string();
  return {kGemmMmaTileM, kGemmMmaTileN};
}

LaunchConfig gemm_launch_config(const KernelSpec& spec, const GemmProblem& p) {
  const GemmTileShape tile = gemm_tile_shape(spec);
  const bool trans_a = spec.bool_param("trans_a");  // every GEMM family has the weight-gradient form
  // trans_a: the output is [K, N], so tiles of K take the place of row tiles.
  const int64_t out_rows = trans_a ? p.k : p.max_rows;
  auto tiles = [](int64_t extent, int64_t size) { return (extent + size - 1) / size; };
  LaunchConfig config;
  if (spec.family == "gemm_wgmma") {  // persistent: at most one block per multiprocessor
    const int64_t work = p.batch * tiles(spec.bool_param("trans_a") ? p.k : p.rows, tile.m) * tiles(p.n, tile.n);
    config.grid = static_cast<unsigned>(std::clamp<int64_t>(work, 1, std::max(p.parallelism, 1u)));
    config.block = kWgmmaThreads;
    config.shared_bytes = static_cast<unsigned>(wgmma_shared_bytes(static_cast<int>(tile.n)));
    return config;
  }
  if (spec.target.is_cuda()) {
    config.grid = static_cast<unsigned>(p.batch * tiles(trans_a ? p.k : p.rows, tile.m) * tiles(p.n, tile.n));
    config.block = kGemmThreads;
    return config;
  }
  // CPU: about two blocks per thread over the batch, each a share of its batch's row tiles, and of
  // its column tiles where the rows are fewer than the blocks (gemm_cpu_split; the columns past the
  // last whole tile ride with the last share).
  const int64_t col_tiles = std::max<int64_t>(p.n / tile.n, 1);
  const int64_t per_batch = std::clamp<int64_t>((int64_t{p.parallelism} * 2 + p.batch - 1) / p.batch, 1,
                                                std::max<int64_t>(tiles(out_rows, tile.m), 1) * col_tiles);
  config.grid = static_cast<unsigned>(p.batch * per_batch);
  return config;
}

bool gemm_reads_packed_b(const KernelSpec& gemm) {
  if (gemm.family != "gemm") return false;  // the CUDA families read B through shared memory
  const bool panel_layout = gemm.bool_param("bf16_dot") || gemm.dtype_param("dtype") == DType::kFloat32;
  return panel_layout && !gemm.bool_param("amx") && !gemm.bool_param("trans_a") &&
         gemm.int_param("n") >= gemm_tile_shape(gemm).n;
}

bool gemm_packs_pairs(const KernelSpec& gemm) {
  return gemm.dtype_param("dtype") == DType::kBFloat16;
}

KernelSpec gemm_pack_b_spec(const KernelSpec& gemm) {
  SY_INTERNAL_CHECK(gemm_reads_packed_b(gemm)) << gemm.to_string() << " does not read packed panels";
  return {"gemm_pack_b",
          {{"dtype", gemm.dtype_param("dtype")},
           {"n", gemm.int_param("n")},
           {"k", gemm.int_param("k")},
           {"trans_b", gemm.bool_param("trans_b")},
           {"tile_cols", gemm_tile_shape(gemm).n}},
          gemm.target};
}

int64_t gemm_panels_words(const KernelSpec& pack) {
  return gemm_panels_words(pack.int_param("n"), pack.int_param("k"), pack.int_param("tile_cols"),
                           gemm_packs_pairs(pack));
}

LaunchConfig gemm_pack_b_launch_config(const KernelSpec& pack, int64_t batch, unsigned parallelism) {
  return cpu_blocks(batch * (pack.int_param("n") / pack.int_param("tile_cols")), 8, parallelism);
}

GemmActivation activation_derivative(GemmActivation activation) {
  switch (activation) {
    case kActRelu:
      return kActReluGrad;
    case kActGelu:
      return kActGeluGrad;
    case kActSilu:
      return kActSiluGrad;
    default:
      return kActNone;
  }
}

GemmActivation parse_activation(const std::string& text) {
  if (text == "none" || text == "identity") return kActNone;
  if (text == "relu") return kActRelu;
  if (text == "gelu") return kActGelu;
  if (text == "silu" || text == "swish") return kActSilu;
  SY_THROW(UserError) << "unknown activation '" << text << "'; expected relu, gelu, silu or none";
}

const char* activation_name(GemmActivation activation) {
  switch (activation) {
    case kActNone:
      return "none";
    case kActRelu:
      return "relu";
    case kActGelu:
      return "gelu";
    case kActSilu:
      return "silu";
    case kActSwiglu:
      return "swiglu";
    case kActReluGrad:
      return "relu_grad";
    case kActGeluGrad:
      return "gelu_grad";
    case kActSiluGrad:
      return "silu_grad";
  }
  return "?";
}

}  // namespace switchyard::kernels
