"""A tiny random-weight Llama: the model core, tested and benchmarked without weight files.

Owns the tiny model's shape (:data:`TINY_LLAMA_CONFIG`: 2 layers, 64 wide, grouped-query
attention, a 258-token byte vocabulary), :func:`tiny_llama` (the Hugging Face model) and
:func:`tiny_engine` (an :class:`~agentcore.core.engine.Engine` on it, with the byte codec or any
codec given). The same seed gives the same weights. Never reads a file, never reaches the
network, and never says anything sensible: its logits are random, its text is noise. torch and
transformers load when a function is called, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import agentcore.core as core
from agentcore.core.codec import ByteCodec, Codec

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

    from agentcore.core.engine import Engine

__all__ = ["TINY_LLAMA_CONFIG", "tiny_engine", "tiny_llama"]

# transformers.LlamaConfig arguments; vocab_size matches ByteCodec (256 bytes + 2 specials)
TINY_LLAMA_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "vocab_size": 258,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_theta": 10000.0,
    }
)


def tiny_llama(seed: int = 0, **overrides: Any) -> LlamaForCausalLM:
    """A random-weight ``LlamaForCausalLM`` of :data:`TINY_LLAMA_CONFIG` (``overrides`` change
    any ``LlamaConfig`` field, e.g. ``num_key_value_heads=4``), in eval mode.

    Seeds torch's global generator with ``seed`` (``torch.manual_seed``) before building it.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**{**TINY_LLAMA_CONFIG, **overrides})
    return LlamaForCausalLM(config).eval()


def tiny_engine(
    seed: int = 0,
    *,
    codec: Codec | None = None,
    model: LlamaForCausalLM | None = None,
    name: str = "tiny-llama",
    **overrides: Any,
) -> Engine:
    """An :class:`~agentcore.core.engine.Engine` on a tiny random Llama: sessions, generation,
    sampling and saved state all work, in milliseconds per token on a CPU.

    ``codec``: :class:`~agentcore.core.codec.ByteCodec` unless given; the model's vocabulary is
    sized to it (pass ``HFCodec(tokenizer)`` to test tool calls and JSON Schema output on a real
    tokenizer). ``model``: wrap this model (from :func:`tiny_llama`; the engine shares its
    weights) instead of building one from ``seed`` and ``overrides``.
    """
    codec = codec if codec is not None else ByteCodec()
    if model is None:
        model = tiny_llama(seed, **{"vocab_size": codec.vocab_size, **overrides})
    elif overrides:
        raise TypeError(
            f"tiny_engine(model=...) takes no config overrides, got {sorted(overrides)}"
        )
    return core.Engine.from_hf(model, codec, name=name)
