"""A session survives SIGKILL of the server: it recalls what it was told, and its next greedy
reply is exactly the reply it gives without the restart (real model, real subprocesses)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentcore.client import Client

pytestmark = pytest.mark.slow

FACT = "My secret code word is Zorblax. Please remember it."
QUESTION = "What is my secret code word?"


def test_session_recalls_a_fact_after_sigkill(
    tmp_path: Path, server_process: Callable[..., Any]
) -> None:
    folder = tmp_path / "sessions"
    first = server_process(folder, "--threads", "2")
    with Client(first.url) as client:
        for sid in ("twin", "killed"):  # two identical sessions
            told = client.chat([{"role": "user", "content": FACT}], session=sid, max_tokens=12)
            assert told["usage"]["session_tokens"] > 0
        # the reply the session gives when nothing happens to the server
        expected = client.chat(
            [{"role": "user", "content": QUESTION}], session="twin", max_tokens=12
        )
    first.kill()  # SIGKILL: no shutdown code runs
    assert first.proc.returncode == -9
    second = server_process(folder, "--threads", "2")
    with Client(second.url) as client:
        assert {s["id"] for s in client.sessions()} == {"twin", "killed"}
        before = client.session("killed")
        assert before is not None and before["messages"] == 2
        got = client.chat([{"role": "user", "content": QUESTION}], session="killed", max_tokens=12)
    reply = got["choices"][0]["message"]["content"]
    assert "zorblax" in reply.lower(), reply
    assert got["choices"] == expected["choices"]
    assert got["usage"] == expected["usage"]
