"""``bench/attend_rows.py`` times each attention kernel on the same caches and leaves the
process's kernel setting as it found it (tiny shapes, tiny model)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from agentcore.core import native
from agentcore.core.engine import Engine
from tests.core.test_native import kernel


@pytest.fixture(scope="module")
def attend_rows(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("attend_rows")


@pytest.fixture
def ops() -> object:
    kernel()  # skips where the module cannot run, fails where it should and does not
    return native.decode_ops()


def test_every_kernel_this_cpu_runs_is_timed_on_the_same_caches(
    attend_rows: ModuleType, ops: object
) -> None:
    names = attend_rows.kernels(ops)
    assert names[0] == "avx2"
    assert ("avx512" in names) == ops.attention_avx512_supported()  # type: ignore[attr-defined]
    f = attend_rows.frames(3, 2, 2, 64, 4, 32, 40, torch.bfloat16)
    q, k = torch.randn(3, 6, 1, 64).bfloat16(), torch.randn(3, 2, 1, 64).bfloat16()
    before = ops.use_avx512_attention(False)  # type: ignore[attr-defined]
    try:
        times = attend_rows.time_rows(ops, f, q, k, 2, 4)
        # the setting the process had is back (the bench's own use of it left no trace)
        assert ops.use_avx512_attention(False) is False  # type: ignore[attr-defined]
    finally:
        ops.use_avx512_attention(before)  # type: ignore[attr-defined]
    assert set(times) == set(names)
    assert all(len(t) == 4 and min(t) > 0 for t in times.values())


def test_whole_steps_run_each_kernel_on_recall_sessions(
    attend_rows: ModuleType, ops: object, tiny_engine: Engine
) -> None:
    times = attend_rows.time_steps(ops, tiny_engine, 30, 2, 3)
    assert set(times) == set(attend_rows.kernels(ops))
    assert all(len(t) == 3 and min(t) > 0 for t in times.values())
