"""The compute thread: every forward of every caller runs on one thread (agentcore._compute)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import torch

from agentcore import _compute as compute
from agentcore.core.batch import decode_batch
from agentcore.core.engine import Engine


def _here() -> tuple[str, int]:
    return threading.current_thread().name, threading.get_ident()


def test_a_call_runs_on_the_compute_thread_and_returns_its_result() -> None:
    name, ident = compute.run(_here)
    assert name == "agentcore-compute"
    assert ident != threading.get_ident()
    assert compute.run(_here) == (name, ident)  # always the same thread
    assert compute.run(divmod, 17, 5) == (3, 2)


def test_an_exception_reaches_the_caller_and_the_thread_goes_on() -> None:
    def fails() -> None:
        raise KeyError("no such block")

    with pytest.raises(KeyError, match="no such block"):
        compute.run(fails)
    assert compute.run(lambda: 42) == 42


def test_a_call_from_inside_a_call_runs_at_once() -> None:
    assert compute.run(lambda: compute.run(_here)) == compute.run(_here)


def test_callers_on_many_threads_each_get_their_own_result() -> None:
    got: dict[int, Any] = {}

    def ask(i: int) -> None:
        got[i] = compute.run(lambda: (i * i, _here()[1]))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i: v[0] for i, v in got.items()} == {i: i * i for i in range(8)}
    assert len({v[1] for v in got.values()}) == 1


def test_forwards_from_any_thread_run_on_the_compute_thread(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    forward_hidden = type(tiny_engine.core).forward_hidden

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident())
        return forward_hidden(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny_engine.core), "forward_hidden", spy)
    a, b = tiny_engine.new_session(), tiny_engine.new_session()
    a.append_tokens([5, 6, 7])  # prefill, on this thread's call
    worker = threading.Thread(target=b.append_tokens, args=([8, 9],))
    worker.start()
    worker.join()
    decode_batch(tiny_engine.core, [3, 4], [a.cache, b.cache])
    tiny_engine.core.score(torch.tensor([[1, 2, 3]]), tiny_engine.new_session().cache)
    assert len(seen) >= 4
    assert set(seen) == {compute.run(_here)[1]}


_FIRST_START = """
import threading, torch
from agentcore import _compute as compute
{start}
later = []
t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
t.start(); t.join()
print(compute.threads(), later[0])
"""


@pytest.mark.parametrize(
    "start",
    [
        # the process asks for 2, then the compute thread starts with that count
        "torch.set_num_threads(2)\ncompute.run(int)",
        # the count asked of the compute thread before it starts (Engine.load(threads=2))
        "compute.use_threads(2)",
    ],
    ids=["process-count", "use-threads-first"],
)
def test_the_compute_thread_keeps_its_count_and_later_threads_use_one(start: str) -> None:
    script = _FIRST_START.format(start=start)  # in a fresh process
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "1"]


def test_threads_started_later_use_one_cpu_thread_and_the_compute_thread_keeps_its_own() -> None:
    before = compute.threads()
    try:
        compute.use_threads(2)
        assert compute.threads() == 2
        counts: list[int] = []
        later = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
        later.start()
        later.join()
        assert counts == [1]
    finally:
        compute.use_threads(before)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        compute.use_threads(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_compute_thread_of_its_own() -> None:
    compute.run(_here)  # the parent's thread exists before the fork
    pid = os.fork()
    if pid == 0:  # the child: its copy of the parent's thread is gone
        ok = False
        try:
            ok = compute.run(lambda: 6 * 7) == 42 and compute.run(_here)[0] == "agentcore-compute"
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_interrupt_while_waiting_comes_after_the_call_has_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    finished: list[bool] = []

    def slow() -> None:
        release.wait(5)
        time.sleep(0.2)  # still writing when the interrupt reaches the caller
        finished.append(True)

    caller = threading.get_ident()
    interrupted = False
    real_wait = threading.Event.wait

    def interrupted_once(self: threading.Event, timeout: float | None = None) -> bool:
        nonlocal interrupted
        if threading.get_ident() == caller and not interrupted:  # as if Ctrl-C arrived
            interrupted = True
            release.set()
            raise KeyboardInterrupt
        return real_wait(self, timeout)

    compute.run(int)  # the thread exists before the wait is patched
    monkeypatch.setattr(threading.Event, "wait", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        compute.run(slow)
    monkeypatch.undo()
    assert finished == [True]
