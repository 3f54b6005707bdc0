"""The long-session benchmark: what a short turn costs after 2K, 100K and 1M tokens of history.

A session is used the way agents and the server use one: a persistent named session of a
:class:`~agentcore.backends.LocalBackend` on the default model (``Engine.load()``, the model
card's window), saved after every turn into a sessions folder. Two arms, each its own backend
and folder on the same engine: ``recall`` (exact recall of evicted blocks, the default of
``agentcore chat``/``serve`` and the Agent) and ``plain`` (``--no-recall``: sinks + window).

The history grows with real text: chat turns whose user message is 500-2,000 tokens of the
public-domain books in ``../shared/data`` and whose assistant reply is a short canned line,
appended as messages (not generated, so growing runs at prefill speed) with the ledger and raw
records the backend would keep for a request; the session is saved every ``--save-every``
tokens. At each checkpoint (history length in tokens), per arm:

- **short turn**: ``backend.complete`` of a one-line question (greedy, exactly 8 tokens:
  the end-of-turn token does not stop it, so every checkpoint decodes as many), timed whole
  (render, probe and prefill, decode, save); one warm-up, then ``--turns`` timed; median and
  p90. Each is followed by the same turn on a reference session of the arm kept at the first
  checkpoint's length: the median of the pairs' ratios is the history's cost at the same
  moments (this machine's speed drifts with other jobs); the ratio to the first checkpoint's
  median is shown too;
- **bytes per turn**: bytes the process passed to ``write()`` during one turn and its save
  (``/proc/self/io`` ``wchar``: journal record, compactions, recall block files), for a
  ~10-token turn and a ~1,000-token turn (``--byte-turns`` of each; median and max, a max
  above the median is a compaction);
- **restore**: a second backend on the same folder restores the session (time, and whether
  its next-token logits equal the live session's bit for bit);
- **memory**: process RSS (anonymous and file-backed), the recall store's RAM and disk
  (``Session.stats()``), and once per arm the RSS of ``--idle-sessions`` idle resident
  sessions (each after one ~2,500-token turn: a full window) divided by their number;
- **growth**: tokens/s of growing the history up to the checkpoint (saves included).

``--profile`` runs cProfile over one more short turn per checkpoint and keeps its top
functions in the JSON (and the markdown).

The report (``docs/benchmarks/long_session.md`` and ``.json``) is rewritten after every
checkpoint of every arm: a run cut short (Ctrl-C, SIGTERM) keeps what it measured, keeps its
sessions folder, and prints the command that continues it (``--resume --workdir DIR``: the
sessions restore from their files and grow on). A finished run deletes its sessions folder
(``--keep`` keeps it). Disk: ~23 KB per token of history in the recall arm (1M tokens: ~23 GB).

Usage: ``agentcore bench long_session [--checkpoints 2000,100000,1000000] [--arms recall,plain]``
(a quick run: ``--checkpoints 2000,20000``).
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import gc
import io
import json
import pstats
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import torch
from _common import DOCS, machine, markdown_table, shared_data, write_report

from agentcore import _compute as compute
from agentcore.backends import LocalBackend
from agentcore.backends._continuation import Ledger
from agentcore.backends._request import ChatRequest
from agentcore.core.engine import Engine
from agentcore.core.params import SamplingParams
from agentcore.core.session import Session

BOOKS = ("austen-emma.txt", "chesterton-thursday.txt")
SYSTEM = "You are a reading companion. The user reads a book to you; answer briefly."
REPLIES = ("Noted.", "Go on.", "I see. Please continue.", "Understood; keep reading.")
TURN_TOKENS = (500, 1000, 2000, 1500, 750, 1250)  # user message sizes while growing, in turn
QUESTIONS = (
    "Who has spoken most in the last pages?",
    "Name one place mentioned so far.",
    "What is the mood of the last passage?",
    "Which character did we just meet?",
    "Give the last passage a short title.",
    "Is anyone about to get married?",
    "What season is it in the story?",
    "Who do you like best so far?",
    "Did anything surprising just happen?",
    "What will happen next, in a word?",
)
SMALL = "Go on."  # the ~10-token turn (with max_tokens=1)
CHARS_PER_TOKEN = 4.2  # SmolLM2's tokenizer on these books (used only to size the chunks)
NAME = "long"  # the measured session of each arm
REF = "ref"  # a session at the first checkpoint's length (grown again for each checkpoint),
# timed between the long one's turns
# where a short turn's time goes: cumulative ms of these functions under cProfile
PHASES = {
    "_local.py:complete": "whole turn",
    "llama.py:probe": "probe forward",
    "llama.py:prefill": "prefill (probe included)",
    "session.py:generate": "decode 8 tokens",
    "recall.py:plan": "recall selection",
    "recall.py:_block_weight": "of which block scoring",
    "recall.py:_token_weight": "of which key scoring",
    "recall.py:gather": "recall gather",
    "state.py:save_session": "save",
}
ARMS = ("recall", "plain")


# ---------------------------------------------------------------------- text


class Book:
    """The books' paragraphs, read in order and repeated: ``take(n)`` ~n tokens of text.

    ``offset`` counts characters handed out so far (over the repeated books); a restored
    session records it in its meta, so a resumed run reads on where it stopped."""

    def __init__(self, offset: int = 0) -> None:
        text = "\n\n".join(
            (shared_data() / b).read_text(encoding="utf-8", errors="replace") for b in BOOKS
        )
        self.paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
        self.offset = offset
        self._i, self._skip = 0, 0
        self._seek(offset)

    def _seek(self, offset: int) -> None:
        total = sum(len(p) for p in self.paragraphs)
        offset %= total
        i = 0
        while offset >= len(self.paragraphs[i]):
            offset -= len(self.paragraphs[i])
            i += 1
        self._i, self._skip = i, offset

    def take(self, tokens: int) -> str:
        want = int(tokens * CHARS_PER_TOKEN)
        parts: list[str] = []
        got = 0
        while got < want:
            p = self.paragraphs[self._i][self._skip :]
            p = p[: want - got] if len(p) > want - got and got else p
            if len(p) < len(self.paragraphs[self._i]) - self._skip:
                self._skip += len(p)
            else:
                self._i, self._skip = (self._i + 1) % len(self.paragraphs), 0
            parts.append(p)
            got += len(p)
        self.offset += got
        return "\n\n".join(parts)


# ---------------------------------------------------------------------- measuring


def wchar() -> int:
    """Bytes this process has passed to write() so far (``/proc/self/io``)."""
    return int(psutil.Process().io_counters().write_chars)


def rss() -> dict[str, float]:
    gc.collect()
    m = psutil.Process().memory_info()
    return {"rss_mib": m.rss / 2**20, "rss_file_mib": m.shared / 2**20}


def trimmed_rss() -> float | None:
    """RSS in MiB after glibc's ``malloc_trim(0)`` returns the free heap (None: no glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    gc.collect()
    libc.malloc_trim(0)
    return float(rss()["rss_mib"])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


class Timed:
    """Wraps ``backend.save`` to time each save (the instance attribute shadows the method)."""

    def __init__(self, backend: LocalBackend) -> None:
        self.inner = backend.save
        self.last = 0.0
        backend.save = self  # type: ignore[method-assign]

    def __call__(self, sid: str) -> None:
        t0 = time.perf_counter()
        self.inner(sid)
        self.last = time.perf_counter() - t0


def recalling(turns: list[dict[str, Any]]) -> str:
    """How many of the timed ``turns`` read recalled blocks ("-" for a run that did not record it)."""
    if not turns or "recalled_tokens" not in turns[0]:
        return "-"
    return f"{sum(1 for t in turns if t['recalled_tokens'])} of {len(turns)}"


def turn(
    backend: LocalBackend, content: str, max_tokens: int, saves: Timed, name: str = NAME
) -> dict[str, Any]:
    """One request on a session: wall time, save time, tokens and bytes written."""
    request = ChatRequest(
        messages=[{"role": "user", "content": content}],
        session=name,
        # exactly max_tokens (no stop at the end-of-turn token): turns at every checkpoint
        # decode as many tokens, so their times compare (one step is ~1/9 of a short turn)
        params=SamplingParams(max_tokens=max_tokens, temperature=0.0, stop_token_ids=()),
    )
    w0 = wchar()
    t0 = time.perf_counter()
    out = backend.complete(request)
    seconds = time.perf_counter() - t0
    written = wchar() - w0
    with backend.lock(name):  # whether the question read recalled blocks (its reply does too)
        s = backend.get_session(name)
        store = s.extensions.get("recall")
        recalled = s.cache.n_recalled
    return {
        "ms": seconds * 1000,
        "save_ms": saves.last * 1000,
        "tokens": out.usage.prompt_tokens + out.usage.completion_tokens,
        "bytes": written,
        "reply": out.text,
        "recalled_tokens": recalled,
        "evidence": None if store is None else store.evidence,
    }


# ---------------------------------------------------------------------- growing


def append_turn(s: Session, messages: list[dict[str, str]]) -> None:
    """Append messages as the backend would for a request (without generating): the rendered
    tokens, the ledger that recognises a resent conversation, the raw record."""
    s.append_messages(messages, add_generation_prompt=False)
    ledger = Ledger.from_json(s.meta["ledger"]) if "ledger" in s.meta else Ledger()
    ledger.add(messages)
    s.meta["ledger"] = ledger.to_json()
    s.record("raw", messages)


def grow(
    backend: LocalBackend, target: int, save_every: int, log: Any, name: str = NAME
) -> dict[str, Any]:
    """Grow a session to ``target`` tokens of history; its tokens/s."""
    with backend.lock(name):
        s = backend.get_session(name)
        book = Book(int(s.meta.get("bench_book_offset", 0)))
        rss_before = trimmed_rss() or rss()["rss_mib"]
        start, t0 = s.n_tokens, time.perf_counter()
        saved_at = s.n_tokens
        i = int(s.meta.get("bench_turns", 0))
        while s.n_tokens < target:
            size = min(TURN_TOKENS[i % len(TURN_TOKENS)], max(target - s.n_tokens, 64))
            msgs = [{"role": "user", "content": book.take(size)}]
            if s.n_tokens == 0:
                msgs.insert(0, {"role": "system", "content": SYSTEM})
            msgs.append({"role": "assistant", "content": REPLIES[i % len(REPLIES)]})
            append_turn(s, msgs)
            i += 1
            s.meta["bench_book_offset"] = book.offset
            s.meta["bench_turns"] = i
            if s.n_tokens - saved_at >= save_every or s.n_tokens >= target:
                backend.save(name)
                saved_at = s.n_tokens
                rate = (s.n_tokens - start) / (time.perf_counter() - t0)
                log(
                    f"    {s.n_tokens:>9,} tokens  {rate:6.0f} tok/s  RSS {rss()['rss_mib']:.0f} MiB"
                )
        seconds = time.perf_counter() - t0
    grown = s.n_tokens - start
    after = rss()["rss_mib"]
    return {
        "rss_before_grow_mib": rss_before,
        "rss_after_grow_mib": after,
        # freed heap glibc keeps (the recall selection's temporaries grow with the store, and
        # a freed block too small for the next one stays resident): what malloc_trim returns
        "rss_after_grow_trimmed_mib": trimmed_rss(),
        "grown_tokens": grown,
        "grow_s": seconds,
        "grow_tok_s": grown / seconds if seconds > 0 else None,
    }


# ---------------------------------------------------------------------- one checkpoint


def restore_check(backend: LocalBackend) -> dict[str, Any]:
    """A second backend on the same folder restores the session: time, exact logits."""
    assert backend.sessions_dir is not None
    live = backend.get_session(NAME)
    other = LocalBackend(
        backend.engine, sessions_dir=backend.sessions_dir, session_config=backend.session_config
    )
    t0 = time.perf_counter()
    restored = other.get_session(NAME)
    seconds = time.perf_counter() - t0
    exact = (
        restored.n_tokens == live.n_tokens
        and live.next_logits is not None
        and restored.next_logits is not None
        and torch.equal(restored.next_logits, live.next_logits)
    )
    restored.close()
    del other, restored
    return {"restore_s": seconds, "restore_exact": bool(exact)}


def profile_turn(backend: LocalBackend, saves: Timed, question: str) -> dict[str, Any]:
    """cProfile of one short turn: the functions with the most own time (15) and the most
    cumulative time (25)."""
    prof = cProfile.Profile()

    def profiled() -> None:  # cProfile sees its own thread: the compute thread, as the model's
        prof.enable()
        turn(backend, question, 8, saves)
        prof.disable()

    compute.run(profiled)
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({fn})",
                "calls": nc,
                "own_ms": tt * 1000,
                "cum_ms": ct * 1000,
            }
        )
    phases = {}
    for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{Path(file).name}:{fn}"
        if key in PHASES:
            phases[key] = phases.get(key, 0.0) + ct * 1000
    by_own = sorted(rows, key=lambda r: -r["own_ms"])[:15]
    by_cum = sorted(rows, key=lambda r: -r["cum_ms"])[:25]
    return {"phases": phases, "by_own": by_own, "by_cum": by_cum}


def pair_ratio(
    short: list[dict[str, Any]], ref: list[dict[str, Any]], want: Callable[[dict[str, Any]], bool]
) -> float | None:
    """The median ratio of the (long, reference) turn pairs whose long turn ``want`` picks."""
    ratios = [a["ms"] / b["ms"] for a, b in zip(short, ref, strict=True) if want(a)]
    return statistics.median(ratios) if ratios else None


def measure(
    backend: LocalBackend, saves: Timed, book: Book, args: argparse.Namespace, log: Any
) -> dict[str, Any]:
    """Everything measured at one checkpoint of one arm."""
    with backend.lock(NAME):
        history = backend.get_session(NAME).n_tokens
    short, ref = [], []
    for i in range(args.turns + 1):  # the first is a warm-up
        # the long session's turn, then the reference session's: both see the same moments of
        # a machine whose speed drifts (other tenants), so their ratio is the history's cost
        r = turn(backend, QUESTIONS[i % len(QUESTIONS)], 8, saves)
        q = turn(backend, QUESTIONS[i % len(QUESTIONS)], 8, saves, REF)
        if i:
            short.append(r)
            ref.append(q)
    ms = [r["ms"] for r in short]
    ref_ms = [r["ms"] for r in ref]
    log(
        f"    short turn: median {statistics.median(ms):.0f} ms, p90 {pct(ms, 0.9):.0f} ms "
        f"(save {statistics.median(r['save_ms'] for r in short):.0f} ms); reference session "
        f"{statistics.median(ref_ms):.0f} ms; '{short[-1]['reply'].strip()[:40]}'"
    )
    small = [turn(backend, SMALL, 1, saves) for _ in range(args.byte_turns)]
    large = [turn(backend, book.take(990), 8, saves) for _ in range(args.byte_turns)]
    row: dict[str, Any] = {
        "history_tokens": history,
        "short_ms": statistics.median(ms),
        "short_p90_ms": pct(ms, 0.9),
        "short_save_ms": statistics.median(r["save_ms"] for r in short),
        "short_tokens": statistics.median(r["tokens"] for r in short),
        "short_bytes": statistics.median(r["bytes"] for r in short),
        "short_turns": short,
        "ref_ms": statistics.median(ref_ms),
        "ref_p90_ms": pct(ref_ms, 0.9),
        "ref_turns": ref,
        "vs_ref": statistics.median(a / b for a, b in zip(ms, ref_ms, strict=True)),
        # the same, apart for the turns whose question recalled and those that read the window
        "vs_ref_recalling": pair_ratio(short, ref, lambda t: t["recalled_tokens"] > 0),
        "vs_ref_window": pair_ratio(short, ref, lambda t: t["recalled_tokens"] == 0),
        "small_turns": small,
        "large_turns": large,
    }
    for key, rows in (("small", small), ("large", large)):
        row[f"{key}_tokens"] = statistics.median(r["tokens"] for r in rows)
        row[f"{key}_bytes_min"] = min(r["bytes"] for r in rows)
        row[f"{key}_bytes"] = statistics.mean(r["bytes"] for r in rows)
        row[f"{key}_bytes_max"] = max(r["bytes"] for r in rows)
        row[f"{key}_ms"] = statistics.median(r["ms"] for r in rows)
    log(
        f"    bytes/turn: {row['small_tokens']:.0f}-token turn {row['small_bytes_min'] / 1e6:.2f} MB "
        f"(max {row['small_bytes_max'] / 1e6:.2f}), {row['large_tokens']:.0f}-token turn "
        f"{row['large_bytes_min'] / 1e6:.1f} MB (max {row['large_bytes_max'] / 1e6:.1f})"
    )
    if args.profile:
        row["profile"] = profile_turn(backend, saves, QUESTIONS[-1])
    row.update(restore_check(backend))
    with backend.lock(NAME):
        s = backend.get_session(NAME)
        stats = s.stats()
        row["history_after_tokens"] = s.n_tokens
    recall = stats.get("recall")
    if recall is not None:
        row["recall_tokens"] = recall["tokens"]
        row["recall_ram_bytes"] = recall["ram_bytes"]
        row["recall_disk_bytes"] = recall["disk_bytes"]
    assert backend.sessions_dir is not None
    row["folder_bytes"] = folder_bytes(backend.sessions_dir)
    row.update(rss())
    log(
        f"    restore {row['restore_s']:.1f} s (exact: {row['restore_exact']}), "
        f"RSS {row['rss_mib']:.0f} MiB, folder {row['folder_bytes'] / 2**20:.0f} MiB"
    )
    return row


def idle_sessions(backend: LocalBackend, n: int, log: Any) -> dict[str, Any]:
    """RSS of ``n`` idle resident sessions, each after one ~2,500-token turn (a full window)."""
    book = Book(10_000_000)  # text the measured session reads much later, if ever
    before = rss()
    names = [f"idle{i}" for i in range(n)]
    for name in names:
        with backend.lock(name):
            s = backend.get_session(name)
            append_turn(
                s,
                [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": book.take(2500)},
                    {"role": "assistant", "content": REPLIES[0]},
                ],
            )
            backend.save(name)
    after = rss()
    per = (after["rss_mib"] - before["rss_mib"]) / n
    resident = backend.resident_sessions()
    for name in names:
        backend.delete_session(name)
    log(f"    {n} idle sessions: {per:.0f} MiB RSS each (resident: {len(resident)})")
    return {"idle_sessions": n, "idle_rss_mib_per_session": per}


# ---------------------------------------------------------------------- report


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**10:.0f} KiB"


def fixed_and_per_token(r: dict[str, Any]) -> tuple[float, float]:
    """(fixed bytes, bytes per token) of a save, from the smallest ~10- and ~1,000-token
    turns (turns whose save appended one journal record)."""
    per = (r["large_bytes_min"] - r["small_bytes_min"]) / (r["large_tokens"] - r["small_tokens"])
    return r["small_bytes_min"] - per * r["small_tokens"], per


def split_turns(row: dict[str, Any]) -> str:
    """The goal's ratio apart for the turns that recalled and those that read the window."""
    turns = row["short_turns"]
    if not turns or "recalled_tokens" not in turns[0]:
        return ""
    n = sum(1 for t in turns if t["recalled_tokens"])
    parts = [
        f"{count} {what} ({row[key]:.2f}x)"
        for count, what, key in (
            (n, "recalled", "vs_ref_recalling"),
            (len(turns) - n, "read sinks + window alone", "vs_ref_window"),
        )
        if count
    ]
    return f" Of its {len(turns)} timed turns, " + " and ".join(parts) + "."


def goals(raw: dict[str, Any]) -> list[str]:
    """The issue's goals, checked against the rows measured so far."""
    out = ["## Goals", ""]
    for arm, rows in raw["rows"].items():
        if len(rows) < 2:
            continue
        a, b = rows[0], rows[-1]
        ratio = b.get("vs_ref") or b["short_ms"] / a["short_ms"]
        verdict = "met" if ratio <= 1.1 else "missed"
        out.append(
            f"- **{arm}**: short turn at {b['history_tokens']:,} tokens of history "
            f"{b['short_ms']:.0f} ms, {ratio:.2f}x of the "
            f"{a['history_tokens']:,}-token session's turns timed between its turns "
            f"({b['short_ms'] / a['short_ms']:.2f}x of the first checkpoint's median, measured "
            f"earlier) (goal: within 1.1x at 1M): {verdict}"
            + (
                ""
                if b["checkpoint"] >= 1_000_000
                else f" so far (largest checkpoint {b['checkpoint']:,})"
            )
            + "."
            + split_turns(b)
        )
    for arm, rows in raw["rows"].items():
        parts = []
        for r in rows:
            fixed, per = fixed_and_per_token(r)
            parts.append(
                f"{fmt_bytes(fixed)} + {per / 1024:.1f} KiB/token at {r['history_tokens']:,}"
            )
        if parts:
            out.append(
                f"- **{arm}**: a save that appends one journal record writes "
                + "; ".join(parts)
                + " (fit through the smallest ~10- and ~1,000-token turns)."
            )
    exact = [r["restore_exact"] for rows in raw["rows"].values() for r in rows]
    if exact:
        out.append(
            f"- Restore: {sum(exact)} of {len(exact)} restores gave the live session's next-token "
            "logits bit for bit (kills at every step of a save: "
            "`tests/core/test_session_journal.py::test_a_kill_at_any_step_of_a_save_restores_exactly`, "
            "`tests/core/test_recall_kill.py`, `tests/server/test_restart.py`)."
        )
    return [*out, ""]


def render(raw: dict[str, Any]) -> str:
    rows_by_arm: dict[str, list[dict[str, Any]]] = raw["rows"]
    lines = [
        "# Long-session benchmark",
        "",
        "Command: "
        + ", then ".join(f"`{c}`" for c in raw["command"].replace("`", "").split("; then "))
        + f"; {raw['elapsed_s'] / 60:.1f} min"
        + (" (over several runs: `--resume`)" if raw.get("resumed") else "")
        + ".",
        f"Machine: {raw['machine']}. Model: {raw['model']}, window {raw['window']} tokens "
        f"(sinks + window), recall {raw['recall']} in the recall arm.",
        "",
    ]
    if raw.get("partial"):
        lines += [f"**Partial run**: {raw['partial']}", ""]
    lines += [
        "A persistent named session of `LocalBackend` per arm (the API agents and the server use),",
        "saved after every turn. History grows with chat turns of 500-2,000 tokens of public-domain",
        "books (user) and a canned one-line reply (assistant), appended without generating. A short",
        "turn is `backend.complete` of a one-line question, greedy, exactly 8 generated tokens (the",
        "end-of-turn token does not stop it, so every checkpoint decodes as many), timed whole",
        "(render, prefill, decode, save); median and p90 of the timed turns after one warm-up.",
        "Each timed turn is followed by the same turn on a second session of the arm kept at the",
        'first checkpoint\'s length ("2K session"; grown again for every checkpoint, so it',
        "holds no more blocks than it recalls and never probes; earlier runs kept one that these",
        'turns grew): "vs 2K',
        "session\" is the median of the pairs' ratios, the history's cost with the machine's",
        'drift (other jobs share its 2 cores) cancelled; "vs first" compares medians taken',
        "minutes or hours apart.",
        "Bytes are what the process passed to `write()` during the turn and its save.",
        '"Turns that recalled": timed short turns whose question read recalled blocks (a',
        "session holding more blocks than it recalls probes the question: where its queries",
        "point back at nothing evicted it reads sinks + window, and the probe's layers are kept;",
        "where they do, it pays the probe, one selection and the gather; runs before this column",
        'was added lack it: "-"). "vs 2K: recalling / window": the median ratio of the pairs',
        "whose long turn recalled, and of those whose long turn read sinks + window alone.",
        "",
    ]
    headers = [
        "history tokens",
        "arm",
        "short turn ms",
        "p90 ms",
        "vs first",
        "2K session ms",
        "vs 2K session",
        "turns that recalled",
        "vs 2K: recalling / window",
        "of which save ms",
        "restore s",
        "exact",
        "grow tok/s",
        "RSS MiB",
    ]
    table = []
    for arm, rows in rows_by_arm.items():
        first = rows[0]["short_ms"] if rows else None
        for r in rows:
            table.append(
                [
                    f"{r['history_tokens']:,}",
                    arm,
                    r["short_ms"],
                    r["short_p90_ms"],
                    f"{r['short_ms'] / first:.2f}x" if first else "-",
                    r.get("ref_ms", "-"),
                    f"{r['vs_ref']:.2f}x" if "vs_ref" in r else "-",
                    recalling(r["short_turns"]),
                    " / ".join(
                        "-" if r.get(k) is None else f"{r[k]:.2f}x"
                        for k in ("vs_ref_recalling", "vs_ref_window")
                    ),
                    r["short_save_ms"],
                    r["restore_s"],
                    "yes" if r["restore_exact"] else "NO",
                    r.get("grow_tok_s") or "-",
                    r["rss_mib"],
                ]
            )
    lines += ["## Short-turn time against history", "", markdown_table(headers, table), ""]
    lines += goals(raw)
    headers = [
        "history tokens",
        "arm",
        "short turn: tokens / bytes",
        "~10-token turn: tokens / bytes min, mean, max",
        "~1,000-token turn: tokens / bytes min, mean, max",
        "1,000-token turn: min bytes/token",
        "sessions folder",
    ]
    table = []
    for arm, rows in rows_by_arm.items():
        for r in rows:
            table.append(
                [
                    f"{r['history_tokens']:,}",
                    arm,
                    f"{r['short_tokens']:.0f} / {fmt_bytes(r['short_bytes'])}",
                    f"{r['small_tokens']:.0f} / {fmt_bytes(r['small_bytes_min'])}, "
                    f"{fmt_bytes(r['small_bytes'])}, {fmt_bytes(r['small_bytes_max'])}",
                    f"{r['large_tokens']:.0f} / {fmt_bytes(r['large_bytes_min'])}, "
                    f"{fmt_bytes(r['large_bytes'])}, {fmt_bytes(r['large_bytes_max'])}",
                    fmt_bytes(r["large_bytes_min"] / r["large_tokens"]),
                    fmt_bytes(r["folder_bytes"]),
                ]
            )
    lines += [
        "## Bytes written per turn",
        "",
        f"{raw['args'].get('byte_turns')} turns of each size per checkpoint. The min is a turn whose",
        "save appended one journal record (and, with recall, the blocks that left the window to",
        "the block files); a max well above it is a turn whose save compacted the journal into a",
        "new base (when the journal would outgrow the base); the mean is what a turn costs on",
        "average over such a run.",
        "",
        markdown_table(headers, table),
        "",
    ]
    mem = []
    for arm, rows in rows_by_arm.items():
        idle = raw.get("idle", {}).get(arm, {})
        per_100k: dict[str, str] = {"ram": "-", "rss": "-", "disk": "-"}
        with_store = [r for r in rows if r.get("recall_tokens")]
        if len(with_store) >= 2:
            a, b = with_store[0], with_store[-1]
            d = (b["recall_tokens"] - a["recall_tokens"]) / 100_000
            grew = max(with_store[1:], key=lambda r: r.get("grown_tokens", 0))
            if d > 0 and "rss_after_grow_mib" in grew:
                per_100k = {
                    "ram": fmt_bytes((b["recall_ram_bytes"] - a["recall_ram_bytes"]) / d),
                    "rss": fmt_bytes(
                        (grew["rss_after_grow_mib"] - grew["rss_before_grow_mib"])
                        * 2**20
                        / (grew["grown_tokens"] / 100_000)
                    )
                    + f" (growing to {grew['history_tokens']:,})"
                    + (
                        f"; {fmt_bytes((grew['rss_after_grow_trimmed_mib'] - grew['rss_before_grow_mib']) * 2**20 / (grew['grown_tokens'] / 100_000))} after malloc_trim"
                        if grew.get("rss_after_grow_trimmed_mib")
                        else ""
                    ),
                    "disk": fmt_bytes((b["recall_disk_bytes"] - a["recall_disk_bytes"]) / d),
                }
        mem.append(
            [
                arm,
                f"{idle['idle_rss_mib_per_session']:.0f} MiB ({idle['idle_sessions']} sessions)"
                if idle
                else "-",
                per_100k["ram"],
                per_100k["rss"],
                per_100k["disk"],
            ]
        )
    lines += [
        "## Memory",
        "",
        "Idle resident session: RSS added by sessions each holding one ~2,500-token turn (a full",
        "window), saved and idle, divided by their number. Recall store per 100K tokens: between",
        "the first and last checkpoint with a store, the store's own RAM account (RAM tier,",
        "capped by `host_ram_mib`, plus the probe layers' key index) and its block files on",
        "disk; the process RSS growth while the longest stretch of history grew (nothing else",
        "runs meanwhile; the probe index grows by doubling, so RSS moves in steps), and what is",
        "left of it after glibc's `malloc_trim(0)` (heap the allocator had kept after the",
        "selection's temporaries, which grow with the store, were freed; runs before this",
        "column was added lack it).",
        "",
        markdown_table(
            [
                "arm",
                "RSS per idle resident session",
                "recall RAM / 100K tokens",
                "RSS growth / 100K tokens",
                "recall disk / 100K tokens",
            ],
            mem,
        ),
        "",
    ]
    profiles = [(arm, r) for arm, rows in rows_by_arm.items() for r in rows if r.get("profile")]
    if profiles:
        lines += [
            "## Where a short turn's time goes",
            "",
            "cProfile of one more short turn (profiling slows it): cumulative ms in each part",
            "(the JSON also lists the functions with the most own and cumulative time).",
            "",
        ]
        table = []
        for arm, r in profiles:
            phases = r["profile"].get("phases", {})
            table.append([f"{r['history_tokens']:,}", arm] + [phases.get(k, 0.0) for k in PHASES])
        lines += [markdown_table(["history tokens", "arm", *PHASES.values()], table), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--checkpoints",
        default="2000,100000,1000000",
        help="history lengths in tokens, comma-separated (quick: 2000,20000)",
    )
    ap.add_argument("--arms", default="recall,plain", help="recall, plain, or both in that order")
    ap.add_argument("--turns", type=int, default=7, help="timed short turns per checkpoint (>= 5)")
    ap.add_argument("--byte-turns", type=int, default=3, help="10- and 1,000-token turns each")
    ap.add_argument("--idle-sessions", type=int, default=4, help="idle sessions for RSS (0: skip)")
    ap.add_argument("--save-every", type=int, default=50_000, help="tokens between growth saves")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--read-from",
        type=int,
        default=None,
        help="RecallConfig.read_from of the recall arm (default: the model's)",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="sessions folder (default: /tmp)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    ap.add_argument("--keep", action="store_true", help="keep the sessions folder at the end")
    ap.add_argument("--profile", action="store_true", help="cProfile one short turn per checkpoint")
    ap.add_argument("--out", default="long_session", help="report name under docs/benchmarks/")
    ap.add_argument(
        "--render-only", action="store_true", help="rewrite the markdown from the JSON, run nothing"
    )
    args = ap.parse_args(argv)
    if args.render_only:
        raw = json.loads((DOCS / f"{args.out}.json").read_text())
        print(write_report(args.out, render(raw), raw))
        return 0
    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not set(arms) <= set(ARMS) or not arms:
        raise SystemExit(f"--arms: expected recall and/or plain, got {args.arms!r}")
    if args.resume and args.workdir is None:
        raise SystemExit("--resume needs --workdir DIR (the folder the cut-short run printed)")
    torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="long_session-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    command = "agentcore bench long_session " + " ".join(shlex.quote(a) for a in (argv or []))

    def log(msg: str) -> None:
        print(msg, flush=True)

    raw: dict[str, Any] = {
        "command": command,
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": {arm: [] for arm in arms},
        "idle": {},
        "elapsed_s": 0.0,
    }
    report_json = DOCS / f"{args.out}.json"
    elapsed_before = 0.0
    if args.resume:
        if not report_json.is_file():
            raise SystemExit(f"--resume: no earlier report at {report_json}")
        before = json.loads(report_json.read_text())
        for arm in arms:
            raw["rows"][arm] = before.get("rows", {}).get(arm, [])
        raw["idle"] = before.get("idle", {})
        elapsed_before = float(before.get("elapsed_s", 0.0))
        raw["resumed"] = True
        raw["command"] = before.get("command", command) + f"; then `{command}`"
        log(f"--resume: {sum(len(v) for v in raw['rows'].values())} checkpoints from {report_json}")

    t_start = time.perf_counter()
    engine = Engine.load(threads=args.threads)
    info = engine.info()
    raw["model"] = f"{info.name} ({info.dtype}, {info.weights} weights)"
    raw["window"] = engine.default_streaming().budget
    recall = engine.recall_config(
        **({} if args.read_from is None else {"read_from": args.read_from})
    )
    raw["recall"] = str(recall)
    backends: dict[str, LocalBackend] = {}
    saves: dict[str, Timed] = {}
    for arm in arms:
        config = engine.session_config()
        config = type(config)(
            streaming=config.streaming, recall=recall if arm == "recall" else None
        )
        backends[arm] = LocalBackend(engine, sessions_dir=work / arm, session_config=config)
        saves[arm] = Timed(backends[arm])
    log(f"model {raw['model']}, window {raw['window']}; sessions in {work}")

    def todo() -> Iterator[tuple[int, str]]:
        for cp in checkpoints:
            for arm in arms:
                if not any(r["checkpoint"] == cp for r in raw["rows"][arm]):
                    yield cp, arm

    def write(partial: str | None) -> Path:
        raw["elapsed_s"] = elapsed_before + time.perf_counter() - t_start
        raw["partial"] = partial
        return write_report(args.out, render(raw), raw)

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    plan = list(todo())
    try:
        for cp, arm in plan:
            backend = backends[arm]
            log(f"[{arm}] growing to {cp:,} tokens")
            # the reference afresh at every checkpoint: the short turns of earlier checkpoints
            # grew it past the blocks it recalls, and such a session probes and selects too
            backend.delete_session(REF)
            grow(backend, checkpoints[0], args.save_every, log, REF)
            grown = grow(backend, cp, args.save_every, log)
            if arm not in raw["idle"] and args.idle_sessions:
                raw["idle"][arm] = idle_sessions(backend, args.idle_sessions, log)
            with backend.lock(NAME):
                offset = int(backend.get_session(NAME).meta.get("bench_book_offset", 0))
            book = Book(offset)
            log(f"[{arm}] measuring at {cp:,}")
            row = {"checkpoint": cp, **grown, **measure(backends[arm], saves[arm], book, args, log)}
            with backend.lock(NAME):  # the 1,000-token turns read on in the book
                s = backend.get_session(NAME)
                s.meta["bench_book_offset"] = book.offset
                backend.save(NAME)
            raw["rows"][arm].append(row)
            missing = [f"{a} at {c:,}" for c, a in todo()]
            log(f"  -> {write('not measured yet: ' + ', '.join(missing) if missing else None)}")
    except KeyboardInterrupt as exc:
        missing = [f"{a} at {c:,}" for c, a in todo()]
        again = (
            f"agentcore bench long_session --resume --workdir {work} "
            f"--checkpoints {args.checkpoints} --arms {args.arms} --turns {args.turns} "
            f"--byte-turns {args.byte_turns} --threads {args.threads}"
            + f" --idle-sessions {args.idle_sessions} --save-every {args.save_every}"
            + (" --profile" if args.profile else "")
            + (f" --read-from {args.read_from}" if args.read_from is not None else "")
            + (f" --out {args.out}" if args.out != "long_session" else "")
        )
        note = (
            f"stopped ({exc or 'interrupted'}); not measured: {', '.join(missing)}. "
            f"Continue with `{again}` (sessions kept in {work})."
        )
        # no save here: a forward cut short leaves the session half-updated; the files hold
        # the last growth save (every --save-every tokens) or the last measured turn
        log(f"\n{note}\n  -> {write(note)}")
        return 130
    path = write(None)
    log(render(raw))
    log(f"-> {path}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        log(f"removed {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
