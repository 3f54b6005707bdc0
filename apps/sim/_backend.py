"""Which model the simulated agents share, as picklable data (so Ray workers can build it).

Owns :class:`BackendSpec` and :func:`make_backend`: ``local`` (the long-memory core in this
process; sessions persisted under the run's ``live/sessions`` so checkpoints include them),
``http`` (agentcore's server or any OpenAI-compatible one) and ``scripted`` (a rule-based
stand-in with no weights: :class:`ScriptedPolicy` on the fake backend, for dry runs, tests and
framework-overhead benchmarks). Never runs agents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from pathlib import Path
from typing import Any, Literal

from agentcore.backends import FakeBackend, FakeRequest, ModelBackend, Reply

__all__ = ["BackendSpec", "ScriptedPolicy", "make_backend"]


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    """How to build the shared model backend.

    ``model``: a model name or path for ``local`` (None: the default model), the model id for
    ``http``; ``window``: sliding-window tokens per agent session (``local``; None: the model
    core's default), which bounds each session's memory.
    """

    kind: Literal["local", "http", "scripted"] = "local"
    model: str | None = None
    base_url: str | None = None
    window: int | None = None
    delay_s: float = 0.0  # scripted only: pretend each reply takes this long
    threads: int | None = None  # local only: torch threads
    recall: bool = True  # local only: agents' sessions recall what left their window

    @classmethod
    def parse(
        cls, model: str | None, base_url: str | None, window: int | None = None
    ) -> BackendSpec:
        """From CLI flags: ``--base-url`` selects http; ``--model scripted[:DELAY]`` the
        rule-based stand-in; anything else is a local model name or path."""
        if base_url:
            return cls(kind="http", model=model, base_url=base_url)
        if model is not None and (model == "scripted" or model.startswith("scripted:")):
            delay = float(model.split(":", 1)[1]) if ":" in model else 0.0
            return cls(kind="scripted", delay_s=delay)
        return cls(kind="local", model=None if model in (None, "default") else model, window=window)


def make_backend(spec: BackendSpec, sessions_dir: Path, engine: Any = None) -> ModelBackend:
    """Build the backend ``spec`` describes; local sessions persist in ``sessions_dir``.
    ``engine``: an already loaded :class:`~agentcore.core.engine.Engine` to use (local)."""
    if spec.kind == "scripted":
        return FakeBackend(name="scripted", default=ScriptedPolicy(delay_s=spec.delay_s))
    if spec.kind == "http":
        from agentcore.backends import HttpBackend

        return HttpBackend(spec.base_url or "http://127.0.0.1:8000", model=spec.model)
    from agentcore.backends import LocalBackend
    from agentcore.core.cache import StreamingConfig
    from agentcore.core.engine import Engine

    if engine is None:
        engine = Engine.load(spec.model, threads=spec.threads)
    streaming = None
    if spec.window is not None:
        streaming = StreamingConfig(window=spec.window, chunk_size=min(512, spec.window))
    config = engine.session_config(streaming)
    if spec.recall and config.recall is None:  # per backend: a shared engine stays as it is
        config = dataclasses.replace(config, recall=engine.recall_config())
    backend = LocalBackend(engine, sessions_dir=sessions_dir, session_config=config)
    # The call-or-answer selector is calibrated on user requests; a sim turn is a world
    # observation, which it takes for small talk, so no agent would act (measured: town, 2
    # ticks, 0 of 5 agents acted with it, 5 of 5 without). Agents choose under the grammar.
    backend.tool_selector = None
    return backend


_OBSERVED = re.compile(r"^- \[[^\]]*\] (?:\w+ (?:says|tells you): )?(.+)$", re.M)
_LIST = re.compile(r"^(Here|Places|Agents|Offers to you|Votes|You have|Channels):\s*(.*)$", re.M)


def _fields(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in _LIST.finditer(text)}


def _names(value: str) -> list[str]:
    if not value or value.startswith(("nobody", "none", "nothing")):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


class ScriptedPolicy:
    """A deterministic stand-in for a model: picks a world tool from the turn prompt.

    The choice depends only on the newest turn prompt in the request (never on process
    state), so a resumed run replays exactly. Speech repeats the newest thing the agent
    observed, which makes news spread as it would between talkative agents.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def __call__(self, request: FakeRequest) -> Reply | str:
        if self.delay_s:
            time.sleep(self.delay_s)
        if not request.tools:
            return "Done."
        last = request.messages[-1] if request.messages else {}
        if last.get("role") == "tool":
            return "Done."
        prompt = ""
        heard = ""
        for m in request.messages:
            content = str(m.get("content") or "")
            if m.get("role") == "user" and "Places:" in content:
                prompt = content
                observed = _OBSERVED.findall(content)
                heard = observed[-1] if observed else heard
        if not prompt:
            return "Done."
        digest = hashlib.sha256(f"{request.session}|{prompt}".encode()).digest()
        return self._choose(request.tools, _fields(prompt), heard, digest, request.session or "")

    def _choose(
        self, offered: tuple[str, ...], f: dict[str, str], heard: str, digest: bytes, me: str
    ) -> Reply | str:
        here, places = _names(f.get("Here", "")), _names(f.get("Places", ""))
        offers = re.findall(r"\b(o\d+)\b", f.get("Offers to you", ""))
        inventory = dict(re.findall(r"(\w+)=(\d+)", f.get("You have", "")))
        if "accept" in offered and offers:
            return Reply.call("accept", offer_id=offers[0])
        if "speak" in offered and heard and here:  # pass news on to whoever is here
            return Reply.call("speak", message=heard[:200])
        options: list[Reply] = []
        if "speak" in offered:
            said = heard or f"hello from {me}"
            options.append(Reply.call("speak", message=said[:200]))
        if "tell" in offered and here:
            options.append(Reply.call("tell", to=here[digest[1] % len(here)], message="hi"))
        if "move" in offered and places:  # "Places:" lists the places you are not at
            options.append(Reply.call("move", location=places[digest[2] % len(places)]))
        if "offer" in offered and here:
            goods = [k for k, v in inventory.items() if k != "coins" and int(v) > 0]
            if goods:
                price = 5 + digest[3] % 10
                options.append(Reply.call("offer", to=here[0], item=goods[0], price=price))
        votes = _names(f.get("Votes", ""))
        if "vote" in offered and votes:
            options.append(Reply.call("vote", option=votes[digest[5] % len(votes)]))
        if "wait" in offered:
            options.append(Reply.call("wait"))
        if not options:
            return "I have nothing to do."
        return options[digest[0] % len(options)]
