"""The cost of the safety layer per tool call: the checks before a call, the effect guard while
it runs, redaction of its output, and one audit record.

Measured on the built-in file tools over a small workspace (50 files) and on the pure
calculator, on this machine's CPU, with no model: every number is the layer's own overhead,
the part of an agent step the issue #25 goal (< 5 ms per step) is about.

* ``check_call``: the filter's checks before a call (schema, paths, URLs anywhere in the
  arguments, secrets in every key and value);
* ``tool call, guarded - bare``: the same call run through the executor with and without the
  effect guard (audit hook: every file, folder, address the tool touches is checked);
* ``redact 4 KB output``: the whole output redacted before it is cut;
* ``stream redaction``: per streamed token;
* ``audit record``: one verdict written (with and without fsync, the default is with);
* ``open() outside a tool``: what the process-wide audit hook costs code that is not a tool.

Writes ``docs/benchmarks/safety.md`` + JSON. Usage: ``python bench/safety.py [--n 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine, markdown_table, write_report

from agentcore.agent import Policy
from agentcore.agent._audit import AuditLog
from agentcore.agent._execution import Executor
from agentcore.agent._redact import Redactor, StreamRedactor
from agentcore.agent._safety import BudgetMeter, SafetyFilter
from agentcore.tools import install_effect_hook
from agentcore.tools.builtin import default_tools

KEY = "sk-live-0123456789abcdefghijklmnop"


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    """Median microseconds of ``fn`` over ``n`` calls (after 10 warm-up calls)."""
    for _ in range(10):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def open_us(path: Path, n: int) -> float:
    def once() -> None:
        with open(path, "rb") as handle:
            handle.read(1)

    return per_call_us(once, n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="calls per measurement")
    parser.add_argument("--out", type=Path, default=None, help="report folder")
    args = parser.parse_args(argv)
    n = args.n

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = root / "ws"
        (ws / "src").mkdir(parents=True)
        for i in range(50):
            (ws / "src" / f"f{i}.txt").write_text(f"line {i}\n" * 20)
        (ws / ".git").mkdir()
        (ws / ".git" / "config").write_text("[core]")
        plain = root / "plain.txt"
        plain.write_text("x")
        open_before = open_us(plain, n * 10)  # before the audit hook exists in this process
        install_effect_hook()
        open_after = open_us(plain, n * 10)

        registry = default_tools(workspace=ws)
        policy = Policy.default(ws).with_changes(
            allowed_hosts=("api.example.com",), secrets=("correct horse battery staple",)
        )
        audit = AuditLog(root / "home" / "audit.jsonl", fsync=False)
        safety = SafetyFilter(policy, registry, agent="bench", audit=audit, home=root / "home")
        meter = BudgetMeter(policy)
        executor = Executor(registry, redact=safety.redact, max_chars=policy.max_output_chars)

        calls: list[tuple[str, dict[str, Any]]] = [
            ("read_file", {"path": "src/f1.txt"}),
            ("list_files", {"path": "src"}),
            ("search_files", {"query": "line 7", "path": "src"}),
            ("write_file", {"path": "out/a.txt", "content": "hello " * 50}),
            ("calculate", {"expression": "2 * (3 + 4) ** 2"}),
        ]
        rows: list[list[Any]] = []
        raw: dict[str, Any] = {"machine": machine(), "n": n, "calls": {}}
        loop = asyncio.new_event_loop()
        try:
            for name, arguments in calls:

                def check(name: str = name, arguments: dict[str, Any] = arguments) -> None:
                    safety.check_call(name, arguments, meter)

                def bare(name: str = name, arguments: dict[str, Any] = arguments) -> None:
                    loop.run_until_complete(executor.run(name, arguments, time_left=None))

                def guarded(name: str = name, arguments: dict[str, Any] = arguments) -> None:
                    guard = safety.guard_for(name)
                    loop.run_until_complete(
                        executor.run(name, arguments, time_left=None, guard=guard)
                    )

                check_us = per_call_us(check, n)
                bare_us = per_call_us(bare, n)
                guarded_us = per_call_us(guarded, n)
                total = check_us + max(0.0, guarded_us - bare_us)
                raw["calls"][name] = {
                    "check_us": check_us,
                    "bare_us": bare_us,
                    "guarded_us": guarded_us,
                    "overhead_us": total,
                }
                rows.append(
                    [
                        name,
                        f"{check_us:.0f}",
                        f"{bare_us:.0f}",
                        f"{guarded_us:.0f}",
                        f"{guarded_us - bare_us:.0f}",
                        f"{total / 1000:.3f}",
                    ]
                )
        finally:
            loop.close()

        redactor = Redactor(policy.secret_patterns, policy.secrets)
        output = ("ordinary tool output with words and numbers 12345 " * 80)[:4000] + KEY
        redact_us = per_call_us(lambda: redactor.redact(output), n)
        stream = StreamRedactor(redactor)
        tokens = output.split(" ")
        stream_us = per_call_us(lambda: [stream.feed(t + " ") for t in tokens[:50]], n) / 50
        record = {
            "run_id": "r",
            "call_id": "c",
            "action": "tool:read_file",
            "decision": "allow",
            "rule": "policy",
            "reason": "ok",
            "arguments": {"path": "src/f1.txt"},
        }
        audit_nofsync = per_call_us(lambda: audit.append(record), n)
        synced = AuditLog(root / "home" / "audit-sync.jsonl", fsync=True)
        audit_fsync = per_call_us(lambda: synced.append(record), max(20, n // 10))

    worst = max(v["overhead_us"] for v in raw["calls"].values())
    step_ms = (worst + redact_us + audit_nofsync) / 1000
    raw.update(
        redact_4kb_us=redact_us,
        stream_token_us=stream_us,
        audit_record_us=audit_nofsync,
        audit_record_fsync_us=audit_fsync,
        open_before_hook_us=open_before,
        open_after_hook_us=open_after,
        step_overhead_ms=step_ms,
    )
    other = markdown_table(
        ["measurement", "per call (us)"],
        [
            ["redact a 4 KB output", f"{redact_us:.0f}"],
            ["stream redaction, per token", f"{stream_us:.1f}"],
            ["audit record (no fsync)", f"{audit_nofsync:.0f}"],
            ["audit record (fsync, the default)", f"{audit_fsync:.0f}"],
            ["open() outside a tool, before the hook", f"{open_before:.1f}"],
            ["open() outside a tool, hook installed", f"{open_after:.1f}"],
        ],
    )
    markdown = f"""# Safety layer cost per tool call

`python bench/safety.py --n {n}` on {raw["machine"]["cpu"]} ({raw["machine"]["cores"]} cores),
{raw["machine"]["date"]}. Medians of {n} calls; a workspace of 50 small files.

{
        markdown_table(
            [
                "tool",
                "check_call (us)",
                "call, bare (us)",
                "call, guarded (us)",
                "guard (us)",
                "checks + guard (ms)",
            ],
            rows,
        )
    }

{other}

Per-step overhead of the safety layer, worst tool above + redaction + one audit record
(without fsync): **{step_ms:.2f} ms** (goal: < 5 ms). With the default fsync, add the
audit record's fsync time from the table (a property of the disk, not of the checks).
"""
    path = write_report("safety", markdown, raw, args.out)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
