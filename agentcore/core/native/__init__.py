"""Native CPU kernels agentcore compiles for itself: C++ built against the installed PyTorch.

One extension module (``module.cpp`` binds the sources, ``native.h`` declares them), for x86
CPUs with AVX2 and FMA (float32 activations; one kernel for bf16 ones on AVX512-BF16):

- :func:`int8_linear` (``int8_linear.cpp``): a linear layer whose weight is int8 with a float32
  scale per output row or per group of inputs. PyTorch's own int8 kernel is vectorized for bf16
  activations only, so a CPU without bf16 dot products (AVX2 only) ran its weights as float32,
  reading 4 bytes per weight per decode step; this one reads 1
  (``docs/benchmarks/dtype-avx2-native/``).
- :func:`int8_linear_bf16` (``int8_bf16.cpp``, CPUs with AVX512-BF16): the same layer for bf16
  activations and bf16 scales, the weight held in tiles of 16 outputs by 2 inputs
  (:func:`int8_tiles`). One vdpbf16ps per row and pair of inputs, each
  int8 weight widened and read once for up to 16 rows, every row summed as it would be alone:
  SmolLM2's projections, 2 threads, 4.8 ms a pass at 1 row (PyTorch's int8 kernel 9.0) and
  11.6 at 16 rows (PyTorch's 36.8, the bf16 copy batches ran on 17.7). Its functions carry
  their own target attribute, so the module still builds with ``-mavx2`` and runs elsewhere.
- :func:`decode_ops` (``decode.cpp``): one decode step of a Llama-family layer in four calls
  (norm + Q/K/V + rotation; storing the new key and value; attention over the cached keys;
  output projection + MLP with both residuals) instead of ~55 small PyTorch ops, most of a
  step's time once the weights are int8 (SmolLM2, 2 threads: 15.1 -> 8.7 ms per token after a
  short prompt). :class:`~agentcore.core.llama.CoreModel` and the streaming cache use them where
  they apply and keep their PyTorch path elsewhere. Several sessions' decode steps batched
  into one forward run on them too: ``decode_attend_rows`` stores each row's key and value in
  its own cache and runs every row's attention in one call per layer
  (:class:`~agentcore.core.cache.DecodeRows`). The two attention ops also read bf16 caches
  (a model held in bf16 where the CPU has bf16 dot products), computing in float32: one
  session's decode attention over 2048 keys 2.2x faster than PyTorch's bf16 matmuls, and
  several sessions' rows without copying their keys side by side.

The module is compiled with OpenMP (PyTorch's parallel backend: without it its parallel loops
ran on one core, :func:`threads_used`) once per PyTorch version, source and CPU kind into
``<cache_root>/kernels/`` (``make setup`` does it, ~40 s; a process that finds it missing
compiles it on first use), then loaded in ~10 ms. Every load checks the int8 kernel against a
plain PyTorch product before use. Where the module cannot be had (not x86 with AVX2, no C++
compiler or ninja, a failed build or check, or ``AGENTCORE_NATIVE=0``) :func:`int8_linear` and
:func:`decode_ops` return None and :func:`status` says why: the callers keep their PyTorch path.

``python -m agentcore.core.native`` builds the module and prints the status.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agentcore import _compute as compute
from agentcore.paths import cache_root

__all__ = [
    "Int8Linear",
    "build_dir",
    "call",
    "decode_ops",
    "int8_linear",
    "int8_linear_bf16",
    "int8_tiles",
    "status",
    "threads_used",
]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
# the module's sources (module.cpp binds them); native.h is hashed with them
SOURCES = tuple(
    _HERE / name for name in ("module.cpp", "int8_linear.cpp", "int8_bf16.cpp", "decode.cpp")
)
HEADERS = (_HERE / "native.h",)
FLAGS = ("-O3", "-mavx2", "-mfma", "-fopenmp")
ENV = "AGENTCORE_NATIVE"  # "0" turns the native kernels off
_CAPABLE = ("AVX2", "AVX512")  # torch.backends.cpu.get_cpu_capability() values with AVX2 + FMA

Int8Linear = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _key() -> str:
    """These sources, these flags, this PyTorch and this Python, hashed (reads the sources)."""
    stamp = b"|".join(
        [
            *(path.read_bytes() for path in (*SOURCES, *HEADERS)),
            " ".join(FLAGS).encode(),
            torch.__version__.encode(),
            sys.version.split()[0].encode(),
            platform.machine().encode(),
        ]
    )
    return hashlib.sha256(stamp).hexdigest()[:16]


def build_dir() -> Path:
    """Where the build of these sources (with these flags, for this PyTorch) is kept."""
    return cache_root() / "kernels" / f"native-{_key()}"


def _unsupported() -> str | None:
    """Why this process cannot use the kernel before trying to build it, or None."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"turned off ({ENV}=0)"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"x86-64 only, this is {platform.machine()}"
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in _CAPABLE:
        return f"needs AVX2 and FMA; PyTorch reports CPU capability {capability}"
    return None


def _check(kernel: Int8Linear) -> str | None:
    """None if the kernel agrees with a float32 PyTorch product (shapes that exercise every
    path: 1-4 rows, tiles of a batch, an input size that is no multiple of 16, a scale per
    group of inputs), else why not."""
    gen = torch.Generator().manual_seed(0)
    cases = ((1, 37, 40, 1), (3, 16, 64, 1), (11, 9, 72, 1), (5, 7, 96, 3))
    for rows, n_out, n_in, groups in cases:
        x = torch.randn(rows, n_in, generator=gen)
        q = torch.randint(-127, 128, (n_out, n_in), generator=gen, dtype=torch.int8)
        scale = torch.rand(n_out, groups, generator=gen) / 64
        weight = (q.float().view(n_out, groups, -1) * scale[..., None]).view(n_out, n_in)
        want = x @ weight.T
        if groups == 1:
            scale = scale[:, 0].contiguous()
        got = kernel(x, q, scale)
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
            worst = (got - want).abs().max().item() if got.shape == want.shape else got.shape
            return f"its result differs from PyTorch's ({rows}x{n_in} by {n_out}: {worst})"
    return None


@functools.cache
def _load() -> tuple[Any, str]:
    reason = _unsupported()
    if reason is not None:
        return None, reason
    folder = build_dir()
    # the module's name carries the key (the folder's): PyTorch numbers a second build under a
    # name it has built from other sources in this process and compiles it again
    name = "agentcore_" + folder.name.replace("-", "_")
    built = (folder / f"{name}.so").is_file()
    try:
        from torch.utils.cpp_extension import load

        folder.mkdir(parents=True, exist_ok=True)
        if not built:
            log.info("compiling agentcore's native kernels into %s (once, ~40 s)", folder)
        start = time.perf_counter()
        module: Any = load(
            name=name,
            sources=[str(path) for path in SOURCES],
            extra_cflags=list(FLAGS),
            extra_ldflags=["-fopenmp"],
            build_directory=str(folder),
            verbose=False,
        )
        if not built:
            log.info("compiled in %.1f s", time.perf_counter() - start)
    except Exception as exc:  # no compiler, no ninja, a failed build: keep PyTorch's path
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("agentcore's native kernels are unavailable (%s); using PyTorch's", first)
        log.debug("the native kernels' build failed", exc_info=True)
        return None, f"could not be built: {first}"
    # the checks run the kernels in parallel: on the compute thread, whose OpenMP team runs
    # every decode step (a team started by the thread that happened to load the module, a
    # program's main thread, made the process hold more OpenMP threads than CPUs, and libgomp
    # then woke its workers through the kernel for each parallel region: SmolLM2's decode
    # steps took 29 ms instead of 12 after `native.decode_ops()` ran before `Engine.load`)
    wrong = compute.run(_check, module.int8_linear)
    if wrong is not None:
        log.warning("agentcore's native kernels are not used: %s", wrong)
        return None, f"failed its check: {wrong}"
    return module, f"ready ({folder})"


def int8_linear() -> Int8Linear | None:
    """``kernel(x, q, scale) -> x @ (q * scale[:, None]).T`` for ``x: [rows, n_in]`` float32,
    ``q: [n_out, n_in]`` int8 and ``scale: [n_out]`` float32 (both contiguous; or ``scale:
    [n_out, groups]``, one per group of ``n_in / groups`` inputs, a multiple of 16), or None where
    this machine cannot run it (:func:`status` says why). Built or loaded on the first call."""
    module = _load()[0]
    return None if module is None else module.int8_linear


def int8_tiles(q: torch.Tensor) -> torch.Tensor:
    """``q: [n_out, n_in]`` int8 as :func:`int8_linear_bf16` reads it: ``[n_out / 16, n_in / 2,
    16, 2]``, tiles of 16 outputs whose inputs come in pairs (``int8_bf16.cpp``)."""
    n_out, n_in = q.shape
    return q.reshape(n_out // 16, 16, n_in // 2, 2).permute(0, 2, 1, 3).contiguous()


def _check_bf16(kernel: Int8Linear) -> str | None:
    """None if the bf16 kernel agrees with a float32 PyTorch product rounded to bf16 (1-3 rows,
    a block of 16 and the rows after it, several tiles), else why not."""
    gen = torch.Generator().manual_seed(0)
    for rows, n_out, n_in in ((1, 16, 2), (3, 48, 64), (17, 32, 130)):
        x = torch.randn(rows, n_in, generator=gen).to(torch.bfloat16)
        q = torch.randint(-127, 128, (n_out, n_in), generator=gen, dtype=torch.int8)
        scale = (torch.rand(n_out, generator=gen) / 64).to(torch.bfloat16)
        want = x.float() @ (q.float() * scale.float()[:, None]).T
        got = kernel(x, int8_tiles(q), scale)
        if got.shape != want.shape or not torch.allclose(got.float(), want, rtol=1e-2, atol=1e-2):
            worst = (
                (got.float() - want).abs().max().item() if got.shape == want.shape else got.shape
            )
            return f"its bf16 result differs from PyTorch's ({rows}x{n_in} by {n_out}: {worst})"
    return None


@functools.cache
def int8_linear_bf16() -> Int8Linear | None:
    """``kernel(x, tiles, scale) -> x @ (q * scale[:, None]).T`` in bf16 for ``x: [rows, n_in]``
    bf16, ``q: [n_out, n_in]`` int8 held as ``tiles`` (:func:`int8_tiles`)
    and ``scale: [n_out]`` bf16, on CPUs with AVX512-BF16 (``int8_bf16.cpp``); None where the
    module or the CPU cannot run it or its check failed (logged)."""
    module = _load()[0]
    if module is None or not module.int8_bf16_supported():
        return None
    wrong = compute.run(_check_bf16, module.int8_linear_bf16)  # on its thread, as _load's
    if wrong is not None:
        log.warning("agentcore's bf16 int8 kernel is not used: %s", wrong)
        return None
    return module.int8_linear_bf16


def decode_ops() -> Any | None:
    """The module's decode-step operations (``decode.cpp``): ``decode_qkv``, ``decode_store``,
    ``decode_attention``, ``decode_attend_rows`` and ``decode_mlp``, for float32 activations
    and int8 weights (the two attention ops also for bf16); None
    where the native module is not available (:func:`status` says why)."""
    return _load()[0]


def call(name: str, op: Callable[..., Any], *args: Any) -> Any:
    """``op(*args)``, marked ``agentcore::<name>`` while ``torch.profiler`` records (a native
    op is otherwise invisible to it; ``bench speed --profile-step`` counts these marks)."""
    if torch.autograd._profiler_enabled():
        with torch.profiler.record_function(f"agentcore::{name}"):
            return op(*args)
    return op(*args)


def threads_used(items: int = 64) -> int:
    """How many of PyTorch's intra-op threads share a parallel loop of ``items`` items in the
    native module (it is compiled with OpenMP, PyTorch's parallel backend; without it every
    loop ran on one core: 11.3 ms a pass over SmolLM2's weights instead of 6.0 on two). 0 where
    the module is not available."""
    module = _load()[0]
    return 0 if module is None else int(module.threads_used(items))


def status() -> str:
    """``"ready (...)"`` or why the kernel is not used."""
    return _load()[1]
