"""Suite-wide test rules, on the helpers of :mod:`agentcore.testing`.

- No network: any socket connection to a non-loopback address fails the test
  (:func:`~agentcore.testing.block_network`).
- No real model outside tests marked ``slow``: ``Engine.load`` and ``load_model`` raise
  (:func:`~agentcore.testing.forbid_model_loads`); the fast tests run on the tiny model.
- Hub downloads are switched off (``HF_HUB_OFFLINE``), so a missing local file is an error,
  never a download.
- Tests marked ``gpu`` skip without CUDA.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
from transformers import LlamaForCausalLM

from agentcore import _compute as compute
from agentcore import testing
from agentcore.core import native
from agentcore.core.engine import Engine

_SLOW_HINT = "In this suite, a test that loads a real model is marked `slow`."

testing.forbid_model_loads(hint=_SLOW_HINT)

# the model's work runs on agentcore's compute thread; started before the suite's own PyTorch
# work, it is the process's one thread whose ops run in parallel, as in `agentcore serve`
compute.run(int)

# the native int8 kernel loads (or is built, once) before a test points $AGENTCORE_CACHE at a
# temporary folder, where a first use would build it again
native.int8_linear()


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    with testing.block_network():
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before the test's fixtures, so that a session fixture which loads (real_engine) obeys too
    testing.forbid_model_loads(item.get_closest_marker("slow") is None, hint=_SLOW_HINT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def real_engine() -> Any:
    """The default model (SmolLM2-135M-Instruct), loaded once per test session (slow tests)."""
    return Engine.load()


@pytest.fixture(scope="session")
def tiny_hf() -> LlamaForCausalLM:
    """:func:`agentcore.testing.tiny_llama`, built once."""
    return testing.tiny_llama()


@pytest.fixture(scope="session")
def tiny_engine(tiny_hf: LlamaForCausalLM) -> Engine:
    """:func:`agentcore.testing.tiny_engine` on :func:`tiny_hf` (they share weights)."""
    return testing.tiny_engine(model=tiny_hf)


@pytest.fixture(scope="session")
def tiny_factory() -> Any:
    """:func:`agentcore.testing.tiny_llama`: ``tiny_factory(seed, **LlamaConfig overrides)``."""
    return testing.tiny_llama


_BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="session")
def bench_module() -> Callable[[str], ModuleType]:
    """``bench_module(name)``: the module ``bench/<name>.py``, imported as the bench CLI runs
    it (with ``bench/`` on ``sys.path`` while it and its sibling imports load)."""

    def load(name: str) -> ModuleType:
        sys.path.insert(0, str(_BENCH))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(_BENCH))

    return load
