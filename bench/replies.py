"""What a chat reply looks like under each default decoding: loops, numbers and code.

Greedy decoding alone makes a small model loop: SmolLM2-135M answered "Give me three tips for
learning to cook." with "1. **1011111111..." and a greeting in Portuguese with one phrase
forty times. This bench asks the model ``--model`` the bench's own everyday requests (no
public dataset), one fresh session each, the chat template applied, in three arms:

- ``greedy``: :meth:`SamplingParams.greedy`, no penalty (the server's default up to session 37);
- ``reply penalty``: :meth:`SamplingParams.reply`, a repetition penalty of 1.15 on the reply's
  own tokens with digits exempt (the Agent's default, and the server's chat default since);
- ``reply penalty, digits too``: the same with digits penalized as well.

and measures what the user gets:

- **loops**: prose replies (all but the code requests, whose names repeat by nature) with a
  degenerate repeat: the same six words in a row three times or more, or one character 12
  times in a row;
- **distinct bigrams**: unique word bigrams over all word bigrams of a prose reply (mean);
- **numbers**: requests whose answer is a number (copied from the prompt or computed) answered
  with that number;
- **code**: requests for a Python function whose first code block (or the whole reply when it
  has none) parses and defines a function.

Writes ``docs/benchmarks/replies.md`` + JSON (``--out`` elsewhere). Usage: ``agentcore bench
replies [--model default] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import itertools
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import DOCS, machine, markdown_table, publish

from agentcore.core.engine import Engine
from agentcore.core.params import SamplingParams


@dataclasses.dataclass(frozen=True)
class Request:
    kind: str  # "open", "number" or "code"
    text: str
    answer: str = ""  # for "number": the digits the reply must contain


REQUESTS = (
    Request("open", "Give me three tips for learning to cook."),
    Request("open", "Hi, I live in Lisbon."),
    Request("open", "My name is Ada and my cat is called Pixel. Remember that."),
    Request("open", "Explain in two sentences why the sky is blue."),
    Request("open", "Write a short poem about autumn leaves."),
    Request("open", "What should I pack for a weekend hiking trip?"),
    Request("open", "List five fruits that are rich in vitamin C."),
    Request("open", "How do I politely decline a meeting invitation?"),
    Request("open", "Describe the water cycle for a ten-year-old."),
    Request("open", "What are the pros and cons of working from home?"),
    Request("open", "Suggest a name for a bakery that sells sourdough bread."),
    Request("open", "I feel tired every afternoon. Any advice?"),
    Request("number", "My locker code is 4471. What is my locker code?", "4471"),
    Request("number", "The meeting is in room 3308. Which room is the meeting in?", "3308"),
    Request("number", "What is 12 plus 30? Answer with the number only.", "42"),
    Request("number", "How many days are there in a leap year?", "366"),
    Request(
        "number", "My flight number is 1177 and it leaves at 9. What is my flight number?", "1177"
    ),
    Request("number", "The invoice total is 2500 dollars. How much is the invoice?", "2500"),
    Request("number", "How many legs does a spider have?", "8"),
    Request("number", "Write the number one hundred and eleven in digits.", "111"),
    Request("code", "Write a Python function that returns the factorial of n."),
    Request("code", "Write a Python function that checks whether a string is a palindrome."),
    Request("code", "Write a Python function that returns the largest number in a list."),
    Request("code", "Write a Python function that counts the vowels in a string."),
)

ARMS = {
    "greedy": SamplingParams.greedy,
    "reply penalty": SamplingParams.reply,
    "reply penalty, digits too": lambda n: SamplingParams.reply(n, penalize_digits=True),
}
TOKENS = {"open": 160, "number": 48, "code": 200}


def loops(text: str) -> bool:
    """A degenerate repeat: the same six words in a row three times or more (a phrase or a line
    of any length said over and over; a topic's own words, "working from home", repeat less),
    or a character 12 times in a row (spaces aside)."""
    if re.search(r"(\S)\1{11}", text):
        return True
    words = re.findall(r"\w+", text.lower())
    grams = Counter(tuple(words[i : i + 6]) for i in range(len(words) - 5))
    return bool(grams) and max(grams.values()) >= 3


def distinct_bigrams(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    pairs = list(itertools.pairwise(words))
    return len(set(pairs)) / len(pairs) if pairs else 1.0


def has_number(text: str, answer: str) -> bool:
    return answer in re.findall(r"\d+", text.replace(",", ""))


def code_parses(text: str) -> bool:
    """The reply's first fenced code block (else the whole reply) parses and defines a
    function."""
    block = re.search(r"```(?:python|py)?\n(.*?)(?:```|$)", text, re.S)
    source = block.group(1) if block else text
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.FunctionDef) for node in ast.walk(tree))


def reply(engine: Engine, request: Request, params: SamplingParams) -> str:
    session = engine.new_session()
    session.append_messages([{"role": "user", "content": request.text}])
    return session.generate(params).text


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    def mean(kinds: tuple[str, ...], key: str) -> float:
        picked = [r[key] for r in rows if r["kind"] in kinds]
        return sum(picked) / len(picked) if picked else float("nan")

    prose = ("open", "number")  # code repeats its names by nature
    return {
        "loops": mean(prose, "loops"),
        "loops_open": mean(("open",), "loops"),
        "distinct_bigrams": mean(prose, "distinct"),
        "numbers": mean(("number",), "ok"),
        "code": mean(("code",), "ok"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="default", help="model alias")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DOCS)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    engine = Engine.load(args.model, threads=args.threads)
    info = engine.info()
    rows: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for request in REQUESTS:
        for arm, make in ARMS.items():
            text = reply(engine, request, make(TOKENS[request.kind]))
            ok = (
                has_number(text, request.answer)
                if request.kind == "number"
                else code_parses(text)
                if request.kind == "code"
                else True
            )
            row = {
                "kind": request.kind,
                "request": request.text,
                "reply": text,
                "loops": loops(text),
                "distinct": distinct_bigrams(text),
                "ok": ok,
            }
            rows[arm].append(row)
            print(
                f"{arm:26s} {request.kind:6s} loops={row['loops']!s:5s} ok={ok!s:5s} {text[:70]!r}",
                flush=True,
            )
    summary = {arm: summarize(r) for arm, r in rows.items()}
    n = Counter(r.kind for r in REQUESTS)
    table = markdown_table(
        [
            "arm",
            f"prose replies that loop (of {n['open'] + n['number']})",
            f"open requests that loop (of {n['open']})",
            "distinct word bigrams (prose), mean",
            f"numbers right (of {n['number']})",
            f"code parses (of {n['code']})",
        ],
        [
            [
                arm,
                f"{s['loops']:.0%}",
                f"{s['loops_open']:.0%}",
                s["distinct_bigrams"],
                f"{s['numbers']:.0%}",
                f"{s['code']:.0%}",
            ]
            for arm, s in summary.items()
        ],
    )
    raw: dict[str, Any] = {
        "model": info.name,
        "machine": machine(),
        "args": vars(args) | {"out": str(args.out)},
        "summary": summary,
        "rows": rows,
        "wall_s": time.perf_counter() - t_start,
    }
    md = f"""# Chat replies under each default decoding

Model {info.name} ({info.device}/{info.dtype}, {info.weights} weights); {machine()}.
{len(REQUESTS)} requests of the bench's own ({n["open"]} open, {n["number"]} with a number for
answer, {n["code"]} for a Python function), one fresh session each, the chat template applied,
up to {TOKENS["open"]} / {TOKENS["number"]} / {TOKENS["code"]} tokens; every reply is in the JSON.

{table}

Whole run: {raw["wall_s"]:.0f} s. Command: `agentcore bench replies --model {args.model}
--threads {args.threads}`.
"""
    name = "replies" if args.model == "default" else f"replies-{info.name.lower()}"
    return publish(name, md, raw, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
