"""A session with recall killed (SIGKILL) at any step of a save restores exactly.

``test_session_journal.py`` kills saves of a session without recall. A session with recall also
appends the blocks that left its window to the block files, before the journal record that
counts them: a kill there leaves blocks on disk that no saved state counts. The restored session
must be the last saved one, continue exactly as if the killed turn had never run, and its next
save must write over the uncounted blocks.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.recall import RecallConfig
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import Session, SessionConfig

CFG = SessionConfig(
    streaming=StreamingConfig(n_sink=4, window=60, chunk_size=30),
    recall=RecallConfig(block_size=16, top_k=2, candidates=4, refresh=4, host_blocks=2),
)
GREEDY = SamplingParams(max_tokens=6, stop_token_ids=())
KILLED_TURN = "the killed turn: " + "words that push blocks out of the window " * 4
REPO = Path(__file__).resolve().parents[2]

_KILL = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
import agentcore.core.recall as recall
import agentcore.core.state as state
from agentcore.core.sampling import SamplingParams
from agentcore.testing import tiny_engine

engine = tiny_engine()  # the tiny_engine fixture's weights (seed 0)
path = Path({path!r})
s = engine.restore_session(path)
s.chat({turn!r}, SamplingParams(max_tokens=6, stop_token_ids=()))
where = {where!r}
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if where == "block files written, not synced":
    recall.os.fsync = die
elif where == "blocks synced, no record":
    state._append = die
elif where == "mid-record":
    real = os.write
    def half(fd, data):
        real(fd, bytes(data[: len(data) // 2]))
        die()
    state.os.write = half
elif where == "compaction: after the history":
    s.disk.journal_len = None
    state.atomic_write_bytes = die
s.save(path)
os._exit(3)
"""


def _blocks(s: Session) -> torch.Tensor:
    store = s.extensions["recall"]
    k, v = store.gather(0, list(range(store.n_blocks)), torch.device("cpu"), torch.float16)
    return torch.cat([k, v])


def _same(a: Session, b: Session) -> None:
    assert a.n_tokens == b.n_tokens
    assert torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]
    assert a.extensions["recall"].n_blocks == b.extensions["recall"].n_blocks
    assert torch.equal(_blocks(a), _blocks(b))


@pytest.mark.parametrize(
    ("where", "survives"),
    [
        ("block files written, not synced", False),
        ("blocks synced, no record", False),
        ("mid-record", False),
        ("compaction: after the history", False),
        ("after the save", True),
    ],
)
def test_a_kill_during_a_save_with_recall_restores_exactly(
    tiny_engine: Engine, tmp_path: Path, where: str, survives: bool
) -> None:
    s = tiny_engine.new_session(CFG)
    path = tmp_path / "s" / "s.session"
    for i in range(4):
        s.chat(f"turn {i}: " + "filler text to evict " * 5, GREEDY)
        s.save(path)
    assert s.extensions["recall"].layers[0].n_persisted > 0  # blocks on disk: what this covers
    copy = tmp_path / "copy"
    shutil.copytree(path.parent, copy)
    twin = tiny_engine.restore_session(copy / "s.session")  # the last saved state
    if survives:
        twin.chat(KILLED_TURN, GREEDY)
    script = textwrap.dedent(_KILL).format(
        repo=str(REPO), path=str(path), turn=KILLED_TURN, where=where
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == (3 if survives else -9), proc.stderr.decode()[-2000:]
    restored = tiny_engine.restore_session(path)
    _same(restored, twin)
    layer = restored.extensions["recall"].layers[0]
    if where.startswith("block"):  # the killed save had appended blocks no state counts
        assert layer.path.stat().st_size > layer.n_blocks * layer.record
    # both go on alike; the next save writes over blocks the killed save left uncounted
    for x in (restored, twin):
        x.chat("the next turn: tell me more about it", GREEDY)
    restored.save(path)
    twin.save(copy / "s.session")
    _same(tiny_engine.restore_session(path), twin)
