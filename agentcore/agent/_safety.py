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
import inspect
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from agentcore.agent._audit import AuditLog
from agentcore.agent._effects import CallGuard, NetRules, PathRules, iter_strings, iter_urls
from agentcore.agent._events import ApprovalDecision, ApprovalRequest
from agentcore.agent._policy import Policy
from agentcore.agent._redact import Redactor
from agentcore.tools import SideEffect, ToolArgumentError, ToolRegistry
from agentcore.tools.builtin import Workspace, WorkspaceError

__all__ = ["ApprovalCallback", "BudgetMeter", "SafetyFilter", "Verdict"]

log = logging.getLogger(__name__)

ApprovalCallback = Callable[[ApprovalRequest], ApprovalDecision | Awaitable[ApprovalDecision]]


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
        self,
        policy: Policy,
        registry: ToolRegistry,
        *,
        agent: str,
        audit: AuditLog,
        home: Path | None = None,
        resources: Iterable[Path] = (),
    ) -> None:
        self.policy = policy
        self.registry = registry
        self.agent = agent
        self.audit = audit
        self.redactor = Redactor(policy.secret_patterns, policy.secrets)
        self.paths = PathRules(policy, audit=audit.path, home=home, resources=resources)
        self.net = NetRules(policy)
        self._workspace: Workspace | None = None
        # exemptions and "always" approvals belong to tool objects, never to names: a tool
        # imported later (or from an MCP server) under a built-in's name gets none of them
        self._exempt: dict[str, int] = {
            t.name: id(t)
            for t in registry
            if t.name in policy.no_approval_tools and t.source == "local"
        }
        self._always: set[tuple[str, int]] = set()
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
        *,
        untrusted_step: str | None = None,
    ) -> Verdict:
        """Every rule, in order; the first that fails decides. The reason is redacted (it may
        quote the model's arguments). ``untrusted_step``: the untrusted source of the plan
        step being worked on, when it came from one: side effects in the policy's
        ``untrusted_step_approval`` then need a human, exemptions and "always" approvals
        notwithstanding."""
        verdict = self._check_call(name, arguments, meter, offered, untrusted_step)
        return dataclasses.replace(verdict, reason=self.redact(verdict.reason))

    def recheck(self, name: str, arguments: Mapping[str, Any]) -> Verdict:
        """Paths and URLs once more, right before the call runs (after an approval wait, a
        file may have become a link)."""
        for check in (self._paths, self._network):
            found = check(name, arguments)
            if found is not None:
                return dataclasses.replace(found, reason=self.redact(found.reason))
        return Verdict("allow", "recheck", f"tool {name!r}: paths and URLs still allowed")

    def guard_for(self, name: str, *, time_left: float | None = None) -> CallGuard:
        """The effect guard of one call of tool ``name`` (``time_left``: the run's remaining
        time budget, which bounds any child process the call starts)."""
        return CallGuard(
            self.registry.get(name),
            self.paths,
            self.net,
            self.redactor,
            policy=self.policy,
            time_left=time_left,
        )

    def _check_call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        meter: BudgetMeter,
        offered: list[str] | None = None,
        untrusted_step: str | None = None,
    ) -> Verdict:
        exhausted = meter.exhausted()
        if exhausted in ("budget.tokens", "budget.time"):
            # budgets before effects: a turn that went over budget acts no further (steps
            # count model calls, so the call of the last allowed step still runs)
            return Verdict("deny", exhausted, f"{exhausted} is used up; no further actions")
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
        tainted = sorted(effects & p.untrusted_step_approval)
        if untrusted_step is not None and tainted:
            return Verdict(
                "needs_approval",
                "approval.untrusted_step",
                f"tool {name!r} ({', '.join(tainted)}) for a plan step that came from untrusted "
                f"content ({untrusted_step})",
            )
        gated = sorted(effects & p.approval_side_effects)
        exempt = self._exempt.get(name) == id(tool)
        if name in p.approval_tools or (gated and not exempt):
            if (name, id(tool)) in self._always:
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

    def _path_values(self, arguments: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        names = self.policy.path_arguments
        for key, value in _walk_named(arguments):
            if key in names and isinstance(value, str):
                yield key, value

    def _paths(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        for key, value in self._path_values(arguments):
            workspace = self._workspace_root()
            if workspace is None:
                return Verdict(
                    "deny", "workspace", f"{name}.{key}: no workspace is configured for paths"
                )
            try:
                real = workspace.resolve(value, tool=name)
            except WorkspaceError as exc:
                return Verdict("deny", "workspace", f"{name}.{key}: {exc}")
            lexical = os.path.join(workspace.root, value.strip().replace("\\", "/"))
            found = self.paths.check(str(real), write=False) or self.paths.check(
                lexical, write=False
            )
            if found is not None:
                return Verdict("deny", found[0], f"{name}.{key}: {found[1]}")
        return None

    def _network(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        tool = self.registry.get(name)
        networked = SideEffect.NETWORK in tool.side_effects
        for key, value in _walk_named(arguments):
            if key in self.policy.url_arguments and isinstance(value, str):
                found = self.net.url(value)
                if found is not None:
                    return Verdict("deny", found[0], f"{name}.{key}: {found[1]}")
        if networked:  # a URL anywhere: values, list items, nested objects, keys
            for key, text in iter_strings(dict(arguments)):
                for url in iter_urls(text):
                    found = self.net.url(url)
                    if found is not None:
                        return Verdict("deny", found[0], f"{name}.{key or 'key'}: {found[1]}")
        return None

    def _secrets(self, name: str, arguments: Mapping[str, Any]) -> Verdict | None:
        if not self.policy.block_secret_arguments:
            return None
        texts = [("name", name), *iter_strings(dict(arguments))]
        for key, text in texts:
            found = self.redactor.find(text)
            if found:
                return Verdict(
                    "deny",
                    "secrets",
                    f"{name}.{key or 'arguments'} contains {len(found)} secret(s); they never "
                    "leave the agent",
                )
        return None

    # -- approval --------------------------------------------------------------------------

    async def ask_approval(
        self, request: ApprovalRequest, callback: ApprovalCallback | None, *, remember: bool = True
    ) -> Verdict:
        """Ask the human; no callback means refused. ``always`` is remembered for the tool
        (unless ``remember`` is False: then it counts once)."""
        if callback is None:
            return Verdict(
                "deny", "approval.no_callback", f"{request.reason}; no approval callback is set"
            )
        asked = self.registry.get(request.tool) if request.tool in self.registry else None
        try:
            answer: Any = callback(request)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:  # a failing callback is a refusal, never an approval
            log.warning("the approval callback failed; the call is refused", exc_info=True)
            return Verdict("deny", "approval.error", f"the approval callback failed: {exc!r}")
        now = self.registry.get(request.tool) if request.tool in self.registry else None
        if now is None or now is not asked:  # an approval is for the tool object it was asked for
            return Verdict(
                "deny",
                "approval.changed",
                f"tool {request.tool!r} was replaced while the approval was pending",
            )
        if answer == "always" and remember:
            self._always.add((request.tool, id(now)))
            return Verdict("allow", "approval.always", f"approved always: {request.reason}")
        if answer in ("once", "always"):
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
                "action": self.redact(action),
                "decision": decision,
                "rule": rule,
                "reason": self.redact(reason),
                "arguments": self.redactor.redact_value(dict(arguments or {})),
            }
        )

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)[0]


def _walk_named(value: Any, key: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every ``(argument name, value)`` at any depth (lists keep their parent's name)."""
    if depth > 32:
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            yield str(k), item
            yield from _walk_named(item, str(k), depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield key, item
            yield from _walk_named(item, key, depth + 1)
