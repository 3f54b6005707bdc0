"""Tool calling on the default model: constrained vs unconstrained decoding, mask cost, accuracy.

A suite of templated requests over five tools (weather, calculator, email, file search, timer),
each with the tool and arguments a correct answer uses. Both arms see the same system prompt
(the tools section from :func:`tools.render_tools_prompt`) and the same request:

* constrained: decoded under the action grammar with ``tool_choice="required"``;
* bounded: the same grammar over the same tools with every string and array the schema leaves
  open bounded (200 characters, 32 items), as the grammar did before it stopped cutting valid
  long values short: what the bound bought on this model, side by side;
* unconstrained: free greedy decoding, then parsed with :func:`tools.parse_action`.

Reported: valid-call rate (parses and validates against the tool's schema), tool-choice and
argument accuracy, and the per-token cost of computing grammar masks against decode time.
Writes ``docs/benchmarks/tools.md`` + JSON. Usage: ``agentcore bench tools [--n 100]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import machine, markdown_table, write_report

from agentcore.core.constraint import GrammarConstraint
from agentcore.core.engine import Engine
from agentcore.core.sampling import SamplingParams
from agentcore.tools import (
    JsonSchemaArguments,
    Tool,
    ToolCall,
    ToolRegistry,
    build_action_grammar,
    parse_action,
    render_tools_prompt,
    tool,
)


@tool
def get_weather(city: str, unit: str = "C") -> str:
    """Current weather for a city.

    Args:
        city: the city name
        unit: "C" or "F"
    """
    return f"12 {unit} in {city}"


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression such as "12 * (3 + 4)".

    Args:
        expression: the expression to evaluate
    """
    return expression


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email.

    Args:
        to: recipient address
        subject: subject line
        body: message text
    """
    return "sent"


@tool
def search_files(pattern: str, max_results: int = 10) -> str:
    """Search the workspace for files whose text matches a pattern.

    Args:
        pattern: text to look for
        max_results: how many files to list (1-50)
    """
    return pattern


@tool
def set_timer(minutes: int, label: str = "") -> str:
    """Start a countdown timer.

    Args:
        minutes: how long, in minutes
        label: what the timer is for
    """
    return "ok"


CITIES = [
    "Paris",
    "Tokyo",
    "Lima",
    "Oslo",
    "Cairo",
    "Denver",
    "Madrid",
    "Seoul",
    "Nairobi",
    "Perth",
]
NAMES = ["ann@example.com", "bob@example.org", "team@corp.io", "li@uni.edu"]
WORDS = ["invoice", "budget", "TODO", "password", "meeting notes", "deadline"]


def suite(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` requests, each with the expected tool and the argument values that must appear."""
    rng = random.Random(seed)
    makers = [
        lambda: (
            c := rng.choice(CITIES),
            f"What's the weather like in {c} right now?",
            "get_weather",
            {"city": c},
        ),
        lambda: (
            c := rng.choice(CITIES),
            f"Is it cold in {c} today? Use Fahrenheit.",
            "get_weather",
            {"city": c, "unit": "F"},
        ),
        lambda: (
            e := f"{rng.randint(2, 99)} * {rng.randint(2, 99)}",
            f"Please compute {e}.",
            "calculate",
            {"expression": e},
        ),
        lambda: (
            a := rng.choice(NAMES),
            f"Email {a} with the subject 'Lunch' and say that lunch is at noon.",
            "send_email",
            {"to": a, "subject": "Lunch"},
        ),
        lambda: (
            w := rng.choice(WORDS),
            f"Find files that mention {w}.",
            "search_files",
            {"pattern": w},
        ),
        lambda: (
            m := rng.randint(2, 90),
            f"Set a timer for {m} minutes for the oven.",
            "set_timer",
            {"minutes": m},
        ),
    ]
    out = []
    for i in range(n):
        _, text, name, args = makers[i % len(makers)]()
        out.append({"prompt": text, "tool": name, "args": args})
    rng.shuffle(out)
    return out


OPEN_STRING, OPEN_ARRAY = 200, 32  # the bounds the grammar used to put on open values


def bounded(schema: Any) -> Any:
    """``schema`` with every string lacking ``maxLength`` and array lacking ``maxItems`` bounded."""
    if isinstance(schema, list):
        return [bounded(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded(v) for k, v in schema.items()}
    types = out.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and "maxLength" not in out and "enum" not in out:
        out["maxLength"] = OPEN_STRING
    if "array" in types and "maxItems" not in out:
        out["maxItems"] = OPEN_ARRAY
    return out


def bounded_tools(tools: list[Tool]) -> list[Tool]:
    return [
        Tool(
            name=t.name,
            description=t.description,
            arguments=JsonSchemaArguments(bounded(t.parameters)),
            invoke=lambda args: None,  # never run: only the grammar is used
        )
        for t in tools
    ]


def registry() -> ToolRegistry:
    return ToolRegistry([get_weather, calculate, send_email, search_files, set_timer])


def check(reg: ToolRegistry, text: str, case: dict[str, Any]) -> dict[str, bool]:
    """Did the answer parse as a call, validate, pick the right tool, carry the right values?"""
    try:
        action = parse_action(text)
    except Exception:
        return {"parsed": False, "valid": False, "tool_ok": False, "args_ok": False}
    if not isinstance(action, ToolCall):
        return {"parsed": False, "valid": False, "tool_ok": False, "args_ok": False}
    valid = True
    try:
        reg.validate(action.name, action.arguments)
    except Exception:
        valid = False
    tool_ok = action.name == case["tool"]
    args_ok = tool_ok and all(
        str(action.arguments.get(k, "")).strip().lower() == str(v).strip().lower()
        for k, v in case["args"].items()
    )
    return {"parsed": True, "valid": valid, "tool_ok": tool_ok, "args_ok": args_ok}


ARMS = ("constrained", "bounded", "unconstrained")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 12 if args.quick else args.n
    engine = Engine.load()
    reg = registry()
    tools: list[Tool] = list(reg)
    system = "You are a helpful assistant.\n\n" + render_tools_prompt(tools, "required")
    grammars = {
        "constrained": build_action_grammar(tools, "required"),
        "bounded": build_action_grammar(bounded_tools(tools), "required"),
    }
    base = engine.new_session()
    base.append_messages([{"role": "system", "content": system}], add_generation_prompt=False)
    cases = suite(n)
    stats: dict[str, dict[str, int]] = {
        arm: {"parsed": 0, "valid": 0, "tool_ok": 0, "args_ok": 0} for arm in ARMS
    }
    mask_s = 0.0
    mask_tokens = 0
    decode_s = 0.0
    samples: list[dict[str, Any]] = []
    stop_ids = sorted(engine.codec.stop_ids)
    t_start = time.perf_counter()
    for i, case in enumerate(cases):
        for arm in ARMS:
            s = base.fork()
            s.append_messages(
                [{"role": "user", "content": case["prompt"]}], add_generation_prompt=True
            )
            constraint = None
            if arm in grammars:
                constraint = _Timed(
                    GrammarConstraint.from_grammar(
                        engine.codec.hf,
                        grammars[arm],
                        vocab_size=engine.core.dims.vocab,
                        eos_token_ids=stop_ids,
                    )
                )
            t0 = time.perf_counter()
            out = s.generate(SamplingParams(max_tokens=args.max_tokens), constraint=constraint)
            elapsed = time.perf_counter() - t0
            if arm == "constrained":
                assert constraint is not None
                mask_s += constraint.seconds
                mask_tokens += constraint.calls
                decode_s += elapsed
            res = check(reg, out.text, case)
            for k, ok in res.items():
                stats[arm][k] += int(ok)
            if i < 6 and arm != "bounded":
                samples.append({"arm": arm, "prompt": case["prompt"], "answer": out.text, **res})
        if (i + 1) % 10 == 0:
            print(
                f"  {i + 1}/{n}: " + ", ".join(f"{a} valid {v['valid']}" for a, v in stats.items()),
                flush=True,
            )
    elapsed = time.perf_counter() - t_start
    rows = [
        [
            arm,
            f"{v['valid']}/{n} ({v['valid'] / n:.0%})",
            f"{v['parsed'] / n:.0%}",
            f"{v['tool_ok'] / n:.0%}",
            f"{v['args_ok'] / n:.0%}",
        ]
        for arm, v in stats.items()
    ]
    table = markdown_table(
        ["arm", "valid calls", "parsed as a call", "right tool", "right tool + values"], rows
    )
    per_tok_mask = mask_s / max(mask_tokens, 1) * 1000
    per_tok_decode = decode_s / max(mask_tokens, 1) * 1000
    cost = markdown_table(
        ["grammar mask ms/token", "constrained decode ms/token", "mask share"],
        [[per_tok_mask, per_tok_decode, f"{per_tok_mask / per_tok_decode:.1%}"]],
    )
    sample_rows = [
        [s["arm"], s["prompt"], s["answer"].replace("\n", " ").replace("|", "/")[:90], s["valid"]]
        for s in samples
    ]
    md = f"""# Tool calling

Default model {engine.name}; {n} requests over 5 tools (get_weather, calculate, send_email,
search_files, set_timer), greedy, at most {args.max_tokens} new tokens. Constrained = the action
grammar with `tool_choice="required"`; bounded = the same grammar with every string and array the
schemas leave open bounded ({OPEN_STRING} characters, {OPEN_ARRAY} items), as the grammar did before it
stopped cutting valid long values short; unconstrained = free text parsed afterwards. A call
that runs to the token limit does not parse.
"right tool + values": the call names the expected tool and carries the values the request
states (city, unit, expression, recipient and subject, pattern, minutes). Machine: {machine()}.
Took {elapsed / 60:.1f} min.

{table}

Mask cost (llguidance mask computation + advance, per constrained token):

{cost}

Sample answers:

{markdown_table(["arm", "request", "answer", "valid"], sample_rows)}
"""
    raw = {
        "machine": machine(),
        "n": n,
        "stats": stats,
        "mask_ms": per_tok_mask,
        "decode_ms": per_tok_decode,
        "samples": samples,
    }
    path = write_report("tools", md, raw, args.out)
    print(md)
    print(f"wrote {path}")
    return 0


class _Timed:
    """Wraps a grammar constraint and measures the time spent in it."""

    def __init__(self, inner: GrammarConstraint) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def allowed_tokens(self) -> Any:
        t0 = time.perf_counter()
        mask = self.inner.allowed_tokens()
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return mask

    def advance(self, token_id: int) -> None:
        t0 = time.perf_counter()
        self.inner.advance(token_id)
        self.seconds += time.perf_counter() - t0

    def is_finished(self) -> bool:
        return self.inner.is_finished()


if __name__ == "__main__":
    sys.exit(main())
