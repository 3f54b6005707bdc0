"""``bench/retrieval_heads.py``: which heads copy a fact from context, and the default model's."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from agentcore.core.models import SMOLLM2_135M


@pytest.fixture(scope="module")
def heads(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("retrieval_heads")


def test_a_copy_is_the_same_token_inside_the_fact(heads: ModuleType) -> None:
    """Position 1 ("42") is in the fact, position 3 is the same token outside it, position 2 is
    another token in the fact; the reply token at 5 is "42" and at 6 is "north"."""
    pieces = ["the", "42", "north", "42", "is", "42", "north"]
    in_fact = [False, True, True, False, False, False, False]
    top = torch.tensor(
        [
            [1, 2],  # copies both
            [3, 2],  # "42" from outside the fact: only "north" counts
            [2, 1],  # in the fact, the wrong tokens: nothing
        ]
    )
    assert heads.copy_hits(top, [5, 6], in_fact, pieces).tolist() == [2.0, 1.0, 0.0]


def test_only_facts_that_state_an_answer_are_spans(heads: ModuleType) -> None:
    prompt = "Intro. The code of Ann is 4471. More text. Bob lives in Leeds. End."
    facts = ["The code of Ann is 4471.", "Bob lives in Leeds.", "Not in the prompt 4471."]
    spans = heads.fact_spans(prompt, facts, ["4471"])
    assert [prompt[a:b] for a, b in spans] == ["The code of Ann is 4471."]


def test_heads_are_ranked_best_first(heads: ModuleType) -> None:
    scores = torch.tensor([[0.1, 0.7], [0.4, 0.0]])
    assert heads.ranked(scores) == [
        (pytest.approx(0.7), 0, 1),
        (pytest.approx(0.4), 1, 0),
        (pytest.approx(0.1), 0, 0),
        (0.0, 1, 1),
    ]


@pytest.mark.slow
def test_the_default_models_read_heads_are_its_best_copiers(heads: ModuleType) -> None:
    """On the first dev document of single facts (three questions), the five heads that copy
    most are the model card's ``recall_read_heads`` (found on 6 documents per family)."""
    from recall_real import ASK, build, document_messages  # bench/ is on sys.path meanwhile

    from agentcore.core.loader import load_model

    loaded = load_model(SMOLLM2_135M.alias, dtype="float32")
    loaded.hf_model.set_attn_implementation("eager")
    profiler = heads.Profiler(loaded.hf_model, loaded.tokenizer)
    tok = loaded.tokenizer
    paras = heads.paragraphs((heads.shared_data() / heads.BOOKS["dev"]).read_text(encoding="utf-8"))
    docs = build(
        "single",
        "dev",
        8192,
        0,
        2048,
        lambda t: len(tok.encode(t, add_special_tokens=False)),
        paras,
    )
    for q in docs.case.questions:
        messages = [*document_messages(docs.short), {"role": "user", "content": q.text + ASK}]
        assert profiler.question(messages, q.answers, [n.text for n in docs.case.needles]) > 0
    best = {(layer, head) for _, layer, head in heads.ranked(profiler.scores())[:5]}
    assert best == set(SMOLLM2_135M.recall_read_heads)
