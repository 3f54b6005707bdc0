"""``tool_choice="required"`` goes through the selector's ranking (agentcore.tools._decision).

Issue #22: after ``find_user`` and its result, a forced call left to the model among every tool
repeated ``find_user`` with the same arguments (0 of 13 dev multi-turn cases on both models);
under ``auto`` the selector offered ``get_orders``. On the offline MiniLM embedder and, end to
end, a tiny random Llama on the real SmolLM2 tokenizer (no weights, no network).
"""

from __future__ import annotations

from typing import Any

import pytest

from agentcore import testing
from agentcore.backends import LocalBackend
from agentcore.core.sampling import SamplingParams
from agentcore.tools._decision import ToolSelector


def _tool(name: str, description: str, param: str, kind: str, enum: list[Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {param: {"type": kind, "enum": enum}},
                "required": [param],
            },
        },
    }


FIND_USER = _tool("find_user", "Find a customer's account by name.", "name", "string", ["Ann Lee"])
GET_ORDERS = _tool("get_orders", "List a customer's orders.", "user_id", "integer", [4471, 9])
WEATHER = _tool("get_weather", "Current weather for a city.", "city", "string", ["Oslo"])
TOOLS = [FIND_USER, GET_ORDERS, WEATHER]


def _after_find_user(follow_up: str | None) -> list[dict[str, Any]]:
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "find_user", "arguments": {"name": "Ann Lee"}},
    }
    msgs: list[dict[str, Any]] = [
        {"role": "user", "content": "Look up Ann Lee's account id."},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "call_0",
            "name": "find_user",
            "content": '{"user_id": 4471}',
        },
    ]
    if follow_up is not None:
        msgs.append({"role": "user", "content": follow_up})
    return msgs


@pytest.fixture(scope="module")
def selector() -> ToolSelector:
    from agentcore.memory import embed_texts

    return ToolSelector(lambda texts: embed_texts(list(texts), device="cpu"))


@pytest.mark.parametrize("follow_up", ["Now list that customer's orders.", None])
def test_required_offers_the_next_tool_not_the_one_just_answered(
    selector: ToolSelector, follow_up: str | None
) -> None:
    msgs = _after_find_user(follow_up)
    if follow_up is None:  # one request for both steps: the result came back since it
        msgs[0]["content"] = "Find the account of Ann Lee and show me their orders."
    narrowed, choice, decision = selector.narrow(msgs, TOOLS, "required")
    assert choice == "required"
    assert [t["function"]["name"] for t in narrowed] == ["get_orders"]
    assert decision is not None and decision.ranked[0][0] == "get_orders"


def test_required_keeps_every_tool_without_a_request(selector: ToolSelector) -> None:
    narrowed, choice, _ = selector.narrow([{"role": "system", "content": "hi"}], TOOLS, "required")
    assert (len(narrowed), choice) == (3, "required")


def test_a_named_tool_and_none_pass_through(selector: ToolSelector) -> None:
    msgs = _after_find_user("Now list that customer's orders.")
    named = {"type": "function", "function": {"name": "find_user"}}
    assert selector.narrow(msgs, TOOLS, named) == (TOOLS, named, None)
    assert selector.narrow(msgs, TOOLS, "none") == (TOOLS, "none", None)


def test_backend_required_calls_the_next_tool(smollm2_tokenizer: Any) -> None:
    """The tiny random model, forced to call, can only call ``get_orders`` here."""
    from agentcore.core.codec import HFCodec

    backend = LocalBackend(testing.tiny_engine(codec=HFCodec(smollm2_tokenizer)))
    r = backend.chat(
        _after_find_user("Now list that customer's orders."),
        tools=TOOLS,
        tool_choice="required",
        params=SamplingParams(max_tokens=40),
    )
    assert [c.name for c in r.tool_calls] == ["get_orders"]
