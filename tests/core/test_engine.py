"""The engine: the device it reports and memory adapters loaded onto its shared model."""

from __future__ import annotations

import pytest
import torch

from agentcore.core.engine import Engine
from agentcore.core.llama import CoreModel


def test_engine_reports_the_device_its_model_runs_on(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tiny_engine.device == tiny_engine.core.device == torch.device("cpu")
    monkeypatch.setattr(CoreModel, "device", property(lambda self: torch.device("cuda", 0)))
    assert tiny_engine.device == torch.device("cuda", 0)
    assert tiny_engine.info().device == "cuda:0"
