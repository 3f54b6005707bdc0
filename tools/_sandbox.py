"""Child processes under resource limits, confined to the workspace.

Owns :class:`SandboxResult` and :func:`run_sandboxed`, the one way a tool starts a process,
under its :class:`SandboxLimits` and the running call's :class:`SandboxRules` (both in
``_sandbox_rules``, which the effect guard shares). The command runs through the launcher in
``_sandbox_child.py``: new user, mount, network and PID namespaces (for a root
agent, a uid of its own outside, so the kernel counts its processes), protected paths masked,
Landlock (reads under the runtime, writes only under the workspace and a private temporary
folder, no TCP), rlimits, a seccomp filter (foreign architectures killed; ptrace, mounts, new
namespaces, kernel modules, bpf, io_uring, keyrings, file handles... refused), a clean
environment, the workspace as working folder, no inherited descriptors; the whole process
tree is killed at the wall-time limit and output is bounded while it is read. Under an effect guard (an agent's tool call) the guard supplies the
rules and sees the spawn as sandboxed; a tool that starts a process any other way is refused
by the agent's policy. Never decides whether a command may run.

What it does not do: it is not a container (the command sees the host's ``/usr`` read-only
and, where a private one cannot be mounted, ``/proc``); its system-call filter is a deny list
of calls a command never needs, not an allow list; and without Landlock, user namespaces or
seccomp it refuses to run unless the rules stop requiring those layers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentcore.tools._effects import _quiet, current_guard, sandbox_spawn
from agentcore.tools._errors import ToolExecutionError
from agentcore.tools._sandbox_rules import SandboxLimits, SandboxRules

__all__ = ["SandboxError", "SandboxResult", "run_sandboxed", "sandbox_support"]

_LAUNCHER = str(Path(__file__).with_name("_sandbox_child.py"))
_READ_ROOTS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/ssl",
    "/etc/pki",
    "/etc/mime.types",
    "/etc/locale.alias",
    "/etc/alternatives",
)
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_PATH = "/usr/local/bin:/usr/bin:/bin"
_LAUNCHER_OVERRIDES: dict[str, Any] = {}
"""Launcher spec entries merged last (``{"seccomp": False}``, ``{"namespaces": False}``):
``bench/safety.py`` switches a layer off with it to measure what the layer costs. Empty in
production; nothing in the package sets it."""


class SandboxError(ToolExecutionError):
    """The sandbox could not be set up as the rules require (the command never ran)."""


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """How one sandboxed command ended. ``killed``: why the sandbox ended it (``wall_s``,
    ``output``), or the signal that did (``SIGKILL`` at the memory or CPU limit...);
    ``layers``: what the launcher applied (``landlock_fs``, ``network_namespace``...)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    killed: str | None = None
    truncated: bool = False
    layers: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.killed is None

    def render(self) -> str:
        """The text a tool returns to the model."""
        head = f"exit code {self.returncode}"
        if self.killed:
            head += f" (stopped: {self.killed})"
        parts = [head]
        if self.stdout:
            parts.append("stdout:\n" + self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("stderr:\n" + self.stderr.rstrip("\n"))
        if self.truncated:
            parts.append("[output cut]")
        return "\n".join(parts)


def _read_roots() -> list[str]:
    roots = {*_READ_ROOTS, sys.prefix, sys.base_prefix, sys.exec_prefix}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(r for r in roots if os.path.exists(r))


def _clean_env(home: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": _PATH,
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


def _signal_name(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the launcher's process group (the command, as PID 1 of its namespace, dies
    with the launcher and takes every process it started along)."""
    with _quiet():  # the sandbox's own signal, not an effect of the tool
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _pump(
    proc: subprocess.Popen[bytes],
    status_fd: int,
    stdin: bytes | None,
    limits: SandboxLimits,
) -> tuple[bytes, bytes, bytes, str | None, bool]:
    """Feed stdin, read stdout, stderr and the status line until the process ends or the wall
    time runs out. Output beyond ``output_bytes`` is read and dropped."""
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    status = bytearray()
    truncated = False
    killed: str | None = None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    sel.register(status_fd, selectors.EVENT_READ)
    pending = memoryview(stdin or b"")
    if proc.stdin is not None:
        if pending:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    deadline = time.monotonic() + limits.wall_s
    open_reads = 3
    while open_reads:
        left = deadline - time.monotonic()
        if left <= 0:
            killed = "wall_s"
            _kill_tree(proc)
            break
        for key, _ in sel.select(min(left, 0.5)):
            fd = key.fd
            if proc.stdin is not None and key.fileobj is proc.stdin:
                try:
                    sent = os.write(fd, pending[:65536])
                except (BrokenPipeError, BlockingIOError) as exc:
                    sent = 0 if isinstance(exc, BlockingIOError) else len(pending)
                pending = pending[sent:]
                if not pending:
                    sel.unregister(proc.stdin)
                    proc.stdin.close()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_reads -= 1
                continue
            if fd == status_fd:
                status += chunk[:4096]
                continue
            buffer = buffers[fd]
            room = limits.output_bytes - len(buffer)
            if room > 0:
                buffer += chunk[:room]
            if len(chunk) > max(room, 0):
                truncated = True
    sel.close()
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    return (
        bytes(buffers[proc.stdout.fileno()]),
        bytes(buffers[proc.stderr.fileno()]),
        bytes(status),
        killed,
        truncated,
    )


def run_sandboxed(
    argv: Sequence[str],
    *,
    workspace: str | os.PathLike[str],
    limits: SandboxLimits | None = None,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    rules: SandboxRules | None = None,
) -> SandboxResult:
    """Run ``argv`` in the sandbox with ``workspace`` as its working folder and only writable
    place (besides a private temporary folder, removed afterwards). ``rules``: used outside an
    agent's tool call; inside one, the call's guard supplies them (and they cannot be
    loosened here). Raises :class:`SandboxError` when a required layer is unavailable."""
    if not argv or not all(isinstance(a, str) and "\x00" not in a for a in argv):
        raise SandboxError("sandbox", f"argv: got {argv!r}; expected non-empty strings")
    root = os.path.realpath(workspace)
    if not os.path.isdir(root):
        raise SandboxError("sandbox", f"workspace {str(workspace)!r} is not a folder")
    guard = current_guard()
    if guard is not None:
        with _quiet():
            rules = guard.sandbox(root)  # raises EffectDenied for a workspace it does not allow
    rules = rules or SandboxRules()
    chosen = (limits or SandboxLimits()).tighter(rules.limits)
    with _quiet():
        private = tempfile.mkdtemp(prefix="agentcore-sandbox-")
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    try:
        spec = {
            "argv": list(argv),
            "cwd": root,
            "env": _clean_env(private, env),
            "read": _read_roots(),
            "write": [root, private, *[d for d in _DEVICES if os.path.exists(d)]],
            "mask": list(rules.mask),
            "require": sorted(rules.require),
            "limits": dataclasses.asdict(chosen),
            "status_fd": write_fd,
            **_LAUNCHER_OVERRIDES,
        }
        with sandbox_spawn():
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", _LAUNCHER, json.dumps(spec)],
                stdin=subprocess.PIPE,  # (not DEVNULL: opening /dev/null is a guarded effect)
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=root,
                env={"PATH": _PATH, "LANG": "C.UTF-8"},
                close_fds=True,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        os.close(write_fd)
        write_fd = -1
        try:
            data = stdin.encode("utf-8") if stdin is not None else None
            out, err, status, killed, truncated = _pump(proc, read_fd, data, chosen)
        finally:
            if proc.poll() is None:
                _kill_tree(proc)
            code = proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        with _quiet():
            shutil.rmtree(private, ignore_errors=True)
    layers: dict[str, Any] = {}
    if status.strip():
        try:
            layers = json.loads(status.decode("utf-8", "replace").splitlines()[0])
        except (ValueError, IndexError):
            layers = {}
    stderr_text = err.decode("utf-8", "replace")
    if not layers and code == 126 and stderr_text.startswith("sandbox: "):
        raise SandboxError("sandbox", stderr_text.strip().removeprefix("sandbox: "))
    if killed is None:
        killed = _signal_name(code)
    return SandboxResult(
        argv=tuple(argv),
        returncode=code,
        stdout=out.decode("utf-8", "replace"),
        stderr=stderr_text,
        duration_s=time.perf_counter() - started,
        killed=killed,
        truncated=truncated,
        layers=layers,
    )


_SUPPORT: dict[str, Any] | None = None


def sandbox_support() -> dict[str, Any]:
    """What the sandbox can enforce on this machine (the launcher's status for ``true``):
    ``landlock_fs``, ``landlock_net``, ``user_namespace``, ``network_namespace``,
    ``pid_namespace``, ``rlimits``, ``landlock_abi``, ``seccomp`` (the system-call filter),
    ``process_limit`` (the kernel enforces ``processes``), ``uid_outside``. Cached per
    process."""
    global _SUPPORT
    if _SUPPORT is None:
        with tempfile.TemporaryDirectory(prefix="agentcore-probe-") as folder:
            try:
                result = run_sandboxed(
                    ["true"], workspace=folder, rules=SandboxRules(require=frozenset())
                )
                _SUPPORT = dict(result.layers)
            except (SandboxError, OSError) as exc:
                _SUPPORT = {"error": str(exc)}
    return dict(_SUPPORT)
