"""The policy: what an agent may do, as data.

Owns :class:`Policy` (allowed and denied tools, argument rules, workspace and protected paths,
network hosts, approval rules, budgets, secrets to redact, where the audit log goes),
:class:`Budgets` and :class:`ArgumentRule`, with named presets. A policy is frozen: nothing the
agent reads (a tool result, a file, another agent) can change it. Never evaluates an action
itself: :class:`~agentcore.agent.SafetyFilter` does.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentcore.agent._redact import DEFAULT_SECRET_PATTERNS
from agentcore.tools import SandboxLimits, regex_risk

__all__ = ["ArgumentRule", "Budgets", "Policy"]

_SIDE_EFFECTS = frozenset({"none", "reads", "writes", "network", "executes"})
_SANDBOX_LAYERS = frozenset({"landlock", "mask", "network", "namespaces", "seccomp", "processes"})


class Budgets(BaseModel):
    """Per-run limits; ``None`` means unlimited. ``steps``: model calls; ``tokens``: prompt +
    completion tokens; ``time_s``: wall-clock seconds; ``tool_calls``: tools run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int | None = Field(default=16, ge=1)
    tokens: int | None = Field(default=32_000, ge=1)
    time_s: float | None = Field(default=600.0, gt=0)
    tool_calls: int | None = Field(default=16, ge=0)

    @classmethod
    def unlimited(cls) -> Budgets:
        return cls(steps=None, tokens=None, time_s=None, tool_calls=None)


class ArgumentRule(BaseModel):
    """A rule on one argument of one tool (``tool="*"``: every tool that has the argument).

    ``deny_pattern``: the call is denied when the (string) value matches (searched).
    ``allow_pattern``: the call is denied unless the value matches (full match).
    ``max_length``: the call is denied when the string is longer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: str = "*"
    argument: str
    deny_pattern: str | None = None
    allow_pattern: str | None = None
    max_length: int | None = Field(default=None, ge=0)
    reason: str = ""

    @field_validator("deny_pattern", "allow_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return value


class Policy(BaseModel):
    """Everything the safety filter checks, frozen.

    Tools: ``allow_tools`` (``None``: every registered tool) minus ``deny_tools`` and minus
    tools declaring a side effect in ``deny_side_effects``.
    Paths: string arguments named in ``path_arguments`` must stay inside ``workspace``
    (relative, no ``..``, no escaping symlink) and must not match ``protected_paths`` (globs).
    Network: URL arguments (``url_arguments``, or any URL anywhere in the arguments of a tool
    that declares ``network``) must point at ``allowed_hosts`` (exact host, ``*.domain`` or
    ``host:port``), and every address a tool connects to must belong to them: loopback,
    private, link-local and metadata addresses only when an entry names the address or
    ``allowed_networks`` (CIDR blocks) contains it. Paths and addresses are checked again at
    the moment of the effect (see :mod:`agentcore.agent._effects`).
    Approval: a tool named in ``approval_tools``, or declaring a side effect in
    ``approval_side_effects`` and not in ``no_approval_tools``, runs only after the approval
    callback says so. Secrets: ``secrets`` (exact values) and ``secret_patterns`` are
    redacted from every output; a call whose arguments contain one is denied
    (``block_secret_arguments``). ``audit_path``: the JSONL audit log (default: the agent's
    home ``audit.jsonl``).
    Processes: a tool that declares ``executes`` starts them only through the sandbox
    (:func:`agentcore.tools.run_sandboxed`) unless ``unsandboxed_processes``; children run
    under ``sandbox_limits`` (wall and CPU time also within the run's time budget) and refuse
    to start without the layers in ``sandbox_require`` (``landlock``: the file system confined
    to the workspace; ``mask``: protected paths hidden; ``network``: no network;
    ``seccomp``: the system-call filter; ``namespaces``; ``processes``: a process count the
    kernel enforces, even for a root agent).
    Untrusted steps: a call made while the agent works on a plan step that came from untrusted
    content (a task a tool added after reading a file or a page, a replan after such a
    failure) needs approval when the tool has a side effect in ``untrusted_step_approval``,
    even when the tool is exempt or was approved "always".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_tools: frozenset[str] | None = None
    deny_tools: frozenset[str] = frozenset()
    deny_side_effects: frozenset[str] = frozenset()
    argument_rules: tuple[ArgumentRule, ...] = ()
    workspace: Path | None = None
    path_arguments: frozenset[str] = frozenset(
        {"path", "file", "filename", "file_path", "dir", "directory", "folder", "src", "dst"}
    )
    protected_paths: tuple[str, ...] = (".env", "*.pem", "*.key", ".git/*", ".ssh/*", "id_rsa*")
    url_arguments: frozenset[str] = frozenset({"url", "uri", "endpoint"})
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[str, ...] = ()
    approval_side_effects: frozenset[str] = frozenset({"writes", "executes", "network"})
    approval_tools: frozenset[str] = frozenset()
    no_approval_tools: frozenset[str] = frozenset({"remember"})
    budgets: Budgets = Field(default_factory=Budgets)
    secrets: tuple[str, ...] = ()
    secret_patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS
    block_secret_arguments: bool = True
    audit_path: Path | None = None
    audit_fsync: bool = True
    max_output_chars: int = Field(default=4_000, ge=64)
    sandbox_limits: SandboxLimits = Field(default_factory=SandboxLimits)
    sandbox_require: frozenset[str] = frozenset(
        {"landlock", "mask", "network", "seccomp", "processes"}
    )
    unsandboxed_processes: bool = False
    untrusted_step_approval: frozenset[str] = frozenset({"writes", "executes", "network"})

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"allowed_networks: {item!r} is not a CIDR block ({exc})"
                ) from None
        return value

    @field_validator("secret_patterns")
    @classmethod
    def _safe_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            problem = regex_risk(pattern)
            if problem is not None:
                raise ValueError(f"secret_patterns: {pattern!r} {problem}")
        return value

    @field_validator("sandbox_require")
    @classmethod
    def _known_layers(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - _SANDBOX_LAYERS)
        if unknown:
            raise ValueError(
                f"sandbox_require: unknown layers {unknown}; expected some of "
                f"{sorted(_SANDBOX_LAYERS)}"
            )
        return value

    @field_validator("approval_side_effects", "deny_side_effects", "untrusted_step_approval")
    @classmethod
    def _known_effects(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - _SIDE_EFFECTS)
        if unknown:
            raise ValueError(
                f"unknown side effects {unknown}; expected some of {sorted(_SIDE_EFFECTS)}"
            )
        return value

    @classmethod
    def default(cls, workspace: Path | str | None = None) -> Policy:
        """Every registered tool; writes, network and execution need approval; default
        budgets; files confined to ``workspace``; no network hosts."""
        return cls(workspace=Path(workspace) if workspace is not None else None)

    @classmethod
    def permissive(cls, workspace: Path | str | None = None) -> Policy:
        """Like :meth:`default`, but writes inside the workspace need no approval (network and
        execution still do)."""
        return cls(
            workspace=Path(workspace) if workspace is not None else None,
            approval_side_effects=frozenset({"executes", "network"}),
        )

    @classmethod
    def strict(cls, workspace: Path | str | None = None) -> Policy:
        """Read-only: tools that write, execute or use the network are denied outright, and
        budgets are small."""
        return cls(
            workspace=Path(workspace) if workspace is not None else None,
            deny_side_effects=frozenset({"writes", "executes", "network"}),
            budgets=Budgets(steps=8, tokens=8_000, time_s=120.0, tool_calls=6),
        )

    def with_changes(self, **changes: object) -> Policy:
        """A copy with ``changes`` applied and validated (policies are frozen)."""
        return type(self).model_validate({**self.model_dump(), **changes})
