"""The safety filter: the policy checked on every action before it runs.

Owns :class:`BudgetMeter` (steps, tokens, time and tool calls used by one run),
:class:`Verdict` and :class:`SafetyFilter`, which narrows the tools offered to the model,
checks each call (tool allow/deny lists, argument rules, workspace paths, protected files,
network hosts, secrets in arguments, the tool-call budget), asks the approval callback when the
policy wants a human, redacts outputs and writes every verdict to the audit log. Its inputs
are the frozen policy, the registry and the meter: nothing the agent reads can widen them.
Never runs a tool.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import httpx

from agentcore.agent._audit import AuditLog
from agentcore.agent._events import ApprovalDecision, ApprovalRequest
from agentcore.agent._policy import Policy
from agentcore.agent._redact import Redactor
from agentcore.tools import ToolArgumentError, ToolRegistry
from agentcore.tools.builtin import HostAllowlist, Workspace, WorkspaceError

__all__ = ["ApprovalCallback", "BudgetMeter", "SafetyFilter", "Verdict"]

ApprovalCallback = Callable[[ApprovalRequest], ApprovalDecision | Awaitable[ApprovalDecision]]
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class BudgetMeter:
    """What one run has used of its :class:`~agentcore.agent.Budgets`."""

    def __init__(self, policy: Policy, clock: Callable[[], float] = time.monotonic) -> None:
        self.budgets = policy.budgets
        self.clock = clock
        self.started = clock()
        self.steps = 0
        self.tokens = 0
        self.tool_calls = 0

    def elapsed(self) -> float:
        return self.clock() - self.started

    def exhausted(self) -> str | None:
        """The first run budget used up (``"budget.steps"``...), or None."""
        b = self.budgets
        if b.steps is not None and self.steps >= b.steps:
            return "budget.steps"
        if b.tokens is not None and self.tokens >= b.tokens:
            return "budget.tokens"
        if b.time_s is not None and self.elapsed() >= b.time_s:
            return "budget.time"
        return None

    def tool_calls_left(self) -> int | None:
        if self.budgets.tool_calls is None:
            return None
        return max(0, self.budgets.tool_calls - self.tool_calls)

    def time_left(self) -> float | None:
        if self.budgets.time_s is None:
            return None
        return max(0.0, self.budgets.time_s - self.elapsed())


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The filter's answer for one action. ``needs_approval`` is not final: the caller asks
    the human through :meth:`SafetyFilter.ask_approval`."""

    decision: Literal["allow", "deny", "needs_approval"]
    rule: str
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


class SafetyFilter:
    """Checks actions against one :class:`Policy` for one agent, writing every verdict to
    ``audit`` (arguments redacted)."""

    def __init__(
        self, policy: Policy, registry: ToolRegistry, *, agent: str, audit: AuditLog
    ) -> None:
        self.policy = policy
        self.registry = registry
        self.agent = agent
        self.audit = audit
        self.redactor = Redactor(policy.secret_patterns, policy.secrets)
        self.hosts = HostAllowlist(policy.allowed_hosts) if policy.allowed_hosts else None
        self._workspace: Workspace | None = None
        self._always: set[str] = set()  # tools a human approved with "always" (this process)
        self._rules = [(r, re.compile(r.deny_pattern) if r.deny_pattern else None,
                        re.compile(r.allow_pattern) if r.allow_pattern else None)
                       for r in policy.argument_rules]  # fmt: skip

    # -- what may be offered ------------------------------------------------------------

    def tool_allowed(self, name: str) -> Verdict:
        """Whether the policy allows tool ``name`` at all (lists and side effects)."""
        p = self.policy
        if name not in self.registry:
            return Verdict("deny", "unknown_tool", f"no tool named {name!r} is registered")
        if name in p.deny_tools:
            return Verdict("deny", "deny_tools", f"tool {name!r} is in the policy's deny_tools")
        if p.allow_tools is not None and name not in p.allow_tools:
            return Verdict("deny", "allow_tools", f"tool {name!r} is not in allow_tools")
        effects = {e.value for e in self.registry.get(name).side_effects}
        banned = sorted(effects & p.deny_side_effects)
        if banned:
            return Verdict("deny", "deny_side_effects", f"tool {name!r} {', '.join(banned)}")
        return Verdict("allow", "allow_tools", f"tool {name!r} is allowed")

    def permitted_tools(self, meter: BudgetMeter) -> list[str]:
        """The tools the model may be offered now (none once the tool-call budget is spent)."""
        if meter.tool_calls_left() == 0:
            return []
        return [n for n in self.registry.names() if self.tool_allowed(n).allowed]

    # -- checking one call -----------------------------------------------------------------

    def check_call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        meter: BudgetMeter,
        offered: list[str] | None = None,
    ) -> Verdict:
        """Every rule, in order; the first that fails decides."""
        verdict = self.tool_allowed(name)
        if not verdict.allowed:
            return verdict
        if meter.tool_calls_left() == 0:
            return Verdict(
                "deny",
                "budget.tool_calls",
                f"the run's {meter.budgets.tool_calls} tool calls are used",
            )
        if offered is not None and name not in offered:
            return Verdict("deny", "not_offered", f"tool {name!r} was not offered this turn")
        try:
            self.registry.validate(name, dict(arguments))
        except ToolArgumentError as exc:
            return Verdict("deny", "arguments.schema", str(exc))
        for check in (self._argument_rules, self._paths, self._network, self._secrets):
            found = check(name, arguments)
            if found is not None:
                return found
        tool = self.registry.get(name)
        effects = {e.value for e in tool.side_effects}
        p = self.policy
        gated = sorted(effects & p.approval_side_effects)
        if name in p.approval_tools or (gated and name not in p.no_approval_tools):
            if name in self._always:
                return Verdict("allow", "approval.always", f"a human approved {name!r} always")
            why = f"tool {name!r} " + (
                f"has side effects {', '.join(gated)}" if gated else "is in approval_tools"
            )
            return Verdict("needs_approval", "approval", why)
        return Verdict("allow", "policy", f"tool {name!r} passed every rule")

    def _argument_rules(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        for rule, deny, allow in self._rules:
            if rule.tool not in ("*", name) or rule.argument not in arguments:
                continue
            value = arguments[rule.argument]
            text = value if isinstance(value, str) else str(value)
            why = f" ({rule.reason})" if rule.reason else ""
            if deny is not None and deny.search(text):
                return Verdict(
                    "deny",
                    f"argument_rules.{rule.argument}",
                    f"{name}.{rule.argument} matches the denied pattern {rule.deny_pattern!r}{why}",
                )
            if allow is not None and not allow.fullmatch(text):
                return Verdict(
                    "deny",
                    f"argument_rules.{rule.argument}",
                    f"{name}.{rule.argument} does not match {rule.allow_pattern!r}{why}",
                )
            if rule.max_length is not None and len(text) > rule.max_length:
                return Verdict(
                    "deny",
                    f"argument_rules.{rule.argument}",
                    f"{name}.{rule.argument} is {len(text)} characters; max {rule.max_length}{why}",
                )
        return None

    def _workspace_root(self) -> Workspace | None:
        if self._workspace is None and self.policy.workspace is not None:
            self._workspace = Workspace(self.policy.workspace)
        return self._workspace

    def _paths(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        for key, value in arguments.items():
            if key not in self.policy.path_arguments or not isinstance(value, str):
                continue
            workspace = self._workspace_root()
            if workspace is None:
                return Verdict(
                    "deny", "workspace", f"{name}.{key}: no workspace is configured for paths"
                )
            try:
                real = workspace.resolve(value, tool=name)
            except WorkspaceError as exc:
                return Verdict("deny", "workspace", f"{name}.{key}: {exc}")
            rel = workspace.relative(real)
            for pattern in self.policy.protected_paths:
                parts = rel.split("/")
                if fnmatch.fnmatch(rel, pattern) or any(fnmatch.fnmatch(p, pattern) for p in parts):
                    return Verdict(
                        "deny",
                        "protected_paths",
                        f"{name}.{key}: {rel!r} matches the protected pattern {pattern!r}",
                    )
        return None

    def _network(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        networked = any(e.value == "network" for e in self.registry.get(name).side_effects)
        for key, value in arguments.items():
            if not isinstance(value, str):
                continue
            is_url = key in self.policy.url_arguments or (networked and _URL.match(value))
            if not is_url:
                continue
            try:
                url = httpx.URL(value)
            except (httpx.InvalidURL, ValueError) as exc:
                return Verdict("deny", "network", f"{name}.{key}: not a valid URL ({exc})")
            if self.hosts is None or not self.hosts.allows(url):
                allowed = ", ".join(self.policy.allowed_hosts) or "(none)"
                return Verdict(
                    "deny",
                    "network",
                    f"{name}.{key}: host {url.host!r} is not allowed; allowed hosts: {allowed}",
                )
        return None

    def _secrets(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        if not self.policy.block_secret_arguments:
            return None
        for key, value in arguments.items():
            text = value if isinstance(value, str) else repr(value)
            found = self.redactor.find(text)
            if found:
                return Verdict(
                    "deny",
                    "secrets",
                    f"{name}.{key} contains {len(found)} secret(s); they never leave the agent",
                )
        return None

    # -- approval --------------------------------------------------------------------------

    async def ask_approval(
        self, request: ApprovalRequest, callback: ApprovalCallback | None
    ) -> Verdict:
        """Ask the human; no callback means refused. ``always`` is remembered for the tool."""
        if callback is None:
            return Verdict(
                "deny", "approval.no_callback", f"{request.reason}; no approval callback is set"
            )
        try:
            answer: Any = callback(request)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:  # a failing callback is a refusal, never an approval
            return Verdict("deny", "approval.error", f"the approval callback failed: {exc!r}")
        if answer == "always":
            self._always.add(request.tool)
            return Verdict("allow", "approval.always", f"approved always: {request.reason}")
        if answer == "once":
            return Verdict("allow", "approval.once", f"approved once: {request.reason}")
        return Verdict("deny", "approval.refused", f"a human refused: {request.reason}")

    # -- audit and redaction -----------------------------------------------------------------

    def record(
        self,
        *,
        run_id: str,
        action: str,
        decision: str,
        rule: str,
        reason: str,
        call_id: str | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one verdict to the audit log (arguments redacted)."""
        self.audit.append(
            {
                "agent": self.agent,
                "run_id": run_id,
                "call_id": call_id,
                "action": action,
                "decision": decision,
                "rule": rule,
                "reason": self.redact(reason),
                "arguments": self.redactor.redact_value(dict(arguments or {})),
            }
        )

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)[0]
