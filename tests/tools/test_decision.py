"""The call-or-answer decision and tool retrieval (agentcore.tools._decision).

On the offline MiniLM embedder (bundled files, no network) and, end to end, through
LocalBackend on a tiny random Llama with the real SmolLM2 tokenizer: a tool request calls, a
chat request answers, a near miss answers, and retrieval keeps the right tool among 200. The
slow test runs the real default model over 30 cases of bench/tool_calls.py's test split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from agentcore import testing
from agentcore.backends import LocalBackend
from agentcore.core.sampling import SamplingParams
from agentcore.tools._decision import DecisionConfig, ToolSelector, tool_document


def _fn(name: str, description: str, **params: str) -> dict[str, Any]:
    props = {k: {"type": v} for k, v in params.items()}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(params)},
        },
    }


WEATHER = _fn("get_weather", "Current weather and today's forecast for a city.", city="string")
TIMER = _fn("set_timer", "Start a countdown timer.", minutes="integer")
EMAIL = _fn("send_email", "Send an email.", to="string", subject="string", body="string")
TRIANGLE = _fn(
    "triangle_area", "Area of a triangle from its base and height.", base="number", height="number"
)
TOOLS = [WEATHER, TIMER, EMAIL]


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def selector() -> ToolSelector:
    from agentcore.memory import embed_texts

    return ToolSelector(lambda texts: embed_texts(list(texts), device="cpu"))


def test_tool_document_reads_name_description_and_parameters() -> None:
    doc = tool_document(_fn("getWeather_now", "Weather for a city.", city="string"))
    assert doc.startswith("get weather now: Weather for a city.")
    assert "city" in doc


@pytest.mark.parametrize(
    ("request_text", "tool"),
    [
        ("What's the weather like in Lisbon right now?", "get_weather"),
        ("Set a timer for 12 minutes.", "set_timer"),
        ("Send an email to ops@acme.io: subject Outage, body: the database is back.", "send_email"),
    ],
)
def test_a_tool_request_calls_the_right_tool(
    selector: ToolSelector, request_text: str, tool: str
) -> None:
    d = selector.decide(_user(request_text), TOOLS)
    assert d.call, d.reason
    assert d.offered == (tool,)


@pytest.mark.parametrize(
    "request_text",
    ["Who wrote Pride and Prejudice?", "Hi! How are you today?", "Write a haiku about autumn."],
)
def test_a_chat_request_answers(selector: ToolSelector, request_text: str) -> None:
    d = selector.decide(_user(request_text), TOOLS)
    assert not d.call, d.reason
    assert d.offered == ()


def test_a_near_miss_answers(selector: ToolSelector) -> None:
    # the triangle tool needs two numbers; a circle question states one
    d = selector.decide(_user("What is the area of a circle with radius 4?"), [TRIANGLE])
    assert not d.call, d.reason
    assert "numbers" in d.reason
    assert selector.decide(_user("Area of a triangle, base 4 and height 6?"), [TRIANGLE]).call


def test_context_before_the_request_does_not_pick_the_tool(selector: ToolSelector) -> None:
    # the Agent puts retrieved lessons, facts and its tool record before the request
    from agentcore.tools import REQUEST_MARKER

    context = (
        "Tool record: get_weather 3/3 ok, set_timer 2/2 ok\n"
        "What the user told you: I check the weather in Oslo every morning."
    )
    chat = selector.decide(_user(f"{context}{REQUEST_MARKER}Write a haiku about autumn."), TOOLS)
    assert not chat.call, chat.reason
    act = selector.decide(
        _user(f"{context}{REQUEST_MARKER}Email ops@acme.io that I am late."), TOOLS
    )
    assert act.call and act.offered == ("send_email",), act.reason


def test_a_one_clause_request_is_served_by_its_call(selector: ToolSelector, tmp_path: Path) -> None:
    # the file name counted for read_file before the call; once read_file took it, it no
    # longer does, and remember scored best: a second call nobody asked for
    from agentcore.tools.builtin import default_tools

    entries = default_tools(workspace=tmp_path).openai_tools()
    ask = "What's on my list in todo.md?"
    first = selector.decide(_user(ask), entries)
    assert first.call and first.offered[0] == "read_file", first.reason
    call = {"id": "c1", "type": "function"}
    call["function"] = {"name": "read_file", "arguments": '{"path": "todo.md"}'}
    after = [
        *_user(ask),
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "- pay the invoice\n- call Ann"},
    ]
    d = selector.decide(after, entries)
    assert not d.call and "called" in d.reason, d.reason


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("Thanks! What does notes.txt say?", True),
        ("Hi there. Which files do I have?", True),
        ("OK, what is 3*4?", True),
        ("Thanks! Write hello to a.txt.", False),
        ("Thanks! Could you write hello to a.txt?", False),
    ],
)
def test_a_greeting_before_a_question_keeps_it_a_question(text: str, question: bool) -> None:
    from agentcore.tools._decision import _asks_a_question

    assert _asks_a_question(text) is question


EVENT = _fn("create_event", "Add an event to the calendar.", title="string", date="string")
CANCEL_ORDER = _fn("cancel_order", "Cancel an order by its number.", order_id="string")
ORDERS = _fn("get_orders", "Look up a customer's orders.", customer_id="string")


@pytest.mark.parametrize(
    ("request_text", "tools"),
    [
        ("Delete the event 'Dentist' from my calendar.", [EVENT, WEATHER]),
        ("Can you please cancel my order 4471?", [ORDERS, TIMER]),
        ("I'd like you to remove the 'Standup' meeting on Friday.", [EVENT]),
    ],
)
def test_a_request_to_take_away_answers_when_no_tool_removes(
    selector: ToolSelector, request_text: str, tools: list[dict[str, Any]]
) -> None:
    # same topic, opposite action: the embedder alone called create_event / get_orders
    d = selector.decide(_user(request_text), tools)
    assert not d.call, d.reason
    assert "take away" in d.reason


def test_a_request_to_take_away_calls_the_tool_that_removes(selector: ToolSelector) -> None:
    tools = [ORDERS, CANCEL_ORDER, EVENT]
    d = selector.decide(_user("Cancel my order 4471, please."), tools)
    assert d.call and d.offered == ("cancel_order",), d.reason
    # the action is read from the request's verb: cancelling is not taking away elsewhere
    d = selector.decide(_user("Show me the orders of customer 1029."), tools)
    assert d.call and d.offered == ("get_orders",), d.reason
    d = selector.decide(_user("Put 'Dentist' in my calendar on 2025-05-02."), tools)
    assert d.call and d.offered == ("create_event",), d.reason


# the agent's own file and arithmetic tools, as its registry declares them
def _tool(name: str, description: str, **params: dict[str, Any]) -> dict[str, Any]:
    entry = _fn(name, description, **dict.fromkeys(params, "string"))
    for key, schema in params.items():
        entry["function"]["parameters"]["properties"][key].update(schema)
    return entry


_PATH = {"description": "Path relative to the workspace root."}
CALC = _tool(
    "calculate",
    "Evaluate an arithmetic expression and return the number.",
    expression={"description": "Arithmetic such as 2 * (3 + 4)."},
)
READ = _tool("read_file", "Read a text file from the workspace.", path=_PATH)
WRITE = _tool("write_file", "Write a text file in the workspace.", path=_PATH, content={})
FILES = [CALC, READ, WRITE, WEATHER]


@pytest.mark.parametrize(
    ("request_text", "tool"),
    [
        ("What is 1000-357?", "calculate"),  # the embedder alone: 0.06, a chat answer
        ('Save "buy milk" in shopping.txt', "write_file"),  # 0.16
        ("Read todo.md and tell me what it says", "read_file"),  # 0.20
    ],
)
def test_a_value_a_parameter_takes_asks_for_its_tool(
    selector: ToolSelector, request_text: str, tool: str
) -> None:
    d = selector.decide(_user(request_text), FILES)
    assert d.call and d.offered == (tool,), d.reason


@pytest.mark.parametrize(
    ("request_text", "tool"),
    [
        ("I left a note in notes.txt, what does it say?", "read_file"),  # write_file 0.60
        ("Can you write 'ready' to plan.txt?", "write_file"),  # asked politely: an action
        ("Then could you save 'ok' in status.txt?", "write_file"),
    ],
)
def test_a_question_asks_to_read_not_to_change(
    selector: ToolSelector, request_text: str, tool: str
) -> None:
    d = selector.decide(_user(request_text), FILES)
    assert d.call and d.offered == (tool,), d.reason


def _after(request_text: str, *calls: tuple[str, dict[str, Any], str]) -> list[dict[str, Any]]:
    """The conversation after ``calls`` (name, arguments, result) answered the request."""
    msgs = _user(request_text)
    for i, (name, args, result) in enumerate(calls):
        call = {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": args}}
        msgs += [
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": result},
        ]
    return msgs


def test_steps_that_act_on_a_result_come_one_at_a_time(selector: ToolSelector) -> None:
    ask = "Calculate 12*12, then save it in square.txt"
    d = selector.decide(_user(ask), FILES)
    assert d.call and d.offered == ("calculate",) and d.calls == 1, d.reason
    d = selector.decide(_after(ask, ("calculate", {"expression": "12*12"}, "144")), FILES)
    assert d.call and d.offered == ("write_file",), d.reason
    done = _after(
        ask,
        ("calculate", {"expression": "12*12"}, "144"),
        ("write_file", {"path": "square.txt", "content": "144"}, "wrote 3 characters"),
    )
    d = selector.decide(done, FILES)
    assert not d.call, d.reason  # every clause had its call: the answer, no read_file after


def test_a_request_of_one_step_is_answered_after_its_call(selector: ToolSelector) -> None:
    ask = "Read notes.txt"
    assert selector.decide(_user(ask), FILES).offered == ("read_file",)
    d = selector.decide(_after(ask, ("read_file", {"path": "notes.txt"}, "falcon")), FILES)
    assert not d.call, d.reason  # write_file (0.45 on its own) is not the next step


def test_the_first_step_of_a_copy_reads_then_writes(selector: ToolSelector) -> None:
    ask = "Read notes.txt and write its content to copy.txt"
    d = selector.decide(_user(ask), FILES)
    assert d.offered == ("read_file",) and d.calls == 1, d.reason
    d = selector.decide(_after(ask, ("read_file", {"path": "notes.txt"}, "falcon")), FILES)
    assert d.offered == ("write_file",), d.reason


def test_a_tool_done_since_the_request_is_not_called_again(selector: ToolSelector) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {}}}
    msgs = [
        *_user("What's the weather in Oslo?"),
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 4}'},
    ]
    assert not selector.decide(msgs, TOOLS).call


def _enum(name: str, description: str, param: str, values: list[str]) -> dict[str, Any]:
    """A tool whose one parameter is an enum: a random tiny model finishes its call fast."""
    fn = _fn(name, description, **{param: "string"})
    fn["function"]["parameters"]["properties"][param]["enum"] = values
    return fn


WEATHER_ENUM = _enum(
    "get_weather", "Current weather and today's forecast for a city.", "city", ["Lisbon", "Oslo"]
)


def _many_tools(n: int) -> list[dict[str, Any]]:
    verbs = ["get", "create", "delete", "update", "list", "search", "archive", "export"]
    things = [
        "invoice", "customer", "ticket", "playlist", "recipe", "vehicle", "patient", "shipment",
        "contract", "photo", "course", "flight", "warehouse", "sensor", "meeting", "podcast",
        "payroll", "garden", "library_book", "parking_spot", "vaccine", "tournament", "budget",
        "aquarium", "subscription", "satellite",
    ]  # fmt: skip
    out = [
        _enum(f"{v}_{t}", f"{v.capitalize()} a {t.replace('_', ' ')} record.", "id", ["a1", "b2"])
        for t in things
        for v in verbs
    ]
    return [*out[: n - 1], WEATHER_ENUM]


def test_retrieval_keeps_the_right_tool_among_200(selector: ToolSelector) -> None:
    tools = _many_tools(200)
    assert len(tools) == 200
    for text, want in [
        ("Will it rain in Madrid today?", "get_weather"),
        ("Please delete the parking spot record P-17.", "delete_parking_spot"),
        ("Show me all vaccine records.", "list_vaccine"),
    ]:
        narrowed, choice, _ = selector.narrow(_user(text), tools, "required")
        names = [t["function"]["name"] for t in narrowed]
        assert choice == "required"
        assert len(names) == selector.config.top_k
        assert want in names, (text, names)
    # embedded once per tool set: the second request reuses the cached vectors
    first = selector.tool_vectors(tools)
    assert selector.tool_vectors(list(tools)) is first


def test_an_injected_embedder_is_the_seam() -> None:
    """Any texts -> unit rows function works (a bag of words here): no model needed."""
    vocab: dict[str, int] = {}

    def bag(texts: Sequence[str]) -> np.ndarray:
        rows = []
        for t in texts:
            v = np.zeros(256, dtype=np.float32)
            for w in t.lower().replace("?", " ").replace(".", " ").replace(":", " ").split():
                v[vocab.setdefault(w, len(vocab) % 256)] += 1
            rows.append(v / max(1e-6, float(np.linalg.norm(v))))
        return np.stack(rows)

    sel = ToolSelector(bag, DecisionConfig(threshold=0.2, chat_weight=0.0))
    assert sel.decide(_user("weather forecast for a city: Paris"), TOOLS).offered == (
        "get_weather",
    )
    assert not sel.decide(_user("zzz qqq"), TOOLS).call


# ---------------------------------------------------------------- through LocalBackend


@pytest.fixture(scope="module")
def backend(smollm2_tokenizer: Any) -> LocalBackend:
    """A tiny random Llama on the real SmolLM2 tokenizer: constrained calls without weights."""
    from agentcore.core.codec import HFCodec

    return LocalBackend(testing.tiny_engine(codec=HFCodec(smollm2_tokenizer)))


PARAMS = SamplingParams(max_tokens=40)


def test_backend_auto_calls_for_a_tool_request(backend: LocalBackend) -> None:
    tools = [WEATHER_ENUM, _enum("set_timer", "Start a countdown timer.", "minutes", ["5", "10"])]
    r = backend.chat(_user("What's the weather in Lisbon?"), tools=tools, params=PARAMS)
    assert [c.name for c in r.tool_calls] == ["get_weather"]
    assert r.finish_reason == "tool_calls"


def test_backend_auto_answers_a_chat_request_and_a_near_miss(backend: LocalBackend) -> None:
    r = backend.chat(_user("Who wrote Pride and Prejudice?"), tools=TOOLS, params=PARAMS)
    assert r.tool_calls == ()
    r = backend.chat(
        _user("What is the area of a circle with radius 4?"), tools=[TRIANGLE], params=PARAMS
    )
    assert r.tool_calls == ()


def test_backend_session_decides_from_the_request_the_session_holds(
    backend: LocalBackend,
) -> None:
    """The Agent continues a session with only the tool result: the next step is still decided
    from the request (before: "no request", a text answer after the first step)."""
    ask = _user("Calculate 12*12, then save it in square.txt")
    tools = [  # the same tools, their values listed: the random model's calls end in time
        _tool("calculate", CALC["function"]["description"], expression={"enum": ["12*12"]}),
        _tool("read_file", READ["function"]["description"], path={**_PATH, "enum": ["a.txt"]}),
        _tool(
            "write_file",
            WRITE["function"]["description"],
            path={**_PATH, "enum": ["square.txt"]},
            content={"enum": ["144"]},
        ),
    ]
    first = backend.chat(ask, tools=tools, params=PARAMS, session="steps")
    assert [c.name for c in first.tool_calls] == ["calculate"]
    result = {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "144"}
    second = backend.chat([result], tools=tools, params=PARAMS, session="steps")
    assert [c.name for c in second.tool_calls] == ["write_file"]


def test_backend_without_a_selector_leaves_the_choice_to_the_model(
    backend: LocalBackend,
) -> None:
    plain = LocalBackend(backend.engine)
    plain.tool_selector = None
    r = plain.chat(_user("Who wrote Pride and Prejudice?"), tools=TOOLS, params=PARAMS)
    assert all(c.name in {"get_weather", "set_timer", "send_email"} for c in r.tool_calls)


def test_backend_offers_only_the_retrieved_tools_among_200(backend: LocalBackend) -> None:
    ask = _user("Will it rain in Madrid today?")
    r = backend.chat(ask, tools=_many_tools(200), tool_choice="required", params=PARAMS)
    assert backend.tool_selector is not None
    narrowed, _, _ = backend.tool_selector.narrow(ask, _many_tools(200), "required")
    offered = {t["function"]["name"] for t in narrowed}
    assert "get_weather" in offered
    assert [c.name for c in r.tool_calls][:1] and r.tool_calls[0].name in offered


# ---------------------------------------------------------------- the real default model


@pytest.mark.slow
def test_real_model_auto_on_30_test_cases(
    real_engine: Any, bench_module: Callable[[str], ModuleType]
) -> None:
    """SmolLM2-135M under ``auto`` over 30 cases of the benchmark's test split (the first 6 per
    category). Floors: 12/30 right end to end (AST scoring) and the first call's tool (or no
    call) right for 21/30. Measured at 7687cb3 (2026-12-04): 18/30 right (simple 4/6, multiple
    2/6, parallel 4/6, irrelevance 2/6, multi-turn 6/6) and 26/30 decided right, the same at 80
    and 160 new tokens; on the whole test split the model scores 73% and the decision alone
    90% (docs/benchmarks/tool_calls-parallel/). The floors sit about a third and a fifth
    below, so a regression fails the test and a flipped greedy token or two does not."""
    cases = bench_module("_tool_call_cases")
    chosen = []
    for cat in ["simple", "multiple", "parallel", "irrelevance", "multi_turn"]:
        chosen += [c for c in cases.CASES if c.category == cat and c.split == "test"][:6]
    backend = LocalBackend(real_engine)
    right = decided = 0
    for case in chosen:
        r = backend.chat(
            list(case.messages), tools=case.tool_entries(), params=SamplingParams(max_tokens=80)
        )
        calls = [(c.name, dict(c.arguments)) for c in r.tool_calls]
        if case.category == "irrelevance":
            right += not calls
            decided += not calls
        else:
            right += cases.calls_match(calls, case.expected)
            decided += bool(calls) and calls[0][0] in {e[0] for e in case.expected}
    assert right >= 12, f"{right}/30 right"
    assert decided >= 21, f"{decided}/30 decided right"
