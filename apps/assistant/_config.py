"""The assistant's configuration: which model, which server, which session, which look.

Owns :class:`AssistantConfig` (a frozen dataclass with the ``default()`` preset), the command
line that builds one (:func:`parse_args`) and the folders the assistant keeps its state in.
Never loads a model or opens a store: that is the adapter's job.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from agentcore import _tracing as tracing
from agentcore.core.models import AGENT_ALIAS
from agentcore.paths import data_home, validate_name

__all__ = ["AssistantConfig", "ThemeName", "build_parser", "parse_args"]

ThemeName = Literal["light", "dark"]
THEMES: dict[str, str] = {"light": "textual-light", "dark": "textual-dark"}


@dataclasses.dataclass(frozen=True)
class AssistantConfig:
    """What one run of the assistant talks to and where it keeps its state.

    ``model``: a model alias (default: ``AGENT_ALIAS``, the 0.5B model; ``"default"``: the faster
    SmolLM2-135M), a .gguf file, a model folder or a hub id (ignored with
    ``base_url``). ``base_url``: an OpenAI-compatible server to use instead of the local
    model. ``session``: the conversation to open (created when new; default: the last one
    used). ``agent``: the agent's name (its memories and lessons are shared by all its
    sessions). ``theme``: ``"light"`` or ``"dark"`` (default: the last one chosen, else dark).
    ``workspace``: the folder the file tools may use. ``home``: where the assistant keeps its
    state (default ``data_home()/"assistant"``). ``planner``: ``"auto"`` plans goals that read
    as several steps; ``"off"`` never plans. ``threads``: CPU threads for the local model
    (default: PyTorch's own thread pool). ``recall``: the local model's sessions keep what leaves
    their window and recall the most relevant blocks (exact recall of evicted context).
    ``memory_url``: keep long-term memory on this chromadb server (``chroma run``) instead of
    the embedded store under ``home``, e.g. to share it with agents on other machines.
    ``trace``: ``"otlp"`` sends OpenTelemetry spans to ``$OTEL_EXPORTER_OTLP_ENDPOINT`` (the
    console exporter would draw over the screen; docs/observability.md).
    """

    model: str = AGENT_ALIAS
    base_url: str | None = None
    session: str | None = None
    agent: str = "assistant"
    theme: ThemeName | None = None
    workspace: Path | None = None
    home: Path | None = None
    planner: Literal["auto", "off"] = "auto"
    threads: int | None = None
    recall: bool = True
    memory_url: str | None = None
    trace: Literal["otlp"] | None = None

    def __post_init__(self) -> None:
        validate_name(self.agent, "agent")
        if self.session is not None:
            validate_name(self.session, "session")
        if self.theme is not None and self.theme not in THEMES:
            raise ValueError(f"theme={self.theme!r}: expected 'light' or 'dark'")
        if self.planner not in ("auto", "off"):
            raise ValueError(f"planner={self.planner!r}: expected 'auto' or 'off'")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads={self.threads!r}: expected an integer >= 1")
        if not self.model.strip():
            raise ValueError(f"model={self.model!r}: expected 'default', a path or a hub id")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url={self.base_url!r}: expected http://host:port or https://host:port"
            )
        if self.memory_url is not None and not self.memory_url.startswith(("http://", "https://")):
            raise ValueError(
                f"memory_url={self.memory_url!r}: expected http://host:port or "
                "https://host:port (a chromadb server)"
            )

    @classmethod
    def default(cls) -> AssistantConfig:
        """The local default model, the ``assistant`` agent, the last session and theme."""
        return cls()

    @property
    def root(self) -> Path:
        """``<home>/<agent>``: every file this agent's assistant writes lives below it."""
        return (self.home or data_home() / "assistant") / self.agent

    @property
    def workspace_dir(self) -> Path:
        return self.workspace or self.root / "workspace"

    @property
    def memory_dir(self) -> Path:
        return self.root / "memory"

    @property
    def model_sessions_dir(self) -> Path:
        return self.root / "model-sessions"

    def session_home(self, session: str) -> Path:
        """The agent home of one conversation (its history, plan and state)."""
        return self.root / "sessions" / validate_name(session, "session")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentcore chat",
        description="The agentcore terminal assistant: chat with an agent on a local model.",
    )
    p.add_argument(
        "--model",
        default=AGENT_ALIAS,
        help=f"a model alias (default {AGENT_ALIAS}; 'default' is the faster SmolLM2-135M), a "
        ".gguf file, a folder, a hub id",
    )
    p.add_argument("--base-url", default=None, help="an OpenAI-compatible server to use instead")
    p.add_argument("--session", default=None, help="conversation to open or create")
    p.add_argument("--agent", default="assistant", help="agent name (memories are per agent)")
    p.add_argument("--theme", choices=sorted(THEMES), default=None, help="light or dark")
    p.add_argument("--workspace", type=Path, default=None, help="folder for the file tools")
    p.add_argument(
        "--planner",
        choices=("auto", "off"),
        default="auto",
        help="auto: plan goals that read as several steps (default); off: never plan",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the local model (default: PyTorch's own, one per core)",
    )
    p.add_argument(
        "--recall",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the local model recalls context that left its window (on by default; "
        "--no-recall turns it off; docs/long-memory.md)",
    )
    p.add_argument(
        "--memory-url",
        default=None,
        metavar="URL",
        help="keep long-term memory on this chromadb server (http://host:port, started with "
        "`chroma run`) instead of the embedded store (docs/scaling.md)",
    )
    tracing.add_trace_argument(p, choices=("otlp",))
    return p


def parse_args(argv: Sequence[str] | None = None) -> AssistantConfig:
    """The configuration a command line asks for (argparse exits with a message on errors)."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return AssistantConfig(
            model=ns.model,
            base_url=ns.base_url,
            session=ns.session,
            agent=ns.agent,
            theme=ns.theme,
            workspace=ns.workspace,
            planner=ns.planner,
            threads=ns.threads,
            recall=ns.recall,
            memory_url=ns.memory_url,
            trace=ns.trace,
        )
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
