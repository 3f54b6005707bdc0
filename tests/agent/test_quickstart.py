"""The README quickstart (examples/quickstart.py) runs as written, with the model injected:
the fake backend here; the real default model in tests/agent/test_real_agent.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from agentcore.backends import FakeBackend, Reply
from agentcore.memory import LongTermMemory

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("quickstart_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_runs_on_the_fake_backend(
    tmp_path: Path, store: LongTermMemory, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend(
        [
            Reply.call("calculate", expression="17*23"),
            Reply.call("write_file", path="result.txt", content="391"),
        ]
    )
    answer = load_example().main(fake, home=tmp_path / "qs", memory=store)
    assert "391" in answer
    assert (tmp_path / "qs" / "workspace" / "result.txt").read_text() == "391"
    assert capsys.readouterr().out.splitlines()[-1] == "391"
