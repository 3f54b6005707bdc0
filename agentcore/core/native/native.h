// agentcore's native CPU kernels (x86 with AVX2 and FMA, float32 activations; the decode
// attention also bf16): declarations
// shared by the sources of the one extension module (module.cpp binds them to Python).
#pragma once

#include <immintrin.h>
#include <torch/extension.h>

#include <tuple>
#include <vector>

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

// One decode step's pieces of a Llama-family layer (decode.cpp).
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor> decode_qkv(
    const torch::Tensor& x, const torch::Tensor& norm, double eps, const torch::Tensor& q,
    const torch::Tensor& scale, const c10::optional<torch::Tensor>& bias,
    const torch::Tensor& freqs, int64_t n_heads, int64_t n_kv_heads);
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const c10::optional<torch::Tensor>& mask, int64_t n_keys);
void decode_store(const torch::Tensor& k, const torch::Tensor& k_rot, const torch::Tensor& v,
                  const torch::Tensor& raw, const torch::Tensor& att_k, const torch::Tensor& att_v,
                  int64_t layer, int64_t raw_slot, int64_t att_slot);
// Several sessions' decode step of one layer: each row's new key and value stored into its own
// cache, then each row's attention over its first keys (decode.cpp).
torch::Tensor decode_attend_rows(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& k_rot,
                                 const torch::Tensor& v, const std::vector<torch::Tensor>& raws,
                                 const std::vector<torch::Tensor>& att_ks, const std::vector<torch::Tensor>& att_vs,
                                 const std::vector<torch::Tensor>& masks, const torch::Tensor& slots,
                                 int64_t layer);
torch::Tensor decode_mlp(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& o_q,
                         const torch::Tensor& o_scale, const c10::optional<torch::Tensor>& o_bias,
                         const torch::Tensor& norm, double eps, const torch::Tensor& gu_q,
                         const torch::Tensor& gu_scale, const torch::Tensor& down_q,
                         const torch::Tensor& down_scale);

// How many of PyTorch's intra-op threads share an at::parallel_for over n items (module.cpp).
int64_t threads_used(int64_t n);
