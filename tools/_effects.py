"""Effects at the moment they happen: the seam between a running tool and the policy.

Owns :class:`EffectGuard` (the protocol a policy implements), :class:`EffectDenied`, the
context variable that holds the guard of the call now running (:func:`guarded`), and one
process-wide :func:`sys.addaudithook` hook that turns the interpreter's own audit events
(``open``, ``os.rename``, ``os.scandir``, ``socket.getaddrinfo``, ``socket.connect``,
``subprocess.Popen``...) into guard checks. A tool therefore cannot forget to be checked:
whatever file it opens, folder it lists, name it resolves, address it connects to or process
it starts is seen by the guard of its call, however its arguments were named (a name lookup
is seen before the connection, so the guard can tell an address reached through a name, for
instance a ``*.domain`` wildcard, from one the tool named itself). Tools that know more (the file tools' workspace, ``http_get``'s
redirect hops, a write's new content) also call :func:`check_url`, :func:`check_write` and
:func:`path_visible` so the model gets a clear error or a walk skips what it may not see.

Never decides anything itself (the guard does) and costs one context-variable read per audit
event outside a guarded call. It is not a sandbox against hostile Python code (a tool that
starts its own threads, calls C directly or opens relative to a descriptor with ``dir_fd`` is
not followed: the ``open`` audit event does not carry the descriptor); it holds the model's
choices of arguments to the policy. Processes are the exception: a spawn is seen, and
:func:`sandbox_spawn` marks the one kind a policy can let through, the sandbox launcher
(:mod:`agentcore.tools._sandbox`), whose child is confined by the kernel instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from agentcore.tools._errors import ToolExecutionError
from agentcore.tools._sandbox_rules import SandboxRules

__all__ = [
    "EffectDenied",
    "EffectGuard",
    "check_path",
    "check_url",
    "check_write",
    "current_guard",
    "guarded",
    "install_effect_hook",
    "path_visible",
    "sandbox_spawn",
]


class EffectDenied(ToolExecutionError, PermissionError):
    """An effect of a running tool (a path, an address, a process) is outside the policy.

    Also a :class:`PermissionError`, so library code inside the tool cleans up as it does for
    any refused system call (a socket is closed, a walk skips the folder); the guard has
    already kept the refusal for the audit log, whatever the tool does with the error."""

    def __init__(self, tool: str, rule: str, message: str) -> None:
        ToolExecutionError.__init__(self, tool, f"not allowed ({rule}): {message}")
        self.rule = rule
        self.detail = message

    def __str__(self) -> str:
        return ToolExecutionError.__str__(self)


class EffectGuard(Protocol):
    """What a policy checks while one tool call runs. Each method raises
    :class:`EffectDenied` to stop the effect; ``path_allowed`` only answers."""

    def path(self, path: str, *, write: bool, event: str) -> None: ...

    def path_allowed(self, path: str, *, write: bool) -> bool: ...

    def address(self, host: str, port: int | None, *, event: str) -> None: ...

    def lookup(self, host: str, port: int | None, *, event: str) -> None: ...

    def url(self, url: str) -> None: ...

    def content(self, path: str, text: str, start: int) -> None: ...

    def process(self, event: str, detail: str, *, sandboxed: bool) -> None: ...

    def sandbox(self, workspace: str) -> SandboxRules: ...


_GUARD: contextvars.ContextVar[EffectGuard | None] = contextvars.ContextVar(
    "agentcore_effect_guard", default=None
)
_SPAWN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentcore_sandbox_spawn", default=False
)
_BUSY = threading.local()  # re-entrancy: a guard's own file reads are not checked
_INSTALLED = False
_INSTALL_LOCK = threading.Lock()

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.chdir"})
_WRITE_EVENTS = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.utime",
        "os.truncate",
        "os.chflags",
        "os.setxattr",
        "os.removexattr",
        "shutil.rmtree",
        "sqlite3.connect",
    }
)
_TWO_PATH_EVENTS = frozenset({"os.rename", "os.link", "shutil.copyfile", "shutil.move"})
_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
        "os.startfile",
        "ctypes.dlopen",
        "os.kill",
        "os.killpg",
    }
)
_NET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})


def current_guard() -> EffectGuard | None:
    """The guard of the tool call running in this context, or None."""
    return _GUARD.get()


@contextlib.contextmanager
def guarded(guard: EffectGuard) -> Iterator[None]:
    """Run the body (a tool call) under ``guard``; installs the audit hook on first use."""
    install_effect_hook()
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)


def _text(path: Any) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # an already open descriptor: checked when it was opened
    if isinstance(path, bytes):
        return os.fsdecode(path)
    try:
        return os.fspath(path)
    except TypeError:
        return None


def _is_write(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _dispatch(guard: EffectGuard, event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        path = _text(args[0]) if args else None
        if path is not None:
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else None
            guard.path(path, write=_is_write(mode, flags), event=event)
    elif event in _READ_EVENTS or event in _WRITE_EVENTS:
        path = _text(args[0]) if args else None
        if path is not None and not (event == "sqlite3.connect" and path == ":memory:"):
            guard.path(path, write=event in _WRITE_EVENTS, event=event)
    elif event in _TWO_PATH_EVENTS:
        for item in args[:2]:
            path = _text(item)
            if path is not None:
                guard.path(path, write=True, event=event)
    elif event == "os.symlink":
        target, link = _text(args[0]), _text(args[1])
        if link is not None:
            guard.path(link, write=True, event=event)
            if target is not None:  # a link is as good as the place it points at
                base = os.path.dirname(os.path.abspath(link))
                guard.path(os.path.join(base, target), write=True, event=event)
    elif event in _NET_EVENTS:
        address = args[1] if len(args) > 1 else None
        if event == "socket.sendto" and len(args) > 1:
            address = args[-1]
        if isinstance(address, tuple) and address and isinstance(address[0], str):
            port = address[1] if len(address) > 1 and isinstance(address[1], int) else None
            guard.address(address[0], port, event=event)
        elif isinstance(address, str | bytes):  # AF_UNIX
            guard.path(_text(address) or "", write=True, event=event)
    elif event == "socket.getaddrinfo":
        host = args[0] if args else None
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if isinstance(host, str) and host:
            port = args[1] if len(args) > 1 else None
            if isinstance(port, str | bytes):
                port = int(port) if port.isdigit() else None
            guard.lookup(host, port if isinstance(port, int) else None, event=event)
    elif event in _PROCESS_EVENTS:
        sandboxed = event == "subprocess.Popen" and _SPAWN.get()
        guard.process(event, repr(args[:2])[:200], sandboxed=sandboxed)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    guard = _GUARD.get()
    if guard is None or getattr(_BUSY, "on", False):
        return
    _BUSY.on = True
    try:
        _dispatch(guard, event, args)
    finally:
        _BUSY.on = False


def install_effect_hook() -> None:
    """Add the audit hook once per process (audit hooks cannot be removed; outside a
    :func:`guarded` call it returns at once)."""
    global _INSTALLED
    if _INSTALLED:
        return
    with _INSTALL_LOCK:
        if not _INSTALLED:
            sys.addaudithook(_hook)
            _INSTALLED = True


@contextlib.contextmanager
def sandbox_spawn() -> Iterator[None]:
    """Marks the process started in the body as the sandbox launcher's (only
    :func:`~agentcore.tools.run_sandboxed` uses it): a policy may refuse every other spawn."""
    token = _SPAWN.set(True)
    try:
        yield
    finally:
        _SPAWN.reset(token)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    previous = getattr(_BUSY, "on", False)
    _BUSY.on = True
    try:
        yield
    finally:
        _BUSY.on = previous


def check_url(url: str) -> None:
    """Raise :class:`EffectDenied` when the running call's policy refuses ``url`` (a no-op
    outside a guarded call). Tools that follow redirects call it for every hop."""
    guard = _GUARD.get()
    if guard is not None:
        with _quiet():
            guard.url(url)


def check_path(path: str | os.PathLike[str], *, write: bool) -> None:
    """Raise :class:`EffectDenied` when the running call may not read (or write) ``path`` (a
    no-op outside a guarded call). Tools that open relative to a folder descriptor call it
    with the resolved path, since the ``open`` audit event does not carry the descriptor."""
    guard = _GUARD.get()
    if guard is not None:
        with _quiet():
            guard.path(os.fspath(path), write=write, event="open")


def check_write(path: str | os.PathLike[str], text: str, start: int = 0) -> None:
    """Raise :class:`EffectDenied` when writing ``text`` to ``path`` is refused; ``start``:
    where the new part begins (after an append's old content)."""
    guard = _GUARD.get()
    if guard is not None:
        with _quiet():
            guard.path(os.fspath(path), write=True, event="write")
            guard.content(os.fspath(path), text, start)


def path_visible(path: str | os.PathLike[str] | Path, *, write: bool = False) -> bool:
    """Whether the running call may touch ``path`` (always True outside a guarded call):
    walks and listings skip what is not visible instead of failing."""
    guard = _GUARD.get()
    if guard is None:
        return True
    with _quiet():
        return guard.path_allowed(os.fspath(path), write=write)
