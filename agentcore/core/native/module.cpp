// The Python module of agentcore's native kernels: binds what native.h declares.
#include "native.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

// The extension must be compiled with OpenMP (PyTorch's parallel backend): without it a
// parallel loop runs every item on the calling thread, and the kernels used one core of
// several. A little work per item, so one thread does not take every item at once.
int64_t threads_used(int64_t n) {
  std::vector<char> seen(static_cast<size_t>(std::max(1, at::get_num_threads())), 0);
  parallel_ranges(0, n, 1, [&](int64_t, int64_t) {
    seen[static_cast<size_t>(omp_get_thread_num()) % seen.size()] = 1;
    volatile double sink = 0;
    for (int i = 0; i < 100000; i++) sink = sink + i;
  });
  return std::count(seen.begin(), seen.end(), 1);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // The ops run without the GIL, as PyTorch's own do: while one thread's decode step runs,
  // the server's event loop and other sessions' threads (sampling, streaming) go on. Holding
  // it, a step of 16 sessions kept all of them waiting (py-spy: 70% of the GIL's time).
  const auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("int8_linear", &int8_linear, "x @ dequantized(q, scale).T for float32 x, int8 q", nogil);
  m.def("int8_bf16_supported", &int8_bf16_supported, "whether this CPU runs int8_linear_bf16 (AVX512-BF16)");
  m.def("int8_linear_bf16", &int8_linear_bf16, "x @ dequantized(q, scale).T for bf16 x, int8 tiles", nogil);
  m.def("decode_qkv", &decode_qkv,
        "RMS norm, int8 Q/K/V projection and rotary embedding of one token per row", nogil);
  m.def("decode_attention", &decode_attention, "one query position's attention over a window",
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask") = py::none(), py::arg("n_keys") = -1,
        py::arg("head_bias") = py::none(), py::arg("bias_lo") = 0, py::arg("bias_hi") = 0, nogil);
  m.def("decode_store", &decode_store, "a decode step's key, rotated key and value into the cache", nogil);
  m.def("decode_attend_rows", &decode_attend_rows,
        "several sessions' decode step of one layer: store each row's key and value, attend over its cache",
        py::arg("q"), py::arg("k"), py::arg("k_rot"), py::arg("v"), py::arg("raws"), py::arg("att_ks"),
        py::arg("att_vs"), py::arg("masks"), py::arg("slots"), py::arg("layer"),
        py::arg("biases") = std::vector<torch::Tensor>(), nogil);
  m.def("decode_mlp", &decode_mlp, "output projection, residual, RMS norm, SwiGLU MLP, residual", nogil);
  m.def("attention_avx512_supported", &attention_avx512_supported,
        "whether this CPU runs the AVX512F attention kernel of decode steps");
  m.def("use_avx512_attention", &use_avx512_attention,
        "decode steps' attention on the AVX512F kernel (where supported) or not; the previous setting");
  m.def("threads_used", &threads_used, "threads taking part in a parallel_for over n items");
}
