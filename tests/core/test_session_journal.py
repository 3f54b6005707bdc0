"""Saving a session as a base plus a journal of turns: small writes per turn, exact restores,
torn writes ignored, the whole history readable, kills at any step of a save survived."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import agentcore.core.state as state
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import Session, SessionConfig

CFG = SessionConfig(
    streaming=StreamingConfig(n_sink=4, window=96, chunk_size=32), tail_messages=8, tail_tokens=64
)
GREEDY = SamplingParams(max_tokens=6, stop_token_ids=())
REPO = Path(__file__).resolve().parents[2]


def _tails_agree(a: list | str, b: list | str, at_least: int) -> None:
    """Two bounded tails of the same sequence: each holds its last ``at_least`` items."""
    n = min(len(a), len(b))
    assert n >= at_least
    assert a[len(a) - n :] == b[len(b) - n :]


def _same(a: Session, b: Session) -> None:
    """The same state (memory keeps tails of at least the configured length, which may differ
    in how much more they hold)."""
    assert a.n_tokens == b.n_tokens
    assert torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]
    assert a.n_messages == b.n_messages
    cap = min(a.config.tail_messages, b.config.tail_messages)
    _tails_agree(a.messages, b.messages, min(a.n_messages, cap))
    assert a.transcript.chars == b.transcript.chars
    _tails_agree(a.rendered, b.rendered, min(a.transcript.chars, a.transcript.tail_chars))
    cap = min(a.config.tail_tokens, b.config.tail_tokens)
    _tails_agree(a.tokens.tolist(), b.tokens.tolist(), min(a.n_tokens, cap))
    assert a.cache.pos == b.cache.pos
    assert torch.equal(a.cache.ring_pos, b.cache.ring_pos)


def _turn(s: Session, i: int) -> None:
    s.chat(f"turn {i}: tell me more", GREEDY)


def test_a_save_after_the_first_appends_one_small_record(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    wide = SessionConfig(streaming=StreamingConfig(n_sink=4, window=2048, chunk_size=64))
    s = tiny_engine.new_session(wide)
    path = tmp_path / "s.session"
    s.append_text("x" * 2100)  # a full window
    s.save(path)
    base = path.read_bytes()
    journal = path.with_name("s.session.journal")
    before = journal.stat().st_size
    _turn(s, 3)
    s.save(path)
    assert path.read_bytes() == base  # the base is not rewritten
    record = journal.stat().st_size - before
    # the turn's tokens' window slots plus a fixed part (logits, sinks, sampler): far less
    # than the whole window the base holds, and growing with the turn's tokens only
    assert 0 < record < len(base) // 10
    n_short = s.n_tokens - 2100
    before = journal.stat().st_size
    s.chat("a much longer turn " * 40, GREEDY)
    n_long = s.n_tokens - 2100 - n_short
    s.save(path)
    longer = journal.stat().st_size - before
    per_token = (longer - record) / (n_long - n_short)
    assert per_token < 1.2 * (2 * 2 * 16 * 2 * 4)  # k and v of 2 layers x 2 heads x 16 dims
    restored = tiny_engine.restore_session(path)
    _same(restored, s)
    # and it continues exactly like the original
    a, b = s.generate(GREEDY), restored.generate(GREEDY)
    assert a.token_ids == b.token_ids


def test_many_saves_wrap_the_window_compact_and_keep_the_whole_history(
    tiny_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "_MIN_JOURNAL", 0)  # compact as soon as the journal > base
    s = tiny_engine.new_session(CFG)
    path = tmp_path / "s.session"
    bases = set()
    for i in range(40):
        _turn(s, i)
        s.save(path)
        bases.add(s.disk.base_id)
        if i % 9 == 0:
            _same(tiny_engine.restore_session(path), s)
    assert s.cache.pos > 4 * CFG.streaming.window  # wrapped many times
    assert len(bases) > 2  # compacted several times
    assert len(s.messages) <= 2 * CFG.tail_messages + 4  # memory keeps a bounded tail
    restored = tiny_engine.restore_session(path)
    _same(restored, s)
    messages = list(restored.history("messages"))
    assert len(messages) == s.n_messages == 80
    assert messages[0]["content"] == "turn 0: tell me more"
    assert [m["content"] for m in messages[-2:]] == [m["content"] for m in s.messages[-2:]]
    ids = list(restored.history("tokens"))
    assert len(ids) == s.n_tokens and ids[-len(s.tokens) :] == s.tokens.tolist()
    # the stream's ids are the template text of the whole conversation, turn after turn
    assert tiny_engine.codec.decode(ids).endswith(s.rendered)


def test_a_torn_or_corrupt_last_record_is_ignored(tiny_engine: Engine, tmp_path: Path) -> None:
    s = tiny_engine.new_session(CFG)
    path = tmp_path / "s.session"
    _turn(s, 0)
    s.save(path)
    _turn(s, 1)
    s.save(path)
    good = s.fork()
    journal = path.with_name("s.session.journal")
    intact = journal.read_bytes()
    _turn(s, 2)
    s.save(path)
    full = journal.read_bytes()
    for cut in (len(intact) + 3, len(intact) + 100, len(full) - 1):
        journal.write_bytes(full[:cut])
        _same(tiny_engine.restore_session(path), good)
    corrupt = bytearray(full)
    corrupt[len(intact) + 200] ^= 0xFF
    journal.write_bytes(bytes(corrupt))
    restored = tiny_engine.restore_session(path)
    _same(restored, good)
    # the next save writes over the torn record
    _turn(restored, 2)
    restored.save(path)
    _same(tiny_engine.restore_session(path), restored)
    _same(restored, s)


def test_a_journal_of_another_base_is_ignored(tiny_engine: Engine, tmp_path: Path) -> None:
    """A compaction killed after writing its base leaves the old base's journal: the new base
    holds everything, the old journal must not be replayed on top."""
    s = tiny_engine.new_session(CFG)
    path = tmp_path / "s.session"
    _turn(s, 0)
    s.save(path)
    _turn(s, 1)
    s.save(path)
    old_journal = path.with_name("s.session.journal").read_bytes()
    s.disk.journal_len = None  # the next save compacts
    _turn(s, 2)
    s.save(path)
    path.with_name("s.session.journal").write_bytes(old_journal)
    _same(tiny_engine.restore_session(path), s)


def test_a_fork_saved_elsewhere_carries_the_history(tiny_engine: Engine, tmp_path: Path) -> None:
    s = tiny_engine.new_session(CFG)
    for i in range(6):
        _turn(s, i)
        s.save(tmp_path / "a.session")
    twin = s.fork()
    _turn(twin, 6)
    twin.save(tmp_path / "b.session")
    b = tiny_engine.restore_session(tmp_path / "b.session")
    assert len(list(b.history("messages"))) == 14
    assert len(list(s.history("messages"))) == 12


_KILL = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
import agentcore.core.state as state
from agentcore.core.sampling import SamplingParams
from agentcore.testing import tiny_engine

engine = tiny_engine()
path = Path({path!r})
s = engine.restore_session(path)
s.chat("turn after: tell me more", SamplingParams(max_tokens=6, stop_token_ids=()))
where = {where!r}
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if where == "mid-record":
    real = os.write
    def half(fd, data):
        real(fd, bytes(data[: len(data) // 2]))
        die()
    state.os.write = half
elif where == "compaction: after the history":
    s.disk.journal_len = None
    state.atomic_write_bytes = die
elif where == "compaction: after the base":
    s.disk.journal_len = None
    real_atomic = state.atomic_write_bytes
    calls = []
    def second(p, data):
        calls.append(p)
        if len(calls) == 2:
            die()
        real_atomic(p, data)
    state.atomic_write_bytes = second
s.save(path)
os._exit(3)
"""


@pytest.mark.parametrize(
    ("where", "survives"),
    [
        ("mid-record", False),
        ("compaction: after the history", False),
        ("compaction: after the base", True),
        ("after the save", True),
    ],
)
def test_a_kill_at_any_step_of_a_save_restores_exactly(
    tiny_engine: Engine, tmp_path: Path, where: str, survives: bool
) -> None:
    s = tiny_engine.new_session(CFG)
    path = tmp_path / "s.session"
    for i in range(4):
        _turn(s, i)
        s.save(path)
    shutil.copytree(tmp_path, tmp_path.parent / f"{tmp_path.name}-copy")
    twin = tiny_engine.restore_session(tmp_path.parent / f"{tmp_path.name}-copy" / "s.session")
    twin.chat("turn after: tell me more", GREEDY)
    script = textwrap.dedent(_KILL).format(repo=str(REPO), path=str(path), where=where)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == (3 if where == "after the save" else -9), proc.stderr.decode()
    restored = tiny_engine.restore_session(path)
    expected = twin if survives else s
    _same(restored, expected)
    assert len(list(restored.history("messages"))) == expected.n_messages
    # and it goes on saving and restoring from there
    _turn(restored, 9)
    restored.save(path)
    _same(tiny_engine.restore_session(path), restored)


def test_a_session_saved_in_format_1_loads_and_continues(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    """One file holding everything (format 1): it loads, its next turn adds exactly what the
    whole render would, and its next save writes the base, journal and history."""
    import io
    import json

    class Ascii:  # replies of printable ASCII: the stream's text is the template's
        def allowed_tokens(self) -> torch.Tensor:
            mask = torch.zeros(258, dtype=torch.bool)
            mask[32:127] = True
            mask[257] = True
            return mask

        def advance(self, token_id: int) -> None:
            pass

        def is_finished(self) -> bool:
            return False

    def turn(s: Session, i: int) -> None:
        s.chat(f"turn {i}: tell me more", GREEDY, constraint=Ascii())

    s = tiny_engine.new_session(CFG)
    for i in range(2):
        turn(s, i)
    path = s.save(tmp_path / "new.session")
    header, _, body = path.read_bytes().partition(b"\n")
    payload = torch.load(io.BytesIO(body), weights_only=True)
    for key in ("transcript", "history_bytes", "tail_messages", "tail_tokens"):
        del payload[key]
    payload["messages"] = json.dumps(s.messages)
    payload["rendered"] = s.rendered
    payload["tokens"] = torch.tensor(list(s.history("tokens")), dtype=torch.int64)  # all of them
    old_header = json.loads(header.split(b" ", 1)[1])
    old_header = {"version": 1, "model": old_header["model"]}
    buf = io.BytesIO()
    torch.save(payload, buf)
    old = tmp_path / "old.session"
    old.write_bytes(
        b"AGENTCORE-SESSION " + json.dumps(old_header).encode() + b"\n" + buf.getvalue()
    )
    r = tiny_engine.restore_session(old)
    assert r.n_messages == 4 and r.transcript.mark is None
    turn(r, 2)
    turn(s, 2)
    _same(r, s)
    r.save(old)
    again = tiny_engine.restore_session(old)
    _same(again, s)
    assert [m["content"] for m in again.history("messages")][::2] == [
        f"turn {i}: tell me more" for i in range(3)
    ]
