// One decode step of a Llama-family layer in four calls instead of ~55 PyTorch ops.
//
// A decode step reads the weights once (int8_linear) and does little else, but in PyTorch the
// little else is ~1,700 small ops per step for a 30-layer model, each a dispatch and often a
// Python call: ~10 ms of a 16.7 ms step on a 2-core AVX2 CPU, more than the weights' 6 ms. The
// model core (agentcore/core/llama.py) calls these instead where they apply (float32
// activations, int8 weights, one token per row), and keeps its PyTorch path everywhere else:
//
//   decode_qkv:       RMS norm, the fused Q/K/V projection (+ bias), rotary embedding of q, k:
//                     q, k, v [B,H,1,D] (views of the projection) and q, k rotated
//   decode_store:     the new token's raw key, rotated key and value into their cache slots
//   decode_attention: one query position's softmax attention over the cached keys and values
//   decode_mlp:       output projection, residual, RMS norm, SwiGLU MLP, residual
//
// and, for several sessions' decode steps batched into one forward (one session per row, each
// with its own cache; decode_qkv then takes one rotation per row):
//
//   decode_attend_rows: each row's new key and value into its own cache, then each row's
//                     attention over its own keys, all rows' heads in one parallel loop
//
// The cache's bookkeeping (where keys go, which are masked, recall, compressive memory) stays
// in Python between the calls. Each computes what its PyTorch ops compute, in float32, up to
// the order of the additions and the exp approximation (within 2 ulp; tests/core/test_native.py
// compares the whole step with PyTorch's path).
//
// decode_attention and decode_attend_rows also read a bf16 model's caches (a CPU with bf16 dot
// products keeps its activations and caches in bf16 and its layers on PyTorch): the keys and
// values are widened to float32 as they are read, the softmax and sums are float32, and the
// result is rounded to bf16 once. On a decode step the attention is bound by reading the cache,
// which bf16 halves; PyTorch's two bf16 matmuls took 2.2x as long (SmolLM2, 2048 keys).
//
// The attention has two kernels: attend_range (AVX2, 8 floats a register) and, on CPUs with
// AVX512F and head sizes 64 and 128, attend_range16 (16 a register, the scores of 16 keys
// summed together, the rows asked for ahead): 1.15-1.45x attend_range's speed on 16 rows of
// SmolLM2's shape (docs/benchmarks/attend_rows.md). A process runs one of them for every step.
#include "native.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

namespace {

// e^x for eight floats: x = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-6 Taylor-like
// polynomial (minimax coefficients, as in the Cephes library's expf), 2^n put into the
// exponent bits. Relative error ~2e-7; x below -87.3 gives 0 (so -inf gives 0), above 88
// gives e^88 (never reached by softmax, which subtracts the max; silu of a gate below -88 is
// then -88 / (1 + e^88), ~0, as it should be).
inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.0f);
  const __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);  // false for NaN-free x < lo and -inf
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

inline float exp1(float x) {
  alignas(32) float v[8] = {x, 0, 0, 0, 0, 0, 0, 0};
  _mm256_store_ps(v, exp8(_mm256_load_ps(v)));
  return v[0];
}

// y = x * rsqrt(mean(x^2) + eps) * w over one row of k values (what F.rms_norm computes).
void rms_norm_row(const float* x, const float* w, int64_t k, double eps, float* y) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  float sq = horizontal_sum(acc);
  for (; i < k; i++) sq += x[i] * x[i];
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(k) + static_cast<float>(eps));
  for (i = 0; i < k; i++) y[i] = (x[i] * rstd) * w[i];
}

torch::Tensor rms_norm_rows(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const int64_t m = x.size(0), k = x.size(1);
  torch::Tensor y = torch::empty_like(x);
  for (int64_t r = 0; r < m; r++)
    rms_norm_row(x.data_ptr<float>() + r * k, w.data_ptr<float>(), k, eps, y.data_ptr<float>() + r * k);
  return y;
}

// Interleaved rotary embedding of `heads` heads of d values at src into dst: pair (2i, 2i+1)
// as a complex number times freqs[i] = (cos, sin), as Rotary.rotate computes it.
void rotate_heads(const float* src, int64_t heads, int64_t d, const float* freqs, float* dst) {
  for (int64_t h = 0; h < heads; h++) {
    const float* a = src + h * d;
    float* o = dst + h * d;
    for (int64_t i = 0; i < d / 2; i++) {
      const float re = a[2 * i], im = a[2 * i + 1], c = freqs[2 * i], s = freqs[2 * i + 1];
      o[2 * i] = re * c - im * s;
      o[2 * i + 1] = re * s + im * c;
    }
  }
}

void check_float(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous(),
              name, " must be a contiguous float32 CPU tensor, got ", t.scalar_type(), " ", t.sizes());
}

// Eight keys' or values' elements as floats: float32 as they are, bf16 (the upper half of a
// float32's bits) widened exactly.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const c10::BFloat16* p) {
  const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
}

// Keys a task of decode_attention takes at most: long windows are split into ranges so both
// threads share the work of a model with few KV heads, and a range's keys and values stay in
// the core's caches while each query head of the group reads them (blocks of kBlock).
constexpr int64_t kRange = 256;
constexpr int64_t kBlock = 64;

// One query head's scores sg[0..len) replaced by exp(score - top); their sum (0 where top is
// -inf: every key of the task masked, none read).
inline float exp_scores(float* sg, int64_t len, float top) {
  if (top == -INFINITY) return 0.f;
  const __m256 t = _mm256_set1_ps(top);
  __m256 sv = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sg + j), t));
    _mm256_storeu_ps(sg + j, e);
    sv = _mm256_add_ps(sv, e);
  }
  float total = horizontal_sum(sv);
  for (; j < len; j++) {
    sg[j] = exp1(sg[j] - top);
    total += sg[j];
  }
  return total;
}

// What some query heads add to the scores of keys lo..hi-1 (recalled text weighed up for the
// heads that copy facts, StreamingCache._read_head_biases): add[g] for query head g of the
// KV head's group, or add == nullptr for nothing.
struct HeadBias {
  const float* add;
  int64_t lo;
  int64_t hi;
};

// Up to kSpans runs of keys [lo, hi) one task of attend_heads scores together (at most kRange
// keys in all): a recall session's sinks and window, say, with its empty recall slots between.
constexpr int kSpans = 4;
struct KeySpans {
  int64_t lo[kSpans];
  int64_t hi[kSpans];
  int count = 0;
  int64_t keys = 0;
};

// The G query heads of one KV head (qs [G][d], pre-scaled) against the keys of `spans` (row
// stride `stride` elements, float32 or bf16 T) with an optional additive mask: for each head g
// its largest score top[g], the sum of exp(score - top) sum[g] and the values weighted by those
// exps acc[g][d] (unnormalised; decode_attention merges the tasks). scores holds G x
// spans.keys floats. NC = d / 8 when known at compile time.
template <int NC, typename T>
void attend_range(const float* qs, int64_t G, const T* k, const T* v, int64_t stride, const KeySpans& spans,
                  int64_t d, const float* mask, const HeadBias& hb, float* scores, float* top, float* sum,
                  float* acc) {
  const int64_t chunks = NC ? NC : d / 8, len = spans.keys;
  for (int64_t g = 0; g < G; g++) top[g] = -INFINITY;
  for (int si = 0, base = 0; si < spans.count; base += spans.hi[si] - spans.lo[si], si++) {
    const int64_t lo = spans.lo[si], hi = spans.hi[si];
    for (int64_t b0 = lo; b0 < hi; b0 += kBlock) {  // scores: each key row read once per block
      const int64_t b1 = std::min(hi, b0 + kBlock);
      for (int64_t g = 0; g < G; g++) {
        const float* q = qs + g * d;
        float* sg = scores + g * len + base - lo;  // sg[j] for key j of this span
        float best = top[g];
        for (int64_t j = b0; j < b1; j++) {
          if (mask && mask[j] == -INFINITY) {  // a masked key (e.g. a recall slot not filled)
            sg[j] = -INFINITY;                 // is not read: its weight is 0 either way
            continue;
          }
          const T* kj = k + j * stride;
          __m256 a = _mm256_mul_ps(_mm256_loadu_ps(q), load8(kj));
          for (int64_t c = 1; c < chunks; c++) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), load8(kj + 8 * c), a);
          float s = horizontal_sum(a);
          if (mask) s += mask[j];
          if (hb.add && j >= hb.lo && j < hb.hi) s += hb.add[g];
          sg[j] = s;
          best = std::max(best, s);
        }
        top[g] = best;
      }
    }
  }
  for (int64_t g = 0; g < G; g++) {  // exps and their sum
    float* ag = acc + g * d;
    for (int64_t i = 0; i < d; i++) ag[i] = 0.f;
    sum[g] = exp_scores(scores + g * len, len, top[g]);
  }
  for (int si = 0, base = 0; si < spans.count; base += spans.hi[si] - spans.lo[si], si++) {
    const int64_t lo = spans.lo[si], hi = spans.hi[si];
    for (int64_t b0 = lo; b0 < hi; b0 += kBlock) {  // values: each row read once per block
      const int64_t b1 = std::min(hi, b0 + kBlock);
      for (int64_t g = 0; g < G; g++) {
        if (top[g] == -INFINITY) continue;
        const float* sg = scores + g * len + base - lo;
        float* ag = acc + g * d;
        __m256 r[NC ? NC : 32];
        for (int64_t c = 0; c < chunks; c++) r[c] = _mm256_loadu_ps(ag + 8 * c);
        for (int64_t j = b0; j < b1; j++) {
          const float p = sg[j];
          if (p == 0.f) continue;  // a masked key
          const __m256 pv = _mm256_set1_ps(p);
          const T* vj = v + j * stride;
          for (int64_t c = 0; c < chunks; c++) r[c] = _mm256_fmadd_ps(pv, load8(vj + 8 * c), r[c]);
        }
        for (int64_t c = 0; c < chunks; c++) _mm256_storeu_ps(ag + 8 * c, r[c]);
      }
    }
  }
}

#define AGENTCORE_AVX512_TARGET __attribute__((target("avx512f")))

// Sixteen keys' or values' elements as floats (attend_range16).
AGENTCORE_AVX512_TARGET inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
AGENTCORE_AVX512_TARGET inline __m512 load16(const c10::BFloat16* p) {
  const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

// Sixteen sums at once: lane i of the result is the sum of the 16 lanes of a[s(i)], where
// s(4L + e) = L + 4e (its own inverse), so a caller that puts key i's products in a[s(i)] gets
// key i's sum in lane i. Four rounds of halving: 15 shuffle pairs and adds for 16 sums, against
// one reduce (~8 instructions) per sum.
AGENTCORE_AVX512_TARGET inline __m512 sum16(__m512* a) {
  __m512 z[8];
  for (int i = 0; i < 8; i++)  // 256-bit halves: lanes 0-7 from a[2i], 8-15 from a[2i+1]
    z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 w[4];
  for (int m = 0; m < 4; m++)  // 128-bit lane L: four sums of a[4m + L]
    w[m] = _mm512_add_ps(_mm512_shuffle_f32x4(z[2 * m], z[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(z[2 * m], z[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  __m512 y[2];
  for (int m = 0; m < 2; m++)  // lane L: two sums of a[8m + L], two of a[8m + 4 + L]
    y[m] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * m], w[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(w[2 * m], w[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Key (and value) rows attend_range16 asks for ahead of the one it reads (prefetch hints: a
// hint past the cache's end is dropped, never a fault).
constexpr int64_t kPrefetchKeys = 24;

// Query heads attend_range16 takes (its per-head maxima live in registers); more: attend_range.
constexpr int64_t kMaxGroup16 = 16;

// attend_range on a CPU with AVX512F, for d = 16 * NC and G <= kMaxGroup16: the same three
// passes over the same keys. Scores: blocks of 16 keys, each key row widened once into a
// scratch block for all G query heads and the 16 products of a head summed together (sum16);
// values: each row widened once for up to kHeadGroup heads, 16 floats a register. The sums run
// in another order than attend_range's, so results differ from it in the last bits; every
// decode step of a process takes the same kernel (use_avx512_attention), alone or batched.
template <int NC, typename T>
AGENTCORE_AVX512_TARGET void attend_range16(const float* qs, int64_t G, const T* k, const T* v, int64_t stride,
                                            const KeySpans& spans, const float* mask, const HeadBias& hb,
                                            float* scores, float* top, float* sum, float* acc) {
  constexpr int64_t d = 16 * NC;
  constexpr int64_t kHeadGroup = NC <= 4 ? 4 : 2;  // value sums held in registers: <= 16
  const int64_t len = spans.keys;
  alignas(64) float block[16 * d];  // a block's key rows as float32
  __m512 best[kMaxGroup16];
  for (int64_t g = 0; g < G; g++) best[g] = _mm512_set1_ps(-INFINITY);
  for (int si = 0, base = 0; si < spans.count; base += spans.hi[si] - spans.lo[si], si++) {
    const int64_t lo = spans.lo[si], hi = spans.hi[si];
    for (int64_t j0 = lo; j0 < hi; j0 += 16) {
      const int64_t count = std::min<int64_t>(16, hi - j0);
      const __mmask16 in = static_cast<__mmask16>((1u << count) - 1);
      uint32_t live = in;  // keys of the block that are read (a masked key is not: weight 0)
      for (int64_t i = 0; i < count; i++) {
        const T* ahead = k + (j0 + i + kPrefetchKeys) * stride;  // a window's keys stream in
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        if (d * sizeof(T) > 64) _mm_prefetch(reinterpret_cast<const char*>(ahead) + 64, _MM_HINT_T0);
        if (mask && mask[j0 + i] == -INFINITY) {
          live &= ~(1u << i);
          continue;
        }
        const T* kj = k + (j0 + i) * stride;
        for (int c = 0; c < NC; c++) _mm512_store_ps(block + i * d + 16 * c, load16(kj + 16 * c));
      }
      __m512 add = mask ? _mm512_maskz_loadu_ps(in, mask + j0) : _mm512_setzero_ps();
      __mmask16 biased = 0;
      if (hb.add)
        for (int64_t i = 0; i < count; i++)
          if (j0 + i >= hb.lo && j0 + i < hb.hi) biased |= static_cast<__mmask16>(1u << i);
      for (int64_t g = 0; g < G; g++) {
        const float* q = qs + g * d;
        __m512 qv[NC];
        for (int c = 0; c < NC; c++) qv[c] = _mm512_loadu_ps(q + 16 * c);
        __m512 a[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
          __m512 x = _mm512_setzero_ps();
          if (live >> i & 1) {
            const float* row = block + i * d;
            x = _mm512_mul_ps(qv[0], _mm512_load_ps(row));
            for (int c = 1; c < NC; c++) x = _mm512_fmadd_ps(qv[c], _mm512_load_ps(row + 16 * c), x);
          }
          a[(i & 3) * 4 + (i >> 2)] = x;
        }
        __m512 sc = _mm512_add_ps(sum16(a), add);  // a masked key: 0 + -inf
        if (biased) sc = _mm512_mask_add_ps(sc, biased, sc, _mm512_set1_ps(hb.add[g]));
        _mm512_mask_storeu_ps(scores + g * len + base + (j0 - lo), in, sc);
        best[g] = _mm512_mask_max_ps(best[g], in, best[g], sc);
      }
    }
  }
  for (int64_t g = 0; g < G; g++) top[g] = _mm512_reduce_max_ps(best[g]);
  // exps and their sum, as attend_range
  for (int64_t g = 0; g < G; g++) sum[g] = exp_scores(scores + g * len, len, top[g]);
  for (int64_t g0 = 0; g0 < G; g0 += kHeadGroup) {  // values: each row read once per group
    const int64_t heads = std::min(kHeadGroup, G - g0);
    __m512 r[kHeadGroup][NC];
    for (int64_t h = 0; h < kHeadGroup; h++)
      for (int c = 0; c < NC; c++) r[h][c] = _mm512_setzero_ps();
    for (int si = 0, base = 0; si < spans.count; base += spans.hi[si] - spans.lo[si], si++) {
      const int64_t lo = spans.lo[si], hi = spans.hi[si];
      const float* s0 = scores + g0 * len + base - lo;
      for (int64_t j = lo; j < hi; j++) {
        const T* vj = v + j * stride;
        const char* ahead = reinterpret_cast<const char*>(vj + kPrefetchKeys * stride);
        _mm_prefetch(ahead, _MM_HINT_T0);
        if (d * sizeof(T) > 64) _mm_prefetch(ahead + 64, _MM_HINT_T0);
        __m512 vr[NC];
        bool loaded = false;
        for (int64_t h = 0; h < heads; h++) {
          const float p = top[g0 + h] == -INFINITY ? 0.f : s0[h * len + j];
          if (p == 0.f) continue;  // a masked key (or every key of the head masked)
          if (!loaded) {
            for (int c = 0; c < NC; c++) vr[c] = load16(vj + 16 * c);
            loaded = true;
          }
          const __m512 pv = _mm512_set1_ps(p);
          for (int c = 0; c < NC; c++) r[h][c] = _mm512_fmadd_ps(pv, vr[c], r[h][c]);
        }
      }
    }
    for (int64_t h = 0; h < heads; h++)
      for (int c = 0; c < NC; c++) _mm512_storeu_ps(acc + (g0 + h) * d + 16 * c, r[h][c]);
  }
}

// Whether decode steps use attend_range16 where the CPU runs it (use_avx512_attention; tests
// turn it off to compare the two kernels).
std::atomic<bool> g_avx512_attention{true};

// `heads` rows of d elements from src (rows src_stride apart) to dst (rows dst_stride apart): one
// token's key or value, head by head, into a cache slot.
template <typename T>
void copy_heads(const T* src, int64_t src_stride, int64_t heads, int64_t d, T* dst, int64_t dst_stride) {
  for (int64_t hi = 0; hi < heads; hi++) std::copy_n(src + hi * src_stride, d, dst + hi * dst_stride);
}

// One KV head's share of a decode step's attention: its G query heads q (G x d floats, not yet
// scaled) against its first n keys k and values v (float32 or bf16 T, rows `stride` elements
// apart) with an optional additive mask of at least n values; the result goes to out (G x d
// floats).
template <typename T>
struct HeadTask {
  const float* q;
  const T* k;
  const T* v;
  int64_t stride;
  int64_t n;
  const float* mask;
  float* out;
  HeadBias bias;
};

// The keys of 0..n-1 a mask leaves to attend, as [first, end) spans: a run of at least kGap
// masked keys (e.g. a recall session's recall slots not yet filled, 512 of a short session's
// ~600) ends a span, so no work is spent on keys whose weight is 0 either way; shorter runs stay
// inside a span, masked key by key. No mask: one span of every key.
constexpr int64_t kGap = 32;

void live_spans(const float* mask, int64_t n, std::vector<std::pair<int64_t, int64_t>>& spans) {
  spans.clear();
  if (!mask) {
    spans.emplace_back(0, n);
    return;
  }
  int64_t start = -1, last = -1;  // the current span's first and last unmasked key
  for (int64_t j = 0; j < n; j++) {
    if (mask[j] == -INFINITY) continue;
    if (start >= 0 && j - last - 1 >= kGap) {
      spans.emplace_back(start, last + 1);
      start = -1;
    }
    if (start < 0) start = j;
    last = j;
  }
  if (start >= 0) spans.emplace_back(start, last + 1);
  if (spans.empty()) spans.emplace_back(0, std::min(n, kRange));  // all masked: as before, no weight
}

// One piece of attend_heads' work: some keys of one head.
struct RangeTask {
  int64_t head;
  KeySpans spans;
};

// Every head's attention: each head's live keys (live_spans) cut into tasks of at most kRange
// keys (a task may join up to kSpans runs: a recall session's sinks and window are one task),
// all tasks shared by PyTorch's threads, then each head's tasks merged through their largest
// scores.
template <typename T>
void attend_heads(const std::vector<HeadTask<T>>& heads, int64_t g, int64_t d) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<int64_t> first(heads.size() + 1, 0);  // the first task of each head
  std::vector<RangeTask> tasks;
  tasks.reserve(heads.size() * 2);
  std::vector<std::pair<int64_t, int64_t>> spans;
  const float* spans_mask = nullptr;  // the heads of one row share its mask: its spans are kept
  int64_t spans_n = -1;
  for (size_t i = 0; i < heads.size(); i++) {
    const HeadTask<T>& head = heads[i];
    if (spans_n < 0 || head.mask != spans_mask || head.n != spans_n) {
      live_spans(head.mask, head.n, spans);
      spans_mask = head.mask;
      spans_n = head.n;
    }
    RangeTask task{static_cast<int64_t>(i), {}};
    for (const auto& [lo, hi] : spans) {
      for (int64_t j = lo; j < hi;) {
        if (task.spans.keys == kRange || task.spans.count == kSpans) {  // full: the next task
          tasks.push_back(task);
          task.spans = KeySpans{};
        }
        const int64_t end = std::min(hi, j + kRange - task.spans.keys);
        task.spans.lo[task.spans.count] = j;
        task.spans.hi[task.spans.count] = end;
        task.spans.count++;
        task.spans.keys += end - j;
        j = end;
      }
    }
    tasks.push_back(task);  // live_spans gives at least one key
    first[i + 1] = static_cast<int64_t>(tasks.size());
  }
  const int64_t n_tasks = static_cast<int64_t>(tasks.size());
  // per task and query head: top, sum, then d weighted values
  std::vector<float> parts(static_cast<size_t>(n_tasks * g * (d + 2)));
  const bool wide = g_avx512_attention.load(std::memory_order_relaxed) && attention_avx512_supported();
  parallel_ranges(0, n_tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> scores(static_cast<size_t>(g * kRange));
    std::vector<float> qs(static_cast<size_t>(g * d));
    for (int64_t t = t0; t < t1; t++) {
      const RangeTask& task = tasks[static_cast<size_t>(t)];
      const HeadTask<T>& head = heads[static_cast<size_t>(task.head)];
      for (int64_t i = 0; i < g * d; i++) qs[i] = head.q[i] * scale;
      float* part = parts.data() + t * g * (d + 2);
      if (wide && g <= kMaxGroup16 && d == 64) attend_range16<4>(qs.data(), g, head.k, head.v, head.stride, task.spans, head.mask, head.bias, scores.data(), part, part + g, part + 2 * g);
      else if (wide && g <= kMaxGroup16 && d == 128) attend_range16<8>(qs.data(), g, head.k, head.v, head.stride, task.spans, head.mask, head.bias, scores.data(), part, part + g, part + 2 * g);
      else if (d == 64) attend_range<8>(qs.data(), g, head.k, head.v, head.stride, task.spans, d, head.mask, head.bias, scores.data(), part, part + g, part + 2 * g);
      else if (d == 128) attend_range<16>(qs.data(), g, head.k, head.v, head.stride, task.spans, d, head.mask, head.bias, scores.data(), part, part + g, part + 2 * g);
      else attend_range<0>(qs.data(), g, head.k, head.v, head.stride, task.spans, d, head.mask, head.bias, scores.data(), part, part + g, part + 2 * g);
    }
  });
  for (size_t i = 0; i < heads.size(); i++) {  // merge each query head's ranges
    const int64_t r0 = first[i], ranges = first[i + 1] - first[i];
    for (int64_t gi = 0; gi < g; gi++) {
      float best = -INFINITY;
      for (int64_t r = 0; r < ranges; r++) best = std::max(best, parts[(r0 + r) * g * (d + 2) + gi]);
      float total = 0.f;
      float* o = heads[i].out + gi * d;
      for (int64_t j = 0; j < d; j++) o[j] = 0.f;
      for (int64_t r = 0; r < ranges; r++) {
        const float* part = parts.data() + (r0 + r) * g * (d + 2);
        if (part[gi] == -INFINITY) continue;
        const float w = ranges == 1 ? 1.f : exp1(part[gi] - best);
        total += w * part[g + gi];
        const float* a = part + 2 * g + gi * d;
        for (int64_t j = 0; j < d; j++) o[j] += w * a[j];
      }
      const float inv = 1.0f / total;
      for (int64_t j = 0; j < d; j++) o[j] *= inv;
    }
  }
}

// A decode step's query (and so its result): a contiguous float32 or bf16 CPU tensor; its dtype.
torch::ScalarType check_activation(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() &&
                  (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16),
              name, " must be a contiguous float32 or bf16 CPU tensor, got ", t.scalar_type(), " ", t.sizes());
  return t.scalar_type();
}

// An additive mask of at least n values as contiguous float32 (a bf16 one widened, exactly).
torch::Tensor float_mask(const torch::Tensor& mask, int64_t n, const char* name) {
  TORCH_CHECK(mask.device().is_cpu() && (mask.scalar_type() == torch::kFloat32 || mask.scalar_type() == torch::kBFloat16),
              name, " must be a float32 or bf16 CPU tensor, got ", mask.scalar_type());
  TORCH_CHECK(mask.numel() >= n, name, " has ", mask.numel(), " values for ", n, " keys");
  return mask.to(torch::kFloat32).contiguous();
}

// A head bias's scores as contiguous float32 [H, G] (H KV heads of G query heads each), checked.
torch::Tensor float_head_bias(const torch::Tensor& bias, int64_t h, int64_t g, int64_t lo, int64_t hi, int64_t n,
                              const char* name) {
  TORCH_CHECK(bias.device().is_cpu() && bias.numel() == h * g, name, " must hold one value per query head (", h,
              " KV heads x ", g, "), got ", bias.sizes());
  TORCH_CHECK(0 <= lo && lo <= hi && hi <= n, name, "'s keys ", lo, "..", hi, " are not within the ", n, " keys");
  return bias.to(torch::kFloat32).contiguous();
}

// decode_attention over keys and values of element type T: q and out float32 [B,H,G,D]; bias
// (one per query head, [H,G] float32) added to the scores of keys lo..hi-1, or null.
template <typename T>
void attend_batch(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t n,
                  const float* mp, const float* bias, int64_t bias_lo, int64_t bias_hi, torch::Tensor& out) {
  const int64_t b = q.size(0), h = q.size(1), g = q.size(2), d = q.size(3);
  const float* qp = q.data_ptr<float>();
  const T* kp = k.data_ptr<T>();
  const T* vp = v.data_ptr<T>();
  float* op = out.data_ptr<float>();
  const int64_t s0 = k.stride(0), s1 = k.stride(1), s2 = k.stride(2);
  std::vector<HeadTask<T>> heads;
  heads.reserve(static_cast<size_t>(b * h));
  for (int64_t bi = 0; bi < b; bi++)
    for (int64_t hi = 0; hi < h; hi++)
      heads.push_back({qp + (bi * h + hi) * g * d, kp + bi * s0 + hi * s1, vp + bi * s0 + hi * s1, s2, n, mp,
                       op + (bi * h + hi) * g * d, {bias ? bias + hi * g : nullptr, bias_lo, bias_hi}});
  attend_heads(heads, g, d);
}

// decode_attend_rows with caches, new keys and values of element type T (checked by the caller:
// q's dtype); q and out float32 [B,Hq,1,D].
template <typename T>
void attend_rows(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& k_rot, const torch::Tensor& v,
                 const std::vector<torch::Tensor>& raws, const std::vector<torch::Tensor>& att_ks,
                 const std::vector<torch::Tensor>& att_vs, const std::vector<torch::Tensor>& masks,
                 const torch::Tensor& slots, int64_t layer, const std::vector<torch::Tensor>& biases,
                 torch::Tensor& out) {
  const int64_t b = q.size(0), hq = q.size(1), d = q.size(3), h = k.size(1), g = hq / h;
  const torch::ScalarType dt = k.scalar_type();
  const int64_t* sp = slots.data_ptr<int64_t>();
  std::vector<torch::Tensor> masks_f(static_cast<size_t>(b));  // kept alive for attend_heads
  std::vector<torch::Tensor> biases_f(static_cast<size_t>(b));
  std::vector<HeadTask<T>> heads;
  heads.reserve(static_cast<size_t>(b * h));
  for (int64_t j = 0; j < b; j++) {
    const torch::Tensor& raw = raws[j];
    const torch::Tensor& ak = att_ks[j];
    const torch::Tensor& av = att_vs[j];
    for (const torch::Tensor* t : {&raw, &ak, &av})
      TORCH_CHECK(t->dim() == 5 && t->scalar_type() == dt && t->device().is_cpu() && t->size(1) == 1 &&
                      t->size(2) == h && t->size(4) == d && t->stride(4) == 1 && layer >= 0 && layer < t->size(0),
                  "decode_attend_rows: row ", j, "'s cache ", t->scalar_type(), " ", t->sizes(),
                  " cannot take layer ", layer, " of one session with ", h, " KV heads of ", d, " in ", dt);
    TORCH_CHECK(ak.strides() == av.strides(), "decode_attend_rows: row ", j, "'s keys and values are laid out differently");
    const int64_t* row = sp + slots.size(1) * j;
    const int64_t raw_slot = row[0], att_slot = row[1], n = row[2];
    TORCH_CHECK(raw_slot >= 0 && raw_slot < raw.size(3) && att_slot >= 0 && att_slot < n && n <= ak.size(3),
                "decode_attend_rows: row ", j, ": slots ", raw_slot, ", ", att_slot, " and ", n,
                " keys do not fit its cache ", ak.sizes());
    const float* mp = nullptr;
    if (masks[j].numel()) {
      TORCH_CHECK(masks[j].numel() >= n, "decode_attend_rows: row ", j, "'s mask has ", masks[j].numel(),
                  " values for ", n, " keys");
      masks_f[j] = float_mask(masks[j], n, "decode_attend_rows: mask");
      mp = masks_f[j].data_ptr<float>();
    }
    HeadBias hb{nullptr, 0, 0};
    if (!biases.empty() && biases[j].numel()) {  // the caller checked: slots of 5 columns
      hb.lo = row[3];
      hb.hi = row[4];
      biases_f[j] = float_head_bias(biases[j], h, g, hb.lo, hb.hi, n, "decode_attend_rows: a row's head bias");
    }
    T* k_p = ak.data_ptr<T>() + layer * ak.stride(0);
    T* v_p = av.data_ptr<T>() + layer * av.stride(0);
    // the new token's key and value into their slots
    copy_heads(k.data_ptr<T>() + j * k.stride(0), k.stride(1), h, d,
               raw.data_ptr<T>() + layer * raw.stride(0) + raw_slot * raw.stride(3), raw.stride(2));
    copy_heads(k_rot.data_ptr<T>() + j * k_rot.stride(0), k_rot.stride(1), h, d, k_p + att_slot * ak.stride(3),
               ak.stride(2));
    copy_heads(v.data_ptr<T>() + j * v.stride(0), v.stride(1), h, d, v_p + att_slot * av.stride(3), av.stride(2));
    for (int64_t hi = 0; hi < h; hi++)
      heads.push_back({q.data_ptr<float>() + (j * h + hi) * g * d, k_p + hi * ak.stride(2), v_p + hi * av.stride(2),
                       ak.stride(3), n, mp, out.data_ptr<float>() + (j * h + hi) * g * d,
                       {biases_f[j].defined() ? biases_f[j].data_ptr<float>() + hi * g : nullptr, hb.lo, hb.hi}});
  }
  attend_heads(heads, g, d);
}

}  // namespace

bool attention_avx512_supported() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
  }();
  return supported;
}

bool use_avx512_attention(bool on) { return g_avx512_attention.exchange(on); }

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor> decode_qkv(
    const torch::Tensor& x, const torch::Tensor& norm, double eps, const torch::Tensor& q,
    const torch::Tensor& scale, const c10::optional<torch::Tensor>& bias,
    const torch::Tensor& freqs, int64_t n_heads, int64_t n_kv_heads) {
  check_float(x, "decode_qkv: x");
  check_float(norm, "decode_qkv: norm");
  check_float(freqs, "decode_qkv: freqs");
  TORCH_CHECK(x.dim() == 2 && norm.numel() == x.size(1), "decode_qkv: x [rows, hidden] and norm [hidden]");
  const int64_t m = x.size(0), n = q.size(0);
  TORCH_CHECK(n_heads > 0 && n_kv_heads > 0 && n % (n_heads + 2 * n_kv_heads) == 0,
              "decode_qkv: ", n, " projection rows do not split into ", n_heads, " + 2 x ",
              n_kv_heads, " heads");
  const int64_t d = n / (n_heads + 2 * n_kv_heads);
  TORCH_CHECK(d % 2 == 0 && (freqs.numel() == d || freqs.numel() == m * d), "decode_qkv: freqs must hold ",
              d / 2, " (cos, sin) pairs for heads of ", d, ", for every row or one set per row (",
              m, " rows), got ", freqs.sizes());
  const int64_t f_stride = freqs.numel() == d ? 0 : d;  // one rotation for all rows, or one each
  torch::Tensor qkv = int8_linear(rms_norm_rows(x, norm, eps), q, scale);
  if (bias.has_value()) {
    check_float(*bias, "decode_qkv: bias");
    TORCH_CHECK(bias->numel() == n, "decode_qkv: bias has ", bias->numel(), " values for ", n, " rows");
    qkv.add_(*bias);
  }
  torch::Tensor q_rot = torch::empty({m, n_heads, 1, d}, x.options());
  torch::Tensor k_rot = torch::empty({m, n_kv_heads, 1, d}, x.options());
  const float* f = freqs.data_ptr<float>();
  for (int64_t r = 0; r < m; r++) {
    const float* row = qkv.data_ptr<float>() + r * n;
    rotate_heads(row, n_heads, d, f + r * f_stride, q_rot.data_ptr<float>() + r * n_heads * d);
    rotate_heads(row + n_heads * d, n_kv_heads, d, f + r * f_stride, k_rot.data_ptr<float>() + r * n_kv_heads * d);
  }
  const int64_t nq = n_heads * d, nk = n_kv_heads * d;  // one token: [B, H*D] is [B, H, 1, D]
  return {qkv.narrow(1, 0, nq).view({m, n_heads, 1, d}), qkv.narrow(1, nq, nk).view({m, n_kv_heads, 1, d}),
          qkv.narrow(1, nq + nk, nk).view({m, n_kv_heads, 1, d}), q_rot, k_rot};
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const c10::optional<torch::Tensor>& mask, int64_t n_keys,
                               const c10::optional<torch::Tensor>& head_bias, int64_t bias_lo, int64_t bias_hi) {
  const torch::ScalarType dt = check_activation(q, "decode_attention: q");
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
              "decode_attention: q [B,H,G,D], k and v [B,H,S,D]");
  TORCH_CHECK(n_keys <= k.size(2), "decode_attention: ", n_keys, " keys asked of ", k.size(2));
  const int64_t b = q.size(0), h = q.size(1), g = q.size(2), d = q.size(3);
  const int64_t n = n_keys < 0 ? k.size(2) : n_keys;
  TORCH_CHECK(k.sizes() == v.sizes() && k.size(0) == b && k.size(1) == h && k.size(3) == d,
              "decode_attention: q ", q.sizes(), " does not match k ", k.sizes(), " and v ", v.sizes());
  TORCH_CHECK(d % 8 == 0 && d <= 256, "decode_attention: head size ", d, " is not a multiple of 8 up to 256");
  TORCH_CHECK(n > 0, "decode_attention: no keys");
  for (const torch::Tensor* t : {&k, &v})
    TORCH_CHECK(t->scalar_type() == dt && t->device().is_cpu() && t->stride(3) == 1 &&
                    t->stride(2) == k.stride(2) && t->stride(1) == k.stride(1) && t->stride(0) == k.stride(0),
                "decode_attention: k and v must be CPU tensors of q's dtype (", dt,
                ") laid out alike, rows contiguous");
  torch::Tensor mask_f;
  const float* mp = nullptr;
  if (mask.has_value()) {
    mask_f = float_mask(*mask, n, "decode_attention: mask");
    mp = mask_f.data_ptr<float>();
  }
  torch::Tensor bias_f;
  const float* bp = nullptr;
  if (head_bias.has_value()) {
    bias_f = float_head_bias(*head_bias, h, g, bias_lo, bias_hi, n, "decode_attention: head_bias");
    bp = bias_f.data_ptr<float>();
  }
  torch::Tensor qf = q.to(torch::kFloat32);
  torch::Tensor out = torch::empty(q.sizes(), qf.options());
  if (dt == torch::kFloat32)
    attend_batch<float>(qf, k, v, n, mp, bp, bias_lo, bias_hi, out);
  else
    attend_batch<c10::BFloat16>(qf, k, v, n, mp, bp, bias_lo, bias_hi, out);
  return dt == torch::kFloat32 ? out : out.to(dt);
}

void decode_store(const torch::Tensor& k, const torch::Tensor& k_rot, const torch::Tensor& v,
                  const torch::Tensor& raw, const torch::Tensor& att_k, const torch::Tensor& att_v,
                  int64_t layer, int64_t raw_slot, int64_t att_slot) {
  TORCH_CHECK(k.dim() == 4 && k.size(2) == 1 && k_rot.sizes() == k.sizes() && v.sizes() == k.sizes(),
              "decode_store: k, k_rot and v must be [B,H,1,D] alike, got ", k.sizes(), ", ",
              k_rot.sizes(), ", ", v.sizes());
  const torch::Tensor* caches[3] = {&raw, &att_k, &att_v};
  const torch::Tensor* rows[3] = {&k, &k_rot, &v};
  const int64_t slots[3] = {raw_slot, att_slot, att_slot};
  const int64_t b = k.size(0), h = k.size(1), d = k.size(3);
  for (int c = 0; c < 3; c++) {
    const torch::Tensor& dst = *caches[c];
    const torch::Tensor& src = *rows[c];
    TORCH_CHECK(dst.dim() == 5 && dst.scalar_type() == src.scalar_type() &&
                    dst.scalar_type() == torch::kFloat32 && dst.size(1) == b && dst.size(2) == h &&
                    dst.size(4) == d && dst.stride(4) == 1 && src.stride(3) == 1,
                "decode_store: cache ", c, " ", dst.sizes(), " cannot take rows ", src.sizes());
    TORCH_CHECK(layer >= 0 && layer < dst.size(0) && slots[c] >= 0 && slots[c] < dst.size(3),
                "decode_store: layer ", layer, " slot ", slots[c], " outside ", dst.sizes());
    float* base = dst.data_ptr<float>() + layer * dst.stride(0) + slots[c] * dst.stride(3);
    for (int64_t bi = 0; bi < b; bi++)
      copy_heads(src.data_ptr<float>() + bi * src.stride(0), src.stride(1), h, d, base + bi * dst.stride(1),
                 dst.stride(2));
  }
}

torch::Tensor decode_attend_rows(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& k_rot,
                                 const torch::Tensor& v, const std::vector<torch::Tensor>& raws,
                                 const std::vector<torch::Tensor>& att_ks, const std::vector<torch::Tensor>& att_vs,
                                 const std::vector<torch::Tensor>& masks, const torch::Tensor& slots,
                                 int64_t layer, const std::vector<torch::Tensor>& biases) {
  const torch::ScalarType dt = check_activation(q, "decode_attend_rows: q");
  TORCH_CHECK(q.dim() == 4 && q.size(2) == 1, "decode_attend_rows: q must be [B,Hq,1,D], got ", q.sizes());
  const int64_t b = q.size(0), hq = q.size(1), d = q.size(3);
  TORCH_CHECK(k.dim() == 4 && k.size(0) == b && k.size(2) == 1 && k.size(3) == d && k_rot.sizes() == k.sizes() &&
                  v.sizes() == k.sizes(),
              "decode_attend_rows: k, k_rot and v must be [B,Hkv,1,D] alike for q ", q.sizes(), ", got ",
              k.sizes(), ", ", k_rot.sizes(), ", ", v.sizes());
  const int64_t h = k.size(1);
  TORCH_CHECK(h > 0 && hq % h == 0, "decode_attend_rows: ", hq, " query heads for ", h, " KV heads");
  TORCH_CHECK(d % 8 == 0 && d <= 256, "decode_attend_rows: head size ", d, " is not a multiple of 8 up to 256");
  for (const torch::Tensor* t : {&k, &k_rot, &v})
    TORCH_CHECK(t->scalar_type() == dt && t->device().is_cpu() && t->stride(3) == 1,
                "decode_attend_rows: k, k_rot and v must be CPU tensors of q's dtype (", dt,
                ") with contiguous rows");
  const size_t rows = static_cast<size_t>(b);
  TORCH_CHECK(raws.size() == rows && att_ks.size() == rows && att_vs.size() == rows && masks.size() == rows,
              "decode_attend_rows: ", b, " rows need as many caches and masks, got ", raws.size(), ", ",
              att_ks.size(), ", ", att_vs.size(), ", ", masks.size());
  TORCH_CHECK(slots.scalar_type() == torch::kInt64 && slots.is_contiguous() && slots.dim() == 2 &&
                  slots.size(0) == b && (slots.size(1) == 3 || slots.size(1) == 5),
              "decode_attend_rows: slots must be a contiguous int64 [B, 3] (raw slot, attention slot, keys) or "
              "[B, 5] (and the first and end key a row's head bias weighs)");
  TORCH_CHECK(biases.empty() || (biases.size() == rows && slots.size(1) == 5),
              "decode_attend_rows: head biases need one per row (", b, ", got ", biases.size(),
              ") and slots of 5 columns");
  torch::Tensor qf = q.to(torch::kFloat32);
  torch::Tensor out = torch::empty(q.sizes(), qf.options());
  if (dt == torch::kFloat32)
    attend_rows<float>(qf, k, k_rot, v, raws, att_ks, att_vs, masks, slots, layer, biases, out);
  else
    attend_rows<c10::BFloat16>(qf, k, k_rot, v, raws, att_ks, att_vs, masks, slots, layer, biases, out);
  return dt == torch::kFloat32 ? out : out.to(dt);
}

torch::Tensor decode_mlp(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& o_q,
                         const torch::Tensor& o_scale, const c10::optional<torch::Tensor>& o_bias,
                         const torch::Tensor& norm, double eps, const torch::Tensor& gu_q,
                         const torch::Tensor& gu_scale, const torch::Tensor& down_q,
                         const torch::Tensor& down_scale) {
  check_float(x, "decode_mlp: x");
  check_float(norm, "decode_mlp: norm");
  TORCH_CHECK(x.dim() == 2 && a.dim() == 2 && a.size(0) == x.size(0), "decode_mlp: x [rows, hidden], a [rows, heads x head size]");
  TORCH_CHECK(gu_q.size(0) % 2 == 0 && down_q.size(1) * 2 == gu_q.size(0),
              "decode_mlp: gate/up has ", gu_q.size(0), " rows for a down projection of ", down_q.size(1), " inputs");
  torch::Tensor h = int8_linear(a, o_q, o_scale);
  if (o_bias.has_value()) {
    check_float(*o_bias, "decode_mlp: o_bias");
    h.add_(*o_bias);
  }
  h.add_(x);
  torch::Tensor gu = int8_linear(rms_norm_rows(h, norm, eps), gu_q, gu_scale);
  const int64_t m = x.size(0), inter = down_q.size(1);
  torch::Tensor act = torch::empty({m, inter}, x.options());
  for (int64_t r = 0; r < m; r++) {
    const float* gate = gu.data_ptr<float>() + r * 2 * inter;
    const float* up = gate + inter;
    float* o = act.data_ptr<float>() + r * inter;
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= inter; i += 8) {  // silu(gate) * up, silu(x) = x / (1 + e^-x)
      const __m256 gv = _mm256_loadu_ps(gate + i);
      const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), gv));
      _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < inter; i++) o[i] = gate[i] / (1.0f + exp1(-gate[i])) * up[i];
  }
  return h.add_(int8_linear(act, down_q, down_scale));
}
