"""Both registered models side by side: tool use through the backend, speed, memory.

Each model runs the same requests through :class:`~agentcore.backends.LocalBackend` (so each
gets its own tool format: the project's prompt for SmolLM2, Qwen2.5's template for the 0.5B
model), one fresh session per request, greedy decoding:

* ``auto`` arm, tool requests: everyday requests written for this benchmark (several wordings
  each) that clearly ask for one of four offered tools and state every argument. Reported: how
  often the model called a tool at all, the right tool, and the right tool with the right values.
* ``auto`` arm, no-tool requests: questions no offered tool fits (facts, advice, small talk,
  questions *about* a tool's topic). Reported: how often the model wrongly called a tool.
* ``required`` arm: the tool requests with a call forced; right tool / right values.

Speed (``--speed``): prefill tokens/s over ~1K tokens of a book and decode tokens/s after a short
prompt and after ~1K tokens, plus RSS, for each model in one run. Speed numbers need a quiet
machine; the competence numbers are deterministic (greedy) and need not.

Writes ``docs/benchmarks/models.md`` + JSON. Usage: ``agentcore bench models [--quick] [--speed]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import torch
from _common import book_tokens, machine, markdown_table, rss_mib, write_report

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.core.models import MODELS
from agentcore.core.sampling import SamplingParams


def _fn(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": required},
        },
    }


TOOLS = [
    _fn(
        "get_weather",
        "Current weather and today's forecast for a city.",
        {"city": {"type": "string", "description": "city name"}},
        ["city"],
    ),
    _fn(
        "send_email",
        "Send an email.",
        {
            "to": {"type": "string", "description": "recipient address"},
            "subject": {"type": "string"},
            "body": {"type": "string"},
        },
        ["to", "subject", "body"],
    ),
    _fn(
        "set_timer",
        "Start a countdown timer.",
        {"minutes": {"type": "integer", "description": "length in minutes"}},
        ["minutes"],
    ),
    _fn(
        "convert_currency",
        "Convert an amount of money between currencies at today's rate.",
        {
            "amount": {"type": "number"},
            "source": {"type": "string", "description": "ISO code, e.g. EUR"},
            "target": {"type": "string", "description": "ISO code, e.g. USD"},
        },
        ["amount", "source", "target"],
    ),
]

# (request, tool, the argument values a right call carries)
TOOL_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("What's the weather like in Lisbon right now?", "get_weather", {"city": "Lisbon"}),
    ("Do I need an umbrella in Glasgow today?", "get_weather", {"city": "Glasgow"}),
    ("Check the forecast for Osaka please.", "get_weather", {"city": "Osaka"}),
    ("how hot is it in cairo atm", "get_weather", {"city": "cairo"}),
    ("Is it snowing in Tromsø?", "get_weather", {"city": "Tromsø"}),
    ("Weather in Quito?", "get_weather", {"city": "Quito"}),
    (
        "Email maria@example.org with the subject 'Invoice' and the text 'Paid today, thanks.'",
        "send_email",
        {"to": "maria@example.org", "subject": "Invoice"},
    ),
    (
        "Send a mail to ops@acme.io, subject Outage, saying the database is back up.",
        "send_email",
        {"to": "ops@acme.io", "subject": "Outage"},
    ),
    (
        "Please write to tom.h@example.com: subject 'Saturday', body 'Are we still on for 10?'",
        "send_email",
        {"to": "tom.h@example.com", "subject": "Saturday"},
    ),
    (
        "Let dana@example.net know by email (subject: Keys) that I left the keys at reception.",
        "send_email",
        {"to": "dana@example.net", "subject": "Keys"},
    ),
    ("Set a timer for 12 minutes.", "set_timer", {"minutes": 12}),
    (
        "Remind me in 45 minutes with a timer, the laundry will be done.",
        "set_timer",
        {"minutes": 45},
    ),
    ("Start a 3 minute countdown for the tea.", "set_timer", {"minutes": 3}),
    ("timer 25 min please", "set_timer", {"minutes": 25}),
    ("Can you time 90 minutes for my exam practice?", "set_timer", {"minutes": 90}),
    (
        "How much is 250 euros in US dollars today?",
        "convert_currency",
        {"amount": 250, "source": "EUR", "target": "USD"},
    ),
    (
        "Convert 1200 JPY to GBP.",
        "convert_currency",
        {"amount": 1200, "source": "JPY", "target": "GBP"},
    ),
    (
        "I have 80 Swiss francs, what's that in euros?",
        "convert_currency",
        {"amount": 80, "source": "CHF", "target": "EUR"},
    ),
    (
        "What do 19.99 USD come to in Canadian dollars?",
        "convert_currency",
        {"amount": 19.99, "source": "USD", "target": "CAD"},
    ),
    ("Weather for Nairobi, please.", "get_weather", {"city": "Nairobi"}),
]

NO_TOOL_REQUESTS = [
    "Who wrote Pride and Prejudice?",
    "Give me three tips for sleeping better.",
    "What is the difference between weather and climate?",
    "Write a haiku about autumn leaves.",
    "How do I politely decline a meeting invitation?",
    "Hi! How are you today?",
    "Explain what an exchange rate is, in two sentences.",
    "What is 7 times 8?",
    "Why do people set timers when cooking pasta?",
    "Translate 'good morning' into Spanish.",
]


def _right_values(call_args: dict[str, Any], want: dict[str, Any]) -> bool:
    def same(a: Any, b: Any) -> bool:
        if isinstance(b, int | float) and not isinstance(b, bool):
            try:
                return abs(float(a) - float(b)) < 1e-6
            except (TypeError, ValueError):
                return False
        return str(a).strip().lower() == str(b).strip().lower()

    return all(same(call_args.get(k), v) for k, v in want.items())


def competence(backend: LocalBackend, requests: int, max_tokens: int) -> dict[str, Any]:
    params = SamplingParams(max_tokens=max_tokens)
    rows: dict[str, Any] = {"auto": [], "required": [], "no_tool": []}
    for text, tool, want in TOOL_REQUESTS[:requests]:
        for arm in ("auto", "required"):
            r = backend.chat(
                [{"role": "user", "content": text}], tools=TOOLS, tool_choice=arm, params=params
            )
            call = r.tool_calls[0] if r.tool_calls else None
            rows[arm].append(
                {
                    "request": text,
                    "called": call is not None,
                    "tool_ok": call is not None and call.name == tool,
                    "args_ok": call is not None
                    and call.name == tool
                    and _right_values(call.arguments, want),
                    "call": None if call is None else [call.name, call.arguments],
                    "text": r.text[:160],
                }
            )
    for text in NO_TOOL_REQUESTS[: max(3, requests // 2)]:
        r = backend.chat(
            [{"role": "user", "content": text}], tools=TOOLS, tool_choice="auto", params=params
        )
        rows["no_tool"].append(
            {"request": text, "called": bool(r.tool_calls), "text": r.text[:160]}
        )
    return rows


def speed(engine: Engine) -> dict[str, float]:
    ids = book_tokens(engine.codec, 1024)
    s = engine.new_session()
    t0 = time.perf_counter()
    s.append_tokens(ids)
    prefill = len(ids) / (time.perf_counter() - t0)

    def decode(session: Any, steps: int = 32) -> float:
        assert session.next_logits is not None
        tok = int(torch.argmax(session.next_logits))
        t = time.perf_counter()
        for _ in range(steps):
            session.append_tokens([tok])
            tok = int(torch.argmax(session.next_logits))
        return steps / (time.perf_counter() - t)

    long_ctx = decode(s)
    short = engine.new_session()
    short.append_tokens(ids[:16])
    return {"prefill_tok_s": prefill, "decode_tok_s_16": decode(short), "decode_tok_s_1k": long_ctx}


COMPETENCE_HEADERS = [
    "model",
    "tools shown by",
    "auto: called",
    "auto: right tool",
    "auto: right values",
    "no-tool requests: called (want 0)",
    "required: right tool",
    "required: right values",
]


def rate(rows: list[dict[str, Any]], key: str) -> str:
    n = sum(1 for r in rows if r[key])
    return f"{n}/{len(rows)} ({100 * n / max(1, len(rows)):.0f}%)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="6 tool requests, 3 without")
    ap.add_argument("--speed", action="store_true", help="also prefill/decode speed and RSS")
    ap.add_argument("--models", nargs="*", default=[c.alias for c in MODELS])
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args(argv)
    n = 6 if args.quick else len(TOOL_REQUESTS)
    raw: dict[str, Any] = {"machine": machine(), "models": {}}
    table, speed_rows = [], []
    for alias in args.models:
        t0 = time.perf_counter()
        engine = Engine.load(alias)
        load_s = time.perf_counter() - t0
        backend = LocalBackend(engine)
        rows = competence(backend, n, args.max_tokens)
        entry: dict[str, Any] = {
            "load_s": load_s,
            "dialect": backend.dialect.call_format.name,
            "native": backend.dialect.native,
            **rows,
        }
        table.append(
            [
                alias,
                "template" if backend.dialect.native else "project prompt",
                rate(rows["auto"], "called"),
                rate(rows["auto"], "tool_ok"),
                rate(rows["auto"], "args_ok"),
                rate(rows["no_tool"], "called"),
                rate(rows["required"], "tool_ok"),
                rate(rows["required"], "args_ok"),
            ]
        )
        if args.speed:
            sp = speed(engine)
            sp["rss_mib"] = rss_mib()
            entry["speed"] = sp
            speed_rows.append(
                [
                    alias,
                    sp["prefill_tok_s"],
                    sp["decode_tok_s_16"],
                    sp["decode_tok_s_1k"],
                    sp["rss_mib"],
                ]
            )
        raw["models"][alias] = entry
        print(markdown_table(COMPETENCE_HEADERS, table[-1:]))
        del backend, engine
        gc.collect()
    md = [
        "# Both models side by side",
        "",
        f"`agentcore bench models{' --quick' if args.quick else ''}{' --speed' if args.speed else ''}`; {raw['machine']}.",
        f"{n} tool requests (4 tools offered, every argument stated) and "
        f"{len(raw['models'][args.models[0]]['no_tool'])} requests no tool fits, through "
        "`LocalBackend`, greedy, one fresh session each.",
        "",
        markdown_table(COMPETENCE_HEADERS, table),
    ]
    if speed_rows:
        md += [
            "",
            markdown_table(
                [
                    "model",
                    "prefill tok/s (1K)",
                    "decode tok/s (16 ctx)",
                    "decode tok/s (1K ctx)",
                    "RSS MiB",
                ],
                speed_rows,
            ),
        ]
    path = write_report("models", "\n".join(md), raw)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
