"""The reply after a tool result: the value in words, or the result copied back.

12 conversations written for this benchmark (timer, weather, stock price, unit conversion,
search results, an error, a file list, a calendar entry, a stock level, an exchange rate, a
translation, a sent mail), each a user request, the tool call that answers it and the tool's
result (plain text, a number, a JSON object or a JSON list). The reply to each is read in two
ways through :class:`~agentcore.backends.LocalBackend`, greedy, the tools still offered:

* ``stateless``: the whole conversation in one request, as openai-agents and LangChain send it;
* ``session``: a named session, turn 1 the request alone (the model's own call), turn 2 the
  result for that call (a case whose turn 1 makes no call is counted ``no call``).

A reply is ``words`` when it holds every value the case names (any accepted wording of each)
and does not copy the record; ``copy`` when it opens like a record (``{``, ``[``, ``<``, a
code fence, ``(``) or holds the record's markup (``"content"``, ``"name"``, ``tool_response``);
``verbatim`` when it opens with the result's first 16 characters (a result of at least 16);
``miss`` otherwise (words without the value).

Arms: ``cue`` (the backend as it is: :attr:`~agentcore.backends.LocalBackend.answer_cue`, a user
line after the results) and ``no-cue`` (``answer_cue=None``). Writes
``docs/benchmarks/after_result.md`` + JSON. Usage: ``agentcore bench after_result [--models ...]
[--modes stateless session] [--arms cue no-cue] [--threads N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import time
from collections.abc import Sequence
from typing import Any

from _common import machine, markdown_table, write_report
from _tool_call_cases import tool_entry

from agentcore.backends import LocalBackend
from agentcore.backends._protocol import ChatRequest
from agentcore.core.engine import Engine
from agentcore.core.params import SamplingParams

_NOT_FOUND = ("not found", "no city", "couldn't", "could not", "unable", "not able", "doesn't")
_NOT_FOUND += ("does not", "no weather", "not exist")
_S = {"type": "string"}
_N = {"type": "number"}
TOOLS = {
    "set_timer": tool_entry(
        "set_timer", "Start a countdown timer", {"minutes": {"type": "integer"}}
    ),
    "get_weather": tool_entry("get_weather", "Current weather for a city", {"city": _S}),
    "get_stock_price": tool_entry("get_stock_price", "Last trade price of a stock", {"symbol": _S}),
    "convert_units": tool_entry(
        "convert_units", "Convert a quantity between units", {"value": _N, "from": _S, "to": _S}
    ),
    "web_search": tool_entry("web_search", "Search the web", {"query": _S}),
    "list_files": tool_entry("list_files", "List the files in a folder", {"path": _S}),
    "next_event": tool_entry("next_event", "The next event in the user's calendar", {"after": _S}),
    "stock_level": tool_entry(
        "stock_level", "How many of an item the warehouse holds", {"item": _S}
    ),
    "exchange_rate": tool_entry(
        "exchange_rate", "Exchange rate between two currencies", {"base": _S, "quote": _S}
    ),
    "translate": tool_entry("translate", "Translate text", {"text": _S, "target": _S}),
    "send_email": tool_entry("send_email", "Send an email", {"to": _S, "subject": _S}),
}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    ask: str
    tool: str
    arguments: dict[str, Any]
    result: str
    values: tuple[tuple[str, ...], ...]  # every group must appear (any wording of a group)


CASES = [
    Case(
        "timer",
        "Set a timer for 25 minutes.",
        "set_timer",
        {"minutes": 25},
        "Timer started: it rings at 14:25.",
        (("14:25",),),
    ),
    Case(
        "weather",
        "What's the weather in Oslo?",
        "get_weather",
        {"city": "Oslo"},
        '{"city": "Oslo", "temp_c": 7, "sky": "light rain"}',
        (("7",), ("rain",)),
    ),
    Case(
        "stock-price",
        "What is NVIDIA's stock price?",
        "get_stock_price",
        {"symbol": "NVDA"},
        "NVDA last trade: 131.42 USD",
        (("131.42",),),
    ),
    Case(
        "conversion",
        "How many kilometres are 5 miles?",
        "convert_units",
        {"value": 5, "from": "miles", "to": "km"},
        "8.05",
        (("8.05",),),
    ),
    Case(
        "search",
        "Search for the tallest building in the world.",
        "web_search",
        {"query": "tallest building in the world"},
        json.dumps(
            [
                {
                    "title": "Burj Khalifa - Wikipedia",
                    "snippet": "The Burj Khalifa in Dubai is the tallest building in the world "
                    "at 828 m.",
                },
                {"title": "List of tallest buildings", "snippet": "Merdeka 118 is second."},
            ]
        ),
        (("Burj Khalifa",),),
    ),
    Case(
        "error",
        "What's the weather in Atlantis?",
        "get_weather",
        {"city": "Atlantis"},
        "Error: no city named 'Atlantis' was found.",
        (_NOT_FOUND,),
    ),
    Case(
        "file-list",
        "Which files are in the reports folder?",
        "list_files",
        {"path": "reports"},
        '["q1.pdf", "q2.pdf", "summary.xlsx"]',
        (("q1.pdf",), ("summary.xlsx",)),
    ),
    Case(
        "calendar",
        "When is my next appointment?",
        "next_event",
        {"after": "now"},
        "Dentist, Tuesday 3 June at 09:30, Elm Street clinic",
        (("09:30", "9:30"), ("dentist",)),
    ),
    Case(
        "stock-level",
        "How many washers does the warehouse hold?",
        "stock_level",
        {"item": "washers"},
        "15520",
        (("15520", "15,520"),),
    ),
    Case(
        "exchange",
        "What is the exchange rate from US dollars to yen?",
        "exchange_rate",
        {"base": "USD", "quote": "JPY"},
        '{"base": "USD", "quote": "JPY", "rate": 151.3}',
        (("151.3",),),
    ),
    Case(
        "translate",
        "Translate 'good morning' into French.",
        "translate",
        {"text": "good morning", "target": "French"},
        "Bonjour",
        (("bonjour",),),
    ),
    Case(
        "email",
        "Email ana@example.com the meeting minutes.",
        "send_email",
        {"to": "ana@example.com", "subject": "Meeting minutes"},
        '{"status": "sent", "id": "msg_81f2"}',
        (("sent",),),
    ),
]
_DISTRACTOR = {"set_timer": "get_weather"}  # a second tool offered beside the case's own
KINDS = ["words", "copy", "verbatim", "miss", "no call"]
_OPENERS = ("{", "[", "<", "`", "(")
_MARKUP = ('"content"', '"name"', "tool_response")


def classify(reply: str, case: Case) -> str:
    """``words``, ``copy``, ``verbatim`` or ``miss`` (see the module docstring)."""
    text = reply.strip()
    low = text.lower()
    if text.startswith(_OPENERS) or any(m in text for m in _MARKUP):
        return "copy"
    if len(case.result) >= 16 and text.startswith(case.result[:16]):
        return "verbatim"
    if all(any(v.lower() in low for v in group) for group in case.values):
        return "words"
    return "miss"


def _tools(case: Case) -> list[dict[str, Any]]:
    other = _DISTRACTOR.get(case.tool, "set_timer")
    return [TOOLS[case.tool], TOOLS[other]]


def _call_message(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def reply_stateless(backend: LocalBackend, case: Case, params: SamplingParams) -> str:
    messages = [
        {"role": "user", "content": case.ask},
        _call_message("call_1", case.tool, case.arguments),
        {"role": "tool", "tool_call_id": "call_1", "content": case.result},
    ]
    request = ChatRequest(messages=messages, tools=_tools(case), params=params)
    return backend.complete(request).text


def reply_session(
    backend: LocalBackend, case: Case, params: SamplingParams, sid: str
) -> str | None:
    ask = [{"role": "user", "content": case.ask}]
    first = backend.complete(
        ChatRequest(messages=ask, tools=_tools(case), params=params, session=sid)
    )
    if not first.tool_calls:
        return None
    call = first.tool_calls[0]
    messages = [
        *ask,
        first.message(),
        {"role": "tool", "tool_call_id": call.id, "content": case.result},
    ]
    request = ChatRequest(messages=messages, tools=_tools(case), params=params, session=sid)
    return backend.complete(request).text


def run(
    backend: LocalBackend, modes: Sequence[str], max_tokens: int = 48, tag: str = ""
) -> list[dict[str, Any]]:
    """One row per (mode, case): the reply and its kind."""
    params = SamplingParams(max_tokens=max_tokens)
    rows = []
    for mode in modes:
        for i, case in enumerate(CASES):
            t0 = time.perf_counter()
            if mode == "stateless":
                reply: str | None = reply_stateless(backend, case, params)
            else:
                reply = reply_session(backend, case, params, f"after-{tag}{i}")
            kind = "no call" if reply is None else classify(reply, case)
            rows.append(
                {
                    "mode": mode,
                    "case": case.name,
                    "kind": kind,
                    "reply": reply,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            )
            print(f"{mode:9} {case.name:12} {kind:8} {reply!r}", flush=True)
    return rows


def summary(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Per mode (arm, mode): the count of each kind."""
    out = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode]
        out.append([mode, *(sum(r["kind"] == k for r in mine) for k in KINDS), len(mine)])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-coder-0.5b"])
    ap.add_argument("--modes", nargs="+", default=["stateless", "session"])
    ap.add_argument("--arms", nargs="+", default=["cue", "no-cue"], choices=["cue", "no-cue"])
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="after_result")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import tempfile

    sections, raw = [], {"machine": machine(), "models": {}}
    for alias in args.models:
        with tempfile.TemporaryDirectory() as folder:
            backend = LocalBackend(Engine.load(alias), sessions_dir=folder)
            cue, rows = backend.answer_cue, []
            for arm in args.arms:
                backend.answer_cue = cue if arm == "cue" else None
                for row in run(backend, args.modes, args.max_tokens, tag=arm):
                    rows.append({**row, "mode": f"{arm}, {row['mode']}"})
            name = backend.name
            del backend
            gc.collect()
        raw["models"][alias] = rows
        table = markdown_table(["mode", *KINDS, "cases"], summary(rows))
        replies = markdown_table(
            ["mode", "case", "kind", "reply"],
            [
                [r["mode"], r["case"], r["kind"], repr(r["reply"])[:90].replace("|", "\\|")]
                for r in rows
            ],
        )
        sections.append(f"## {name}\n\n{table}\n\n{replies}")
        print(table)
    md = "# The reply after a tool result\n\n" + __doc__.split("\n\n", 1)[1] + "\n\n"
    md += "\n\n".join(sections)
    print(write_report(args.out, md, raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
