"""100 tool-calling requests over 5 tools on the real default model: every constrained call is valid."""

from __future__ import annotations

import random
from typing import Annotated, Any

import pytest
from pydantic import Field

from agentcore.core.constraint import GrammarConstraint
from agentcore.core.sampling import SamplingParams
from agentcore.tools import (
    ToolCall,
    ToolRegistry,
    build_action_grammar,
    parse_action,
    render_tools_prompt,
    tool,
)

pytestmark = pytest.mark.slow

Short = Annotated[str, Field(min_length=1, max_length=60)]


@tool
def book_table(restaurant: Short, people: Annotated[int, Field(ge=1, le=20)], time: Short) -> str:
    """Reserve a table at a restaurant."""
    return "booked"


@tool
def convert_currency(amount: Annotated[float, Field(ge=0)], source: Short, target: Short) -> str:
    """Convert an amount of money between currencies (ISO codes such as EUR, USD)."""
    return "converted"


@tool
def translate(text: Short, language: Short) -> str:
    """Translate text into another language."""
    return "translated"


@tool
def play_music(artist: Short, shuffle: bool = False) -> str:
    """Play songs by an artist."""
    return "playing"


@tool
def create_note(title: Short, tags: Annotated[list[Short], Field(max_length=3)]) -> str:
    """Create a note with a title and up to three tags."""
    return "created"


def requests(n: int) -> list[str]:
    rng = random.Random(11)
    places = ["Chez Marie", "Luigi's", "The Golden Fork", "Sakura"]
    forms = [
        lambda: (
            f"Book a table at {rng.choice(places)} for {rng.randint(2, 8)} people at {rng.randint(6, 9)} pm."
        ),
        lambda: f"How much is {rng.randint(5, 500)} euros in dollars?",
        lambda: (
            f"Translate '{rng.choice(['good morning', 'thank you', 'where is the station'])}' into {rng.choice(['French', 'German', 'Spanish'])}."
        ),
        lambda: f"Play some {rng.choice(['Beatles', 'Miles Davis', 'Adele', 'Bach'])}.",
        lambda: (
            f"Make a note called '{rng.choice(['groceries', 'ideas', 'trip'])}' tagged {rng.choice(['home', 'work'])}."
        ),
    ]
    return [forms[i % len(forms)]() for i in range(n)]


@pytest.mark.timeout(1800)  # ~100 short generations: minutes on 2 shared CPU cores
def test_every_constrained_call_parses_and_validates(real_engine: Any) -> None:
    registry = ToolRegistry([book_table, convert_currency, translate, play_music, create_note])
    tools = list(registry)
    grammar = build_action_grammar(tools, "required")
    base = real_engine.new_session()
    system = render_tools_prompt(tools, "required")
    base.append_messages([{"role": "system", "content": system}], add_generation_prompt=False)
    stops = sorted(real_engine.codec.stop_ids)
    used: set[str] = set()
    for text in requests(100):
        s = base.fork()
        s.append_messages([{"role": "user", "content": text}])
        constraint = GrammarConstraint.from_grammar(
            real_engine.codec.hf,
            grammar,
            vocab_size=real_engine.core.dims.vocab,
            eos_token_ids=stops,
        )
        out = s.generate(SamplingParams(max_tokens=256), constraint=constraint)
        action = parse_action(out.text)
        assert isinstance(action, ToolCall), (text, out.text)
        registry.validate(action.name, action.arguments)  # raises with the field if invalid
        used.add(action.name)
    assert len(used) >= 3  # the model does pick among the tools, not one fixed answer
