// agentcore's int8-weight matmul for float32 activations on x86 CPUs with AVX2 and FMA.
//
// out[m, n] = scale[n] * sum_k x[m, k] * q[n, k]: a linear layer whose weight is held as int8
// values with one float32 scale per output row (agentcore.core.quant.Int8Weight), or with
// scale [n, groups] one per group of k / groups inputs: sum_g scale[n, g] * (the group's sum). PyTorch's
// own int8 kernel (_weight_int8pack_mm) is vectorized for bf16 activations only; a CPU without
// bf16 (AVX2 only) therefore ran float32 weights, reading 4 bytes per weight per decode step.
// This kernel reads 1 byte per weight, widens 8 at a time to float32 in registers and sums in
// float32, so its result is the float32 product with the dequantized weight up to the order
// of the additions. Rows of x are taken in blocks of up to 4, so one weight load serves each
// row of a small batch; output rows are split over PyTorch's intra-op threads (OpenMP: the
// build passes -fopenmp, see threads_used).
#include "native.h"

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>

namespace {

// Weights are read once per call, row after row: asking for the bytes kPrefetch ahead of the
// ones being summed keeps more of them in flight than the hardware prefetcher alone does
// (SmolLM2's weights, 2 threads, AVX2 EPYC: 6.24 -> 5.43 ms a pass, Qwen2.5-0.5B's 20.8 ->
// 17.9; 512 bytes ahead gained half as much, 4096 and 8192 no more). A prefetch never faults,
// so the last rows may ask past the end of the weight.
constexpr int64_t kPrefetch = 2048;

inline void prefetch_ahead(const int8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + kPrefetch), _MM_HINT_T0);
}

inline __m256 widen8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// Sixteen inputs i..i+15 of R (1-4) rows of x (row stride k) times weight row w, added into
// two chains per row (a for the first eight inputs, b for the next). The accumulators are
// named variables passed by reference, not an array: GCC kept an array of them on the stack
// and stored every one after each multiply-add (3x slower at 4 rows).
template <int R>
inline __attribute__((always_inline)) void add16(const float* x, int64_t k, int64_t i,
                                                 const int8_t* w, __m256& a0, __m256& b0,
                                                 __m256& a1, __m256& b1, __m256& a2, __m256& b2,
                                                 __m256& a3, __m256& b3) {
  static_assert(R >= 1 && R <= 4, "1 to 4 rows");
  const __m256 w0 = widen8(w + i), w1 = widen8(w + i + 8);
  a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), w0, a0);
  b0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), w1, b0);
  if constexpr (R > 1) {
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + i), w0, a1);
    b1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + i + 8), w1, b1);
  }
  if constexpr (R > 2) {
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 2 * k + i), w0, a2);
    b2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 2 * k + i + 8), w1, b2);
  }
  if constexpr (R > 3) {
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 3 * k + i), w0, a3);
    b3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 3 * k + i + 8), w1, b3);
  }
}

// R (1-4) rows of x (row stride k) times one weight row w with one scale: out[r * ldo].
template <int R>
void dot_rows(const float* x, int64_t k, const int8_t* w, float scale, float* out, int64_t ldo) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    if ((i & 63) == 0) prefetch_ahead(w + i);
    add16<R>(x, k, i, w, a0, b0, a1, b1, a2, b2, a3, b3);
  }
  const __m256 sums[4] = {_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2),
                          _mm256_add_ps(a3, b3)};
  for (int r = 0; r < R; r++) {
    float total = horizontal_sum(sums[r]);
    for (int64_t j = i; j < k; j++) total += x[r * k + j] * static_cast<float>(w[j]);
    out[r * ldo] = total * scale;
  }
}

// As dot_rows, with one scale per group of `group` inputs (a multiple of 16 dividing k):
// scales[g] for inputs g * group .. (g + 1) * group - 1. Each group's sum is scaled into a
// running total, so a row with a few large weights rounds the others on their own scale.
template <int R>
void dot_rows_grouped(const float* x, int64_t k, const int8_t* w, const float* scales,
                      int64_t group, float* out, int64_t ldo) {
  __m256 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
  for (int64_t g0 = 0, g = 0; g0 < k; g0 += group, g++) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    prefetch_ahead(w + g0);
    for (int64_t i = g0; i < g0 + group; i += 16) add16<R>(x, k, i, w, a0, b0, a1, b1, a2, b2, a3, b3);
    const __m256 s = _mm256_set1_ps(scales[g]);
    t0 = _mm256_fmadd_ps(_mm256_add_ps(a0, b0), s, t0);
    if constexpr (R > 1) t1 = _mm256_fmadd_ps(_mm256_add_ps(a1, b1), s, t1);
    if constexpr (R > 2) t2 = _mm256_fmadd_ps(_mm256_add_ps(a2, b2), s, t2);
    if constexpr (R > 3) t3 = _mm256_fmadd_ps(_mm256_add_ps(a3, b3), s, t3);
  }
  const __m256 totals[4] = {t0, t1, t2, t3};
  for (int r = 0; r < R; r++) out[r * ldo] = horizontal_sum(totals[r]);
}

// Four rows of x times two weight rows w and w + k: out[r * ldo + c] for r < 4, c < 2. Each
// widened weight serves four rows and each loaded row of x two weights, so a batch (many
// sessions' decode steps, a short prompt) does twice the multiply-adds per load of dot_rows.
void dot_tile(const float* x, int64_t k, const int8_t* w, const float* scale, float* out,
              int64_t ldo) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  __m256 c0 = a0, c1 = a0, c2 = a0, c3 = a0;
  const int8_t* v = w + k;
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256 w0 = widen8(w + i), w1 = widen8(v + i);
    __m256 xi = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(xi, w0, a0);
    c0 = _mm256_fmadd_ps(xi, w1, c0);
    xi = _mm256_loadu_ps(x + k + i);
    a1 = _mm256_fmadd_ps(xi, w0, a1);
    c1 = _mm256_fmadd_ps(xi, w1, c1);
    xi = _mm256_loadu_ps(x + 2 * k + i);
    a2 = _mm256_fmadd_ps(xi, w0, a2);
    c2 = _mm256_fmadd_ps(xi, w1, c2);
    xi = _mm256_loadu_ps(x + 3 * k + i);
    a3 = _mm256_fmadd_ps(xi, w0, a3);
    c3 = _mm256_fmadd_ps(xi, w1, c3);
  }
  const __m256 sums[2][4] = {{a0, a1, a2, a3}, {c0, c1, c2, c3}};
  for (int c = 0; c < 2; c++) {
    const int8_t* row = c ? v : w;
    for (int r = 0; r < 4; r++) {
      float total = horizontal_sum(sums[c][r]);
      for (int64_t j = i; j < k; j++) total += x[r * k + j] * static_cast<float>(row[j]);
      out[r * ldo + c] = total * scale[c];
    }
  }
}

// R rows of x times weight row w: one scale (scales[0]) where group is 0, else one per group.
template <int R>
void dot(const float* x, int64_t k, const int8_t* w, const float* scales, int64_t group,
         float* out, int64_t ldo) {
  if (group) dot_rows_grouped<R>(x, k, w, scales, group, out, ldo);
  else dot_rows<R>(x, k, w, scales[0], out, ldo);
}

// Rows r0..m-1 of x (row stride k) times weight row w, scaled as in dot: column c of out
// (stride ldo).
void rows_times(const float* x, int64_t r0, int64_t m, int64_t k, const int8_t* w,
                const float* scales, int64_t group, float* out, int64_t ldo) {
  int64_t r = r0;
  for (; r + 4 <= m; r += 4) dot<4>(x + r * k, k, w, scales, group, out + r * ldo, ldo);
  switch (m - r) {
    case 3: dot<3>(x + r * k, k, w, scales, group, out + r * ldo, ldo); break;
    case 2: dot<2>(x + r * k, k, w, scales, group, out + r * ldo, ldo); break;
    case 1: dot<1>(x + r * k, k, w, scales, group, out + r * ldo, ldo); break;
    default: break;
  }
}

}  // namespace

torch::Tensor int8_linear(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scale) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32,
              "int8_linear: x must be a 2-D float32 tensor, got ", x.sizes(), " ", x.scalar_type());
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == torch::kInt8 && q.is_contiguous(),
              "int8_linear: q must be a contiguous 2-D int8 tensor");
  TORCH_CHECK((scale.dim() == 1 || scale.dim() == 2) && scale.scalar_type() == torch::kFloat32 &&
                  scale.is_contiguous(),
              "int8_linear: scale must be a contiguous float32 tensor, [n_out] or [n_out, groups]");
  TORCH_CHECK(x.size(1) == q.size(1), "int8_linear: x has ", x.size(1), " inputs, q ", q.size(1));
  TORCH_CHECK(scale.size(0) == q.size(0), "int8_linear: ", scale.size(0), " scales for ", q.size(0), " rows");
  const int64_t groups = scale.dim() == 2 ? scale.size(1) : 1;
  TORCH_CHECK(groups >= 1 && q.size(1) % groups == 0 && (groups == 1 || (q.size(1) / groups) % 16 == 0),
              "int8_linear: ", groups, " scale groups per row of ", q.size(1),
              " inputs: each group must hold a multiple of 16 inputs");
  TORCH_CHECK(x.device().is_cpu() && q.device().is_cpu() && scale.device().is_cpu(),
              "int8_linear runs on the CPU");
  const torch::Tensor xc = x.contiguous();
  const int64_t m = xc.size(0), k = xc.size(1), n = q.size(0);
  torch::Tensor out = torch::empty({m, n}, xc.options());
  const float* xp = xc.data_ptr<float>();
  const int8_t* qp = q.data_ptr<int8_t>();
  const float* sp = scale.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // grain: at least ~32K weights per task, so small layers are not split into tiny pieces
  const int64_t grain = std::max<int64_t>(16, 32768 / std::max<int64_t>(k, 1));
  const int64_t group = groups > 1 ? k / groups : 0;  // 0: one scale per row
  parallel_ranges(0, n, grain, [&](int64_t n0, int64_t n1) {
    int64_t j = n0;
    if (m >= 8 && !group) {  // a batch: tiles of 4 rows x 2 weight rows, the rows left as below
      const int64_t tiled = m - m % 4;
      for (; j + 2 <= n1; j += 2) {
        for (int64_t r = 0; r < tiled; r += 4)
          dot_tile(xp + r * k, k, qp + j * k, sp + j, op + r * n + j, n);
        rows_times(xp, tiled, m, k, qp + j * k, sp + j, 0, op + j, n);
        rows_times(xp, tiled, m, k, qp + (j + 1) * k, sp + j + 1, 0, op + j + 1, n);
      }
    }
    for (; j < n1; j++) rows_times(xp, 0, m, k, qp + j * k, sp + j * groups, group, op + j, n);
  });
  return out;
}
