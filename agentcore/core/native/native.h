// agentcore's native CPU kernels (x86 with AVX2 and FMA, float32 activations; the decode
// attention also bf16): declarations
// shared by the sources of the one extension module (module.cpp binds them to Python).
#pragma once

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <omp.h>
#include <torch/extension.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <tuple>
#include <vector>

// f(b, e) over [begin, end) split into one range per PyTorch thread of the calling thread (at
// most one per `grain` items), as at::parallel_for splits it, but without that header's lazy
// set-up of the thread count: its "done" flag is a thread_local of every library that inlines
// it, so this module's first loop on a thread set the thread's count to the process-wide one.
// agentcore's compute thread keeps a count of its own (the process-wide one is 1, for every
// other thread), and from its first native op on the model ran on one core. at::get_num_threads
// is PyTorch's own (its flag set when the thread first ran PyTorch in parallel). The first
// exception a range throws is rethrown here.
template <typename F>
inline void parallel_ranges(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (begin >= end) return;
  const int64_t items = end - begin;
  const int64_t most = grain > 1 ? (items + grain - 1) / grain : items;
  const int64_t teams = std::min<int64_t>(at::get_num_threads(), most);
  if (teams <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int64_t chunk = (items + teams - 1) / teams;
  std::exception_ptr failed;
  std::once_flag first;
#pragma omp parallel num_threads(static_cast<int>(teams))
  {
    const int64_t b = begin + omp_get_thread_num() * chunk;
    if (b < end) {
      try {
        f(b, std::min(end, b + chunk));
      } catch (...) {
        std::call_once(first, [&] { failed = std::current_exception(); });
      }
    }
  }
  if (failed) std::rethrow_exception(failed);
}

// The sum of a vector's eight floats.
inline float horizontal_sum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(lo);
}

// x [m, k] @ (q [n, k] int8 * scale).T -> [m, n]; scale [n] per row or [n, groups] per group
// of k / groups inputs (int8_linear.cpp).
torch::Tensor int8_linear(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scale);

// bf16 x [m, k] @ (q * scale).T -> bf16 [m, n] on AVX512-BF16, with q held in tiles
// (agentcore.core.native.int8_tiles) and one bf16 scale per output row (int8_bf16.cpp);
// int8_bf16_supported() says whether the CPU runs it.
bool int8_bf16_supported();
torch::Tensor int8_linear_bf16(const torch::Tensor& x, const torch::Tensor& tiles, const torch::Tensor& scale);

// One decode step's pieces of a Llama-family layer (decode.cpp).
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor> decode_qkv(
    const torch::Tensor& x, const torch::Tensor& norm, double eps, const torch::Tensor& q,
    const torch::Tensor& scale, const c10::optional<torch::Tensor>& bias,
    const torch::Tensor& freqs, int64_t n_heads, int64_t n_kv_heads);
// head_bias: [H, G] added to the scores of keys bias_lo..bias_hi-1 by each query head, or none.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const c10::optional<torch::Tensor>& mask, int64_t n_keys,
                               const c10::optional<torch::Tensor>& head_bias, int64_t bias_lo, int64_t bias_hi);
void decode_store(const torch::Tensor& k, const torch::Tensor& k_rot, const torch::Tensor& v,
                  const torch::Tensor& raw, const torch::Tensor& att_k, const torch::Tensor& att_v,
                  int64_t layer, int64_t raw_slot, int64_t att_slot);
// Whether this CPU runs the AVX512F attention kernel, and whether decode steps use it (on by
// default where supported; returns the previous setting): tests compare it with the AVX2 one.
bool attention_avx512_supported();
bool use_avx512_attention(bool on);
// Several sessions' decode step of one layer: each row's new key and value stored into its own
// cache, then each row's attention over its first keys (decode.cpp); biases: none, or one per
// row (an empty tensor for none) over the keys that columns 3 and 4 of its slots bound.
torch::Tensor decode_attend_rows(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& k_rot,
                                 const torch::Tensor& v, const std::vector<torch::Tensor>& raws,
                                 const std::vector<torch::Tensor>& att_ks, const std::vector<torch::Tensor>& att_vs,
                                 const std::vector<torch::Tensor>& masks, const torch::Tensor& slots,
                                 int64_t layer, const std::vector<torch::Tensor>& biases);
torch::Tensor decode_mlp(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& o_q,
                         const torch::Tensor& o_scale, const c10::optional<torch::Tensor>& o_bias,
                         const torch::Tensor& norm, double eps, const torch::Tensor& gu_q,
                         const torch::Tensor& gu_scale, const torch::Tensor& down_q,
                         const torch::Tensor& down_scale);

// How many of PyTorch's intra-op threads share a parallel_ranges over n items (module.cpp).
int64_t threads_used(int64_t n);
