"""One tool call the model chose: checked, asked about, run, and recorded.

Owns :class:`ToolStep`: the call's ``execute_tool`` span, its event and history turn, the safety
filter's verdict (and a human's, when the policy asks, checked again after the answer), a denial
given back to the model and perceived as untrusted data, the run through the executor under the
call's effect guard with the run's remaining time, the effects refused while it ran, and what
the run keeps from it (evidence, errors, the untrusted influence, tool statistics). Its events
stream out and its :class:`~agentcore.agent._run.CallResult` is the last item; too many denials,
the tool-call budget or the time budget raise :class:`~agentcore.agent._run.Stop`. Never chooses
a call and never decides how the run goes on: the loop does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from opentelemetry.trace import Span

from agentcore import _tracing as tracing
from agentcore.agent._conversation import Conversation
from agentcore.agent._events import (
    ApprovalRequest,
    Event,
    StatusEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from agentcore.agent._recording import Recorder
from agentcore.agent._run import CallResult, RunState, Stop
from agentcore.agent._wiring import RunParts
from agentcore.tools import SideEffect

__all__ = ["ToolStep"]


class ToolStep:
    """Runs the tool calls of one run (see the module docstring)."""

    def __init__(
        self, parts: RunParts, conversation: Conversation, run: RunState, recorder: Recorder
    ) -> None:
        self.parts = parts
        self.conversation = conversation
        self.run_state = run
        self.recorder = recorder

    async def run(
        self,
        call_id: str,
        name: str,
        arguments: dict[str, Any],
        offered: list[str],
        untrusted_step: str | None = None,
    ) -> AsyncIterator[Event | CallResult]:
        """One tool call, checked and (when allowed) run, inside its ``execute_tool`` span;
        its events, then its :class:`CallResult`."""
        span = self.recorder.tool_span(call_id, name, arguments)
        try:
            async for item in self._checked(
                span, call_id, name, arguments, offered, untrusted_step
            ):
                yield item
        except Stop:
            raise
        except Exception as exc:
            tracing.fail(span, exc, self.parts.safety.redact)
            raise
        finally:
            tracing.end(span)

    async def _checked(
        self,
        span: Span,
        call_id: str,
        name: str,
        arguments: dict[str, Any],
        offered: list[str],
        untrusted_step: str | None,
    ) -> AsyncIterator[Event | CallResult]:
        p, run, record = self.parts, self.run_state, self.recorder
        shown_args = record.shown_arguments(arguments)
        shown_name = p.safety.redact(name)  # a tool name is model output too
        yield run.event(ToolCallEvent, call_id=call_id, tool=shown_name, arguments=shown_args)
        self.conversation.tool_call(call_id, shown_name, shown_args)
        verdict = p.safety.check_call(
            name, arguments, run.meter, offered, untrusted_step=untrusted_step
        )
        decision: str = verdict.decision
        if verdict.decision == "needs_approval":
            yield run.event(StatusEvent, state="waiting_for_approval", detail=verdict.reason)
            request = ApprovalRequest(
                agent=p.name,
                call_id=call_id,
                tool=name,
                arguments=shown_args,
                reason=verdict.reason,
            )
            verdict = await p.safety.ask_approval(
                request, p.approve, remember=verdict.rule != "approval.untrusted_step"
            )
            decision = "approved" if verdict.allowed else "refused"
            if verdict.allowed:  # the world may have changed while the human decided
                again = p.safety.recheck(name, arguments)
                if not again.allowed:
                    verdict, decision = again, "deny"
        yield record.verdict(
            f"tool:{name}", decision, verdict.rule, verdict.reason, call_id, shown_args
        )
        if not verdict.allowed:
            tracing.refuse(span, decision, verdict.rule, p.safety.redact(verdict.reason))
            run.denials += 1
            run.episode.untrusted = True
            message = f"Error: not allowed ({verdict.rule}): {verdict.reason}"
            run.episode.errors.append(f"{shown_name} was blocked: {verdict.reason}")
            run.episode.actions.append(f"{shown_name} blocked")
            run.last_tool_ok = False
            self.conversation.tool_result(call_id, shown_name, message)
            # the reason quotes the model's own call (its tool name, paths, values): it is
            # perceived as untrusted data, never with the policy's (system) trust
            denial = p.perception.perceive(message, source="policy", trust="tool")
            run.influence = "policy"
            yield record.observe(denial)
            if run.denials >= p.config.max_denials:
                raise Stop("denied", f"stopped after {run.denials} blocked actions")
            if verdict.rule == "budget.tool_calls":
                raise Stop("budget.tool_calls", "the tool-call budget is used up")
            yield CallResult(False, message)
            return
        yield run.event(StatusEvent, state="calling_tool", detail=name)
        run.meter.tool_calls += 1
        guard = p.safety.guard_for(name, time_left=run.meter.time_left())
        with tracing.current(span):  # what the tool starts (threads, HTTP calls) nests under it
            done = await p.executor.run(
                name,
                arguments,
                time_left=run.meter.time_left(),
                guard=guard,
                influence=run.influence,
            )
        if not done.ok:
            tracing.tool_failed(span, done.error or "error", done.output[:500])
        for rule, reason in guard.denials:  # effects refused while the tool ran
            tracing.refuse(span, "deny", rule, p.safety.redact(reason))
            yield record.verdict(f"effect:{name}", "deny", rule, reason, call_id, shown_args)
        p.learner.record_tool(name, done.ok, outage=done.outage)
        run.episode.untrusted = True  # its output (or error) is untrusted content
        called = p.tools.get(name)
        if not (called.source == "local" and called.side_effects == {SideEffect.NONE}):
            # a pure project tool (the calculator, the clock) can bring nothing in from
            # outside (the guard lets it read no file): it leaves the influence as it was
            run.influence = f"tool:{name}"
        run.last_tool_ok = done.ok
        if done.ok:
            run.episode.evidence.append(f"tool:{name} ok")
        run.episode.actions.append(
            f"{name}({_brief(shown_args)}) -> {'ok' if done.ok else 'failed'}"
        )
        if not done.ok:
            run.episode.errors.append(f"{name}: {done.output[:200]}")
        yield run.event(
            ToolResultEvent,
            call_id=call_id,
            tool=name,
            ok=done.ok,
            output=done.output,
            error=done.error,
            duration_s=done.duration_s,
        )
        self.conversation.tool_result(call_id, name, done.output)
        obs = p.perception.perceive(done.output, source=f"tool:{name}", trust="tool")
        yield record.observe(obs)
        if done.error == "budget.time":
            raise Stop("budget.time", "the time budget ran out")
        yield CallResult(done.ok, done.output)


def _brief(arguments: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return text if len(text) <= 120 else text[:117] + "..."
