"""``/v1/completions`` on the tiny engine: echo + logprobs against a Hugging Face forward."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
import torch
from transformers import LlamaForCausalLM

from agentcore.core.engine import Engine
from agentcore.core.sampling import Sampler


def hf_logprobs(hf: LlamaForCausalLM, ids: list[int]) -> torch.Tensor:
    """log p(ids[i] | ids[:i]) for i >= 1 under the full-attention HF model: ``[N-1]``."""
    with torch.no_grad():
        logits = hf(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


async def complete(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_echo_logprobs_score_the_prompt(
    api: httpx.AsyncClient, tiny_hf: LlamaForCausalLM, tiny_engine: Engine
) -> None:
    prompt = "The quick brown fox jumps over the lazy dog."
    out = await complete(api, prompt=prompt, echo=True, logprobs=3, max_tokens=0)
    choice = out["choices"][0]
    assert out["object"] == "text_completion" and choice["text"] == prompt
    lp = choice["logprobs"]
    ids = tiny_engine.codec.encode(prompt)
    assert lp["tokens"] == [tiny_engine.codec.decode([i]) for i in ids]
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    expected = hf_logprobs(tiny_hf, ids)
    got = torch.tensor(lp["token_logprobs"][1:])
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    for token, value, top in zip(
        lp["tokens"][1:], got.tolist(), lp["top_logprobs"][1:], strict=True
    ):
        assert len(top) <= 3 and max(top.values()) >= value - 1e-6
        if token in top:
            assert math.isclose(top[token], value, abs_tol=1e-5)
    assert lp["text_offset"][:3] == [0, 1, 2]
    assert out["usage"]["prompt_tokens"] == len(ids) and out["usage"]["completion_tokens"] == 0


async def test_generated_logprobs_match_the_model(
    api: httpx.AsyncClient, tiny_hf: LlamaForCausalLM, tiny_engine: Engine
) -> None:
    prompt = "Once upon a time"
    out = await complete(api, prompt=prompt, echo=True, logprobs=1, max_tokens=6, ignore_eos=True)
    choice = out["choices"][0]
    assert choice["text"].startswith(prompt) and choice["finish_reason"] == "length"
    lp = choice["logprobs"]
    n_prompt = len(tiny_engine.codec.encode(prompt))
    assert len(lp["tokens"]) == n_prompt + 6 == out["usage"]["total_tokens"]
    # greedy decoding with the Hugging Face model as the reference
    ids = tiny_engine.codec.encode(prompt)
    expected_lp = []
    for _ in range(6):
        with torch.no_grad():
            logp = torch.log_softmax(tiny_hf(torch.tensor([ids])).logits[0, -1].float(), -1)
        ids.append(int(torch.argmax(logp)))
        expected_lp.append(float(logp[ids[-1]]))
    codec = tiny_engine.codec
    assert lp["tokens"][n_prompt:] == [codec.decode([i]) for i in ids[n_prompt:]]
    expected = torch.tensor(expected_lp)
    got = torch.tensor(lp["token_logprobs"][n_prompt:])
    assert torch.allclose(got, expected, atol=1e-4)
    for value, top in zip(got.tolist(), lp["top_logprobs"][n_prompt:], strict=True):
        assert math.isclose(max(top.values()), value, abs_tol=1e-5)
    plain = await complete(api, prompt=prompt, max_tokens=6, ignore_eos=True)
    assert plain["choices"][0]["text"] == choice["text"][len(prompt) :]
    assert plain["choices"][0]["logprobs"] is None


async def test_session_completions_continue_the_stream(
    api: httpx.AsyncClient, tiny_hf: LlamaForCausalLM, tiny_engine: Engine
) -> None:
    first = await complete(api, prompt="abc", session="doc", max_tokens=0)
    assert first["usage"]["session_tokens"] == 3
    so_far = "abc"
    # resending the whole text appends only the new suffix, scored in context
    second = await complete(
        api, prompt=so_far + "xyz", session="doc", echo=True, logprobs=0, max_tokens=0
    )
    choice = second["choices"][0]
    assert choice["text"] == "xyz" and second["usage"]["prompt_tokens"] == 3
    assert second["usage"]["session_tokens"] == len(tiny_engine.codec.encode(so_far)) + 3
    ids = tiny_engine.codec.encode(so_far + "xyz")
    expected = hf_logprobs(tiny_hf, ids)[-3:]
    assert torch.allclose(torch.tensor(choice["logprobs"]["token_logprobs"]), expected, atol=1e-4)
    assert choice["logprobs"]["top_logprobs"] is None  # logprobs=0: no alternatives


async def test_streamed_completion_and_token_id_prompts(
    api: httpx.AsyncClient, tiny_engine: Engine
) -> None:
    body = {"prompt": "Hello", "max_tokens": 8, "ignore_eos": True, "echo": True}
    plain = await complete(api, **body)
    r = await api.post(
        "/v1/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    lines = [line for line in r.text.split("\n") if line]
    assert lines[-1] == "data: [DONE]"
    import json

    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert text == plain["choices"][0]["text"]
    assert chunks[-1]["usage"] == plain["usage"]
    ids = tiny_engine.codec.encode("Hello")
    by_ids = await complete(api, prompt=ids, max_tokens=8, ignore_eos=True)
    assert by_ids["choices"][0]["text"] == plain["choices"][0]["text"][len("Hello") :]


async def test_prompts_longer_than_chunk_and_window(
    api: httpx.AsyncClient, tiny_engine: Engine
) -> None:
    budget = tiny_engine.default_streaming().budget
    text = ("a long prompt that streams through the cache in chunks. " * 80)[: budget + 700]
    out = await complete(api, prompt=text, session="long", max_tokens=2, ignore_eos=True)
    assert out["usage"]["prompt_tokens"] == len(text)
    info = (await api.get("/v1/sessions/long")).json()
    assert info["tokens"] == len(text) + 2
    assert info["cached_tokens"] <= budget


async def test_max_tokens_cutting_a_character_leaves_no_replacement_char(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/v1/completions`` holds back the bytes of a character ``max_tokens`` cut, streamed
    or not (the tiny byte-level model is made to write "東京東京")."""
    forced = list("東京東京".encode())
    picked: list[int] = []

    def pick(self: Sampler, logits: torch.Tensor, *args: Any, **kwargs: Any) -> int:
        picked.append(forced[len(picked) % len(forced)])
        return picked[-1]

    monkeypatch.setattr(Sampler, "pick", pick)
    out = await complete(api, prompt="x", max_tokens=4)
    assert out["choices"][0]["text"] == "東"
    assert out["choices"][0]["finish_reason"] == "length"
    picked.clear()
    r = await api.post("/v1/completions", json={"prompt": "x", "max_tokens": 5, "stream": True})
    lines = [x[6:] for x in r.text.split("\n") if x.startswith("data: ") and x != "data: [DONE]"]
    text = "".join(json.loads(x)["choices"][0]["text"] for x in lines if json.loads(x)["choices"])
    assert text == "東"


@pytest.mark.slow
async def test_real_model_completion_cut_mid_character(real_engine: Engine, make_app: Any) -> None:
    """The reported request: SmolLM2 continues the prompt with 東京..., and token 12 is the
    first byte of a character."""
    from agentcore.backends import LocalBackend

    app = make_app(LocalBackend(real_engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://real") as client:
        prompt = "東京 東京 東京 東京 東京 東京 東京"
        out = await complete(client, prompt=prompt, max_tokens=12, temperature=0)
    text = out["choices"][0]["text"]
    assert out["usage"]["completion_tokens"] == 12
    assert "\ufffd" not in text and text.startswith(" 東京")
