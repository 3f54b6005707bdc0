"""The engine: the device it reports and memory adapters loaded onto its shared model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from agentcore.core.codec import ByteCodec
from agentcore.core.engine import Engine
from agentcore.core.infini import MemoryGates
from agentcore.core.llama import CoreModel


def test_engine_reports_the_device_its_model_runs_on(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tiny_engine.device == tiny_engine.core.device == torch.device("cpu")
    monkeypatch.setattr(CoreModel, "device", property(lambda self: torch.device("cuda", 0)))
    assert tiny_engine.device == torch.device("cuda", 0)
    assert tiny_engine.info().device == "cuda:0"


def _adapter(path: Path, engine: Engine, seed: int) -> tuple[Path, list[torch.Tensor]]:
    """A memory adapter file with random low-rank Q/K/V updates, and the merged updates."""
    d = engine.core.dims
    n_qkv = (d.n_heads + 2 * d.n_kv_heads) * d.head_dim
    g = torch.Generator().manual_seed(seed)
    extra = {}
    for i in range(d.n_layers):
        extra[f"lora.A.{i}"] = torch.randn(2, d.hidden, generator=g)
        extra[f"lora.B.{i}"] = torch.randn(n_qkv, 2, generator=g)
    scale = 0.5
    MemoryGates(d.n_layers, d.n_heads).save(
        path, config={"lora_scale": scale}, metrics={}, extra=extra
    )
    deltas = [extra[f"lora.B.{i}"] @ extra[f"lora.A.{i}"] * scale for i in range(d.n_layers)]
    return path, deltas


def _qkv(engine: Engine) -> list[torch.Tensor]:
    return [layer.w_qkv.detach().clone() for layer in engine.core.layers]  # type: ignore[union-attr]


def test_loading_an_adapter_again_replaces_its_update(tiny_factory: Any, tmp_path: Path) -> None:
    engine = Engine.from_hf(tiny_factory(), ByteCodec(), name="tiny-adapter")
    before = _qkv(engine)
    first, deltas = _adapter(tmp_path / "a.safetensors", engine, seed=1)
    engine.load_memory_adapter(first)
    once = _qkv(engine)
    for w, b, d in zip(once, before, deltas, strict=True):
        torch.testing.assert_close(w - b, d, atol=1e-5, rtol=0)
    engine.load_memory_adapter(first)  # the same adapter again: no second delta
    for w, o in zip(_qkv(engine), once, strict=True):
        torch.testing.assert_close(w, o, atol=1e-6, rtol=0)
    second, deltas2 = _adapter(tmp_path / "b.safetensors", engine, seed=2)
    engine.load_memory_adapter(second)  # another adapter replaces the first one's update
    for w, b, d in zip(_qkv(engine), before, deltas2, strict=True):
        torch.testing.assert_close(w - b, d, atol=1e-5, rtol=0)


def test_loading_an_adapter_waits_for_the_running_forward(
    tiny_factory: Any, tmp_path: Path
) -> None:
    engine = Engine.from_hf(tiny_factory(), ByteCodec(), name="tiny-adapter-lock")
    path, _ = _adapter(tmp_path / "a.safetensors", engine, seed=3)
    before = _qkv(engine)
    loader = threading.Thread(target=engine.load_memory_adapter, args=(path,))
    with engine.lock:  # a forward is running on the shared model
        loader.start()
        loader.join(timeout=0.5)
        assert loader.is_alive()
        assert all(torch.equal(w, b) for w, b in zip(_qkv(engine), before, strict=True))
    loader.join(timeout=30)
    assert not loader.is_alive()
    assert not torch.equal(_qkv(engine)[0], before[0])
