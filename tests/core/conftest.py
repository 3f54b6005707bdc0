"""Fixtures for model-core tests: tiny random-weight Llama-family models (no files, no network).

Also an independent, literal StreamingLLM reference built from Hugging Face modules: it keeps a
Python list of (pre-RoPE key, value) per layer, evicts to sinks + window and at every token
re-rotates every cached key at its *cache* position with transformers' own
``apply_rotary_pos_emb``. Slow and simple on purpose: the fast cache must match it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb


def tiny_qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=258,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # random biases so the bias path is exercised
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    return model


NovelChat = Callable[[Any, str, int, str, int, Callable[[int, int], bool]], list[dict[str, str]]]


@pytest.fixture(scope="session")
def novel_chat() -> NovelChat:
    """``novel_chat(codec, book, offset, fact, tokens, at)``: a chat that reads ~``tokens`` of
    a shared book (``AGENTCORE_DATA`` or ``../shared/data``) from character ``offset``, with
    ``fact`` told in passing after the first paragraph for which ``at(index, tokens_before)``
    holds, then a short reply. Skips the test where the book is missing."""

    def build(
        codec: Any, book: str, offset: int, fact: str, tokens: int, at: Callable[[int, int], bool]
    ) -> list[dict[str, str]]:
        data = (
            os.environ.get("AGENTCORE_DATA")
            or Path(__file__).resolve().parents[3] / "shared" / "data"
        )
        path = Path(data) / book
        if not path.is_file():
            pytest.skip(f"no shared book at {path}")
        text = path.read_text(encoding="utf-8")[offset:]
        paras = [" ".join(p.split()) for p in text.split("\n\n") if len(p.strip()) > 40]
        doc: list[str] = []
        n, told = 0, False
        for i, p in enumerate(paras):
            here = not told and at(i, n)
            doc.append(p + (" " + fact if here else ""))
            told = told or here
            n += len(codec.encode(p))
            if n > tokens:
                break
        return [
            {
                "role": "user",
                "content": "Read this passage; I will ask about it.\n\n" + "\n\n".join(doc),
            },
            {"role": "assistant", "content": "I have read it."},
        ]

    return build


@torch.no_grad()
def literal_streaming_logits(hf: Any, ids: list[int], n_sink: int, window: int) -> torch.Tensor:
    base = hf.model
    cfg = hf.config
    n_layers = cfg.num_hidden_layers
    hq, hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    d = cfg.hidden_size // hq
    caches: list[list[tuple[int, torch.Tensor, torch.Tensor]]] = [[] for _ in range(n_layers)]
    out = []
    for p, tok in enumerate(ids):
        x = base.embed_tokens(torch.tensor([[tok]]))
        for li, layer in enumerate(base.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(1, 1, hq, d).transpose(1, 2)
            k = attn.k_proj(h).view(1, 1, hkv, d).transpose(1, 2)
            v = attn.v_proj(h).view(1, 1, hkv, d).transpose(1, 2)
            entries = caches[li]
            entries.append((p, k, v))
            # evict: keep the first n_sink stream tokens and the last `window`
            keep = [e for e in entries if e[0] < n_sink or e[0] > p - window]
            caches[li] = keep
            n = len(keep)
            positions = torch.arange(n)[None]
            cos, sin = base.rotary_emb(x, positions)
            ks = torch.cat([e[1] for e in keep], dim=2)  # [1,Hkv,n,D]
            vs = torch.cat([e[2] for e in keep], dim=2)
            q_rot, _ = apply_rotary_pos_emb(q, q, cos[:, -1:], sin[:, -1:])
            _, k_rot = apply_rotary_pos_emb(ks, ks, cos, sin)
            k_rep = k_rot.repeat_interleave(hq // hkv, dim=1)
            v_rep = vs.repeat_interleave(hq // hkv, dim=1)
            w = torch.softmax((q_rot @ k_rep.transpose(-1, -2)) * d**-0.5, dim=-1)
            a = (w @ v_rep).transpose(1, 2).reshape(1, 1, hq * d)
            x = x + attn.o_proj(a)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        out.append(hf.lm_head(base.norm(x))[0, -1])
    return torch.stack(out)


@pytest.fixture(scope="session")
def literal_reference() -> Any:
    return literal_streaming_logits


@pytest.fixture(scope="session")
def make_llama(tiny_factory: Any) -> Any:
    return tiny_factory


@pytest.fixture(scope="session")
def make_qwen2() -> Any:
    return tiny_qwen2
