"""A server-side call whose arguments fail validation is decoded once more, with the error.

On a tiny random Llama with the real SmolLM2 tokenizer, through :class:`LocalBackend` and the
HTTP API. The tool's schema has a rule the grammar cannot enforce (a look-ahead pattern, left
out of the decoding grammar and checked by validation), so a call can be decoded that its
schema refuses. The model's choices are scripted by narrowing each generation's grammar to one
value: a first call refused, then a corrected one -> one retry, and the validation error is in
the prompt of the second generation; a call refused twice -> still only one retry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import agentcore.backends._local as local
from agentcore.backends import LocalBackend
from agentcore.core.constraint import GrammarConstraint
from agentcore.core.engine import Engine
from agentcore.core.sampling import SamplingParams
from agentcore.tools import build_action_grammar


def _lookup(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up an order by its code.",
            "parameters": {
                "type": "object",
                "properties": {
                    # the pattern (look-ahead) is checked by validation, not by the grammar
                    "code": {"type": "string", "enum": codes, "pattern": "^(?!bad)"}
                },
                "required": ["code"],
            },
        },
    }


LOOKUP = _lookup(["bad", "good"])
ASK = [{"role": "user", "content": "Look up order good."}]
PARAMS = SamplingParams(max_tokens=40)


class _Script:
    """Records each generation's prompt text; decodes the n-th under a grammar that admits
    only ``codes[n]`` (None: the backend's own constraint)."""

    def __init__(self, engine: Engine, codes: list[str | None]) -> None:
        self.engine, self.codes = engine, codes
        self.prompts: list[str] = []

    def __call__(
        self, real: Any, s: Any, turn: Any, constraint: Any, fmt: Any, bias: Any = None
    ) -> Any:
        n = len(self.prompts)
        self.prompts.append(s.rendered)
        code = self.codes[n] if n < len(self.codes) else None
        if code is not None and constraint is not None:
            tools = local.tools_from_openai([_lookup([code])])
            codec = self.engine.codec
            constraint = GrammarConstraint.from_grammar(
                codec.hf,
                build_action_grammar(tools, "required"),
                vocab_size=self.engine.core.dims.vocab,
                eos_token_ids=sorted(codec.stop_ids),
            )
        return real(s, turn, constraint, fmt, bias)


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch, smollm2_engine: Engine) -> Callable[..., _Script]:
    def make(*codes: str | None) -> _Script:
        seen = _Script(smollm2_engine, list(codes))
        real = local._generate
        monkeypatch.setattr(local, "_generate", lambda *a: seen(real, *a))
        return seen

    return make


def test_a_refused_call_is_retried_once_with_the_error(
    smollm2_engine: Engine, script: Callable[..., _Script]
) -> None:
    seen = script("bad", "good")
    backend = LocalBackend(smollm2_engine)
    c = backend.chat(ASK, tools=[LOOKUP], tool_choice="required", params=PARAMS)
    assert [(t.name, t.arguments) for t in c.tool_calls] == [("lookup", {"code": "good"})]
    assert c.argument_retries == 1 and len(seen.prompts) == 2
    assert "Invalid arguments for tool 'lookup'" not in seen.prompts[0]
    assert "Invalid arguments for tool 'lookup'" in seen.prompts[1]  # the model reads the error
    assert "code" in seen.prompts[1].rsplit("<tool_response>", 1)[1]  # naming the field


def test_a_call_refused_twice_is_not_retried_again(
    smollm2_engine: Engine, script: Callable[..., _Script], tmp_path: Path
) -> None:
    seen = script("bad", "bad", "bad")
    backend = LocalBackend(smollm2_engine, sessions_dir=tmp_path)
    c = backend.chat(ASK, session="s", tools=[LOOKUP], tool_choice="required", params=PARAMS)
    assert c.argument_retries == 1 and len(seen.prompts) == 2  # bounded: one retry
    assert c.tool_calls[0].arguments == {"code": "bad"}  # the caller's validation has the last word
    # the session goes on from the whole conversation the client saw
    follow = [
        *ASK,
        c.message(),
        {"role": "tool", "tool_call_id": c.tool_calls[0].id, "content": "?"},
    ]
    again = backend.chat(follow, session="s", params=PARAMS)
    assert again.argument_retries == 0


def test_a_valid_call_is_decoded_once(
    smollm2_engine: Engine, script: Callable[..., _Script]
) -> None:
    seen = script("good")
    c = LocalBackend(smollm2_engine).chat(
        ASK, tools=[LOOKUP], tool_choice="required", params=PARAMS
    )
    assert c.argument_retries == 0 and len(seen.prompts) == 1
    assert c.tool_calls[0].arguments == {"code": "good"}


async def test_the_server_retries_a_refused_call(
    smollm2_engine: Engine,
    sessions_dir: Path,
    make_app: Callable[..., FastAPI],
    script: Callable[..., _Script],
) -> None:
    seen = script("bad", "good")
    app = make_app(LocalBackend(smollm2_engine, sessions_dir=sessions_dir), max_tokens_limit=256)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as api:
        r = await api.post(
            "/v1/chat/completions",
            json={
                "model": "tiny-llama",
                "messages": ASK,
                "tools": [LOOKUP],
                "tool_choice": "required",
                "max_tokens": 40,
            },
        )
    assert r.status_code == 200, r.text
    call = r.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "lookup" and '"good"' in call["function"]["arguments"]
    assert len(seen.prompts) == 2
