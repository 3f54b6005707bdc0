"""One tool: a name, a description, an argument schema, a callable and what it may do.

Owns :class:`Tool` (validate -> run with a timeout -> render a :class:`~tools.ToolResult`) and
the :func:`tool` decorator that builds one from a typed function; :meth:`Tool.from_model`
builds one from a pydantic model class. Sync tools run on a daemon worker thread so a slow one
cannot block the event loop; async tools run on the loop. Never decides whether a call is
allowed (the safety filter reads :attr:`Tool.side_effects` and decides) and never retries.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from agentcore.tools._arguments import ArgumentSpec, PydanticArguments, coerce_arguments
from agentcore.tools._docstring import parse_docstring
from agentcore.tools._errors import (
    ToolArgumentError,
    ToolDefinitionError,
    ToolError,
    ToolExecutionError,
    ToolTimeoutError,
)
from agentcore.tools._meta import SideEffect, ToolLimits, normalize_side_effects
from agentcore.tools._result import ToolResult
from agentcore.tools._signature import FunctionArguments

__all__ = ["Tool", "tool"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_T = TypeVar("_T")
SideEffectsArg = SideEffect | str | Iterable[SideEffect | str] | None


def check_tool_name(name: str) -> str:
    """Tool names follow the OpenAI rule: 1-64 characters of ``A-Z a-z 0-9 _ -``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ToolDefinitionError(
            f"tool name: got {name!r}; expected 1-64 characters from A-Z, a-z, 0-9, '_' and '-'"
        )
    return name


def _limits(
    limits: ToolLimits | None, timeout_s: float | None, max_result_chars: int | None
) -> ToolLimits:
    base = limits or ToolLimits.DEFAULT
    return ToolLimits(
        timeout_s=base.timeout_s if timeout_s is None else timeout_s,
        max_result_chars=base.max_result_chars if max_result_chars is None else max_result_chars,
    )


def _run_on_daemon_thread(fn: Callable[[], _T], name: str) -> asyncio.Future[_T]:
    """Run ``fn`` on a fresh daemon thread; the returned future resolves on the current loop.

    A daemon thread (not the loop's default executor) so that a tool which never returns
    cannot keep the process or ``asyncio.run`` from exiting after its timeout.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def worker() -> None:
        try:
            result, error = context.run(fn), None
        except BaseException as exc:  # handed to the awaiting task, never lost
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is gone: the caller stopped waiting long ago

    threading.Thread(target=worker, name=f"tool:{name}", daemon=True).start()
    return future


class Tool:
    """A callable the model may invoke, with everything needed to describe and police it.

    ``invoke`` receives what ``arguments.validate`` returns (a pydantic model for local
    tools, a dict for imported ones). ``fn`` is the user's original callable, kept so that
    ``tool(...)`` can still be called directly in plain Python code.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        arguments: ArgumentSpec,
        invoke: Callable[[Any], Any],
        fn: Callable[..., Any] | None = None,
        is_async: bool | None = None,
        side_effects: SideEffectsArg = None,
        limits: ToolLimits = ToolLimits.DEFAULT,
        tags: Iterable[str] = (),
        source: str = "local",
    ) -> None:
        self.name = check_tool_name(name)
        self.description = description.strip()
        self.arguments = arguments
        self.side_effects = normalize_side_effects(side_effects)
        self.limits = limits
        self.tags = frozenset(tags)
        self.source = source
        self.fn = fn if fn is not None else invoke
        self._invoke = invoke
        self.is_async = inspect.iscoroutinefunction(self.fn) if is_async is None else bool(is_async)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        side_effects: SideEffectsArg = None,
        limits: ToolLimits | None = None,
        timeout_s: float | None = None,
        max_result_chars: int | None = None,
        tags: Iterable[str] = (),
    ) -> Tool:
        """A tool from a typed function: parameters -> schema, docstring -> descriptions."""
        tool_name = check_tool_name(name or str(getattr(fn, "__name__", "")))
        doc = parse_docstring(inspect.getdoc(fn))
        text = description if description is not None else doc.description
        if not text:
            raise ToolDefinitionError(
                f"tool {tool_name!r} has no description; write a docstring or pass description="
            )
        signature = FunctionArguments(
            fn, model_name=_camel(tool_name) + "Arguments", descriptions=doc.params
        )
        return cls(
            name=tool_name,
            description=text,
            arguments=PydanticArguments(signature.model),
            invoke=signature.call,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            side_effects=side_effects,
            limits=_limits(limits, timeout_s, max_result_chars),
            tags=tags,
        )

    @classmethod
    def from_model(
        cls,
        model: type[BaseModel],
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        description: str | None = None,
        side_effects: SideEffectsArg = None,
        limits: ToolLimits | None = None,
        timeout_s: float | None = None,
        max_result_chars: int | None = None,
        tags: Iterable[str] = (),
    ) -> Tool:
        """A tool whose arguments are the pydantic ``model``; ``fn`` receives a model instance.

        The name defaults to the model class name in snake_case, the description to the
        model's docstring.
        """
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ToolDefinitionError(f"from_model: expected a pydantic model class, got {model!r}")
        tool_name = check_tool_name(name or _snake(model.__name__))
        own_doc = model.__doc__ if "__doc__" in model.__dict__ else None
        text = description if description is not None else parse_docstring(own_doc).description
        if not text:
            raise ToolDefinitionError(
                f"tool {tool_name!r} has no description; give {model.__name__} a docstring or "
                "pass description="
            )
        return cls(
            name=tool_name,
            description=text,
            arguments=PydanticArguments(model),
            invoke=fn,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            side_effects=side_effects,
            limits=_limits(limits, timeout_s, max_result_chars),
            tags=tags,
        )

    # -- description -------------------------------------------------------------------------

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object."""
        return self.arguments.schema

    def json_schema(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}``: the function-calling description."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def openai_tool(self) -> dict[str, Any]:
        """The entry of an OpenAI chat-completions ``tools`` list."""
        return {"type": "function", "function": self.json_schema()}

    # -- calling -----------------------------------------------------------------------------

    def validate(self, arguments: Mapping[str, Any] | str | None) -> Any:
        """Check arguments (mapping, JSON text or ``None``); raise ToolArgumentError naming each
        wrong field, its value and what was expected."""
        return self.arguments.validate(self.name, coerce_arguments(self.name, arguments))

    async def _execute(self, payload: Any) -> Any:
        try:
            if self.is_async:
                result = self._invoke(payload)
            else:
                result = await _run_on_daemon_thread(lambda: self._invoke(payload), self.name)
            if inspect.isawaitable(result):
                result = await result
        except TimeoutError as exc:  # the tool's own timeout, not ours: an execution failure
            raise ToolExecutionError(self.name, f"TimeoutError: {exc}") from exc
        return result

    async def run(self, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """Validate, run under the tool's timeout, render. Never raises for tool failures: an
        invalid call, a timeout or an exception inside the tool comes back as a failed
        :class:`ToolResult` whose ``content`` tells the model what went wrong."""
        limit = self.limits.max_result_chars
        raw = dict(arguments) if isinstance(arguments, Mapping) else {}
        try:
            raw = coerce_arguments(self.name, arguments)
            payload = self.arguments.validate(self.name, raw)
        except ToolArgumentError as exc:
            return ToolResult.failure(self.name, raw, exc, max_chars=limit)
        started = time.perf_counter()
        try:
            value = await asyncio.wait_for(self._execute(payload), self.limits.timeout_s)
        except TimeoutError:
            timeout = ToolTimeoutError(self.name, self.limits.timeout_s)
            return ToolResult.failure(
                self.name, raw, timeout, max_chars=limit, elapsed_s=_since(started)
            )
        except ToolError as exc:
            return ToolResult.failure(
                self.name, raw, exc, max_chars=limit, elapsed_s=_since(started)
            )
        except Exception as exc:
            error = ToolExecutionError(self.name, f"{type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return ToolResult.failure(
                self.name, raw, error, max_chars=limit, elapsed_s=_since(started)
            )
        return ToolResult.success(self.name, raw, value, max_chars=limit, elapsed_s=_since(started))

    def run_sync(self, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """:meth:`run` for code without an event loop (raises RuntimeError inside one)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(arguments))
        raise RuntimeError(f"run_sync({self.name!r}) called inside an event loop; use `await run`")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the original function directly (no validation, no timeout)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        effects = ",".join(sorted(e.value for e in self.side_effects))
        return f"Tool(name={self.name!r}, side_effects={effects}, source={self.source!r})"


def _since(started: float) -> float:
    return time.perf_counter() - started


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_-]", name) if part)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: SideEffectsArg = None,
    limits: ToolLimits | None = None,
    timeout_s: float | None = None,
    max_result_chars: int | None = None,
    tags: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: SideEffectsArg = None,
    limits: ToolLimits | None = None,
    timeout_s: float | None = None,
    max_result_chars: int | None = None,
    tags: Iterable[str] = (),
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a typed function; use bare (``@tool``) or with options
    (``@tool(side_effects="writes", timeout_s=5)``). Sync and ``async def`` both work."""

    def build(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(
            f,
            name=name,
            description=description,
            side_effects=side_effects,
            limits=limits,
            timeout_s=timeout_s,
            max_result_chars=max_result_chars,
            tags=tags,
        )

    if fn is not None:
        return build(fn)
    return build
