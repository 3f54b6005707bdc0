// agentcore's int8-weight matmul for bf16 activations on x86 CPUs with AVX512-BF16.
//
// out[m, n] = bf16(scale[n] * sum_k x[m, k] * q[n, k]): the linear layer of
// agentcore.core.quant.Int8Weight with bf16 activations and one bf16 scale per output row, the
// product PyTorch's _weight_int8pack_mm computes. That kernel reads the whole weight once per
// row of activations, so a batch of 16 sessions' decode steps read it 16 times (SmolLM2's
// projections and LM head, 2 threads: 41.6 ms a pass against 9.4 for one row), and the bf16
// copy the batches ran on instead reads 2 bytes per weight (17.3 ms). This one reads each int8
// weight once for up to 16 rows (12.6 ms; one row 4.2): the weight is held as tiles of 16
// output rows by 2 inputs ([n / 16, k / 2, 16, 2], see agentcore.core.native.int8_tiles), 32
// values are widened to bf16 in registers (exact: every int8 value is a bf16 value), and one
// vdpbf16ps per row adds x[m, k..k+1] (broadcast) times the tile's pair into 16 float32 sums,
// one per output. Every row's sums are formed alone, in the same order whatever the number of
// rows, so a session's result does not depend on its batch mates.
//
// The functions carry their own target attribute: the module is built with -mavx2 only, and
// these run where int8_bf16_supported() says the CPU has AVX512-BF16.
#include "native.h"

#include <array>
#include <utility>

namespace {

#define AGENTCORE_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Bytes of the tile stream asked for ahead of the pair being summed.
constexpr int64_t kTilePrefetch = 1024;
constexpr int64_t kRowBlock = 16;  // rows of x per pass over a tile: one register of sums each

// 32 int8 values (16 outputs x 2 inputs) as bf16, in the same order.
AGENTCORE_BF16_TARGET inline __m512bh widen32(const int8_t* p) {
  const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  const __m512 hi =
      _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))));
  return _mm512_cvtne2ps_pbh(hi, lo);
}

// R (1-16) rows of x (bf16, row stride k) times one tile of 16 outputs (k / 2 pairs of 32
// int8 values), scaled and stored as bf16 into out (row stride ldo).
template <int R>
AGENTCORE_BF16_TARGET void tile_rows(const uint16_t* x, int64_t k, const int8_t* tile, const uint16_t* scales,
                                     uint16_t* out, int64_t ldo) {
  // the 16 bf16 scales widened to float32 (a bf16 value is the high half of its float32)
  const __m512 scale = _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales))), 16));
  __m512 sums[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) sums[r] = _mm512_setzero_ps();
  const int64_t pairs = k / 2;
  const uint32_t* xp = reinterpret_cast<const uint32_t*>(x);  // two bf16 inputs per uint32
  for (int64_t p = 0; p < pairs; p++) {
    _mm_prefetch(reinterpret_cast<const char*>(tile + p * 32 + kTilePrefetch), _MM_HINT_T0);
    const __m512bh w = widen32(tile + p * 32);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      const __m512bh xr = (__m512bh)_mm512_set1_epi32(static_cast<int>(xp[r * pairs + p]));
      sums[r] = _mm512_dpbf16_ps(sums[r], xr, w);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_mul_ps(sums[r], scale));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * ldo), (__m256i)v);
  }
}

using TileRows = void (*)(const uint16_t*, int64_t, const int8_t*, const uint16_t*, uint16_t*, int64_t);

template <int... R>
constexpr std::array<TileRows, sizeof...(R)> tile_table(std::integer_sequence<int, R...>) {
  return {&tile_rows<R + 1>...};
}

// tile_rows<r + 1> for r rows of a block
const auto kTileRows = tile_table(std::make_integer_sequence<int, kRowBlock>());

void multiply(const uint16_t* xp, int64_t m, int64_t k, const int8_t* tiles, const uint16_t* scales, int64_t n,
              uint16_t* op) {
  // grain: at least ~32K weights per task, so small layers are not split into tiny pieces
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(16 * k, 1));
  parallel_ranges(0, n / 16, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int8_t* tile = tiles + t * 16 * k;
      for (int64_t r0 = 0; r0 < m; r0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, m - r0);
        kTileRows[rows - 1](xp + r0 * k, k, tile, scales + t * 16, op + r0 * n + t * 16, n);
      }
    }
  });
}

}  // namespace

bool int8_bf16_supported() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  }();
  return supported;
}

torch::Tensor int8_linear_bf16(const torch::Tensor& x, const torch::Tensor& tiles, const torch::Tensor& scale) {
  TORCH_CHECK(int8_bf16_supported(), "int8_linear_bf16: this CPU has no AVX512-BF16");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kBFloat16,
              "int8_linear_bf16: x must be a 2-D bf16 tensor, got ", x.sizes(), " ", x.scalar_type());
  TORCH_CHECK(tiles.dim() == 4 && tiles.scalar_type() == torch::kInt8 && tiles.is_contiguous() &&
                  tiles.size(2) == 16 && tiles.size(3) == 2,
              "int8_linear_bf16: tiles must be a contiguous int8 [n / 16, k / 2, 16, 2] tensor "
              "(native.int8_tiles), got ", tiles.sizes());
  const int64_t n = tiles.size(0) * 16, k = tiles.size(1) * 2;
  TORCH_CHECK(x.size(1) == k, "int8_linear_bf16: x has ", x.size(1), " inputs, the weight ", k);
  TORCH_CHECK(scale.dim() == 1 && scale.size(0) == n && scale.scalar_type() == torch::kBFloat16 &&
                  scale.is_contiguous(),
              "int8_linear_bf16: scale must be a contiguous bf16 [", n, "] tensor, got ", scale.sizes(), " ",
              scale.scalar_type());
  TORCH_CHECK(x.device().is_cpu() && tiles.device().is_cpu() && scale.device().is_cpu(),
              "int8_linear_bf16 runs on the CPU");
  const torch::Tensor xc = x.contiguous();
  const int64_t m = xc.size(0);
  torch::Tensor out = torch::empty({m, n}, xc.options());
  if (m == 0) return out;
  multiply(reinterpret_cast<const uint16_t*>(xc.data_ptr<at::BFloat16>()), m, k, tiles.data_ptr<int8_t>(),
           reinterpret_cast<const uint16_t*>(scale.data_ptr<at::BFloat16>()), n,
           reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()));
  return out;
}
