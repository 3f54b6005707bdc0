"""What a sandboxed child may use: its resource limits and the rules a policy adds.

Owns :class:`SandboxLimits` (CPU seconds, wall time, address space, file size, processes,
open files, output kept) and :class:`SandboxRules` (what the running call's policy adds: a
ceiling on the limits, paths to hide, which confinement layers are required). Plain frozen
values: the effect guard (``_effects``) hands them out and the sandbox (``_sandbox``) applies
them, and both import this module, never each other for these types. Never starts a process.
"""

from __future__ import annotations

import dataclasses

__all__ = ["SANDBOX_LAYERS", "SandboxLimits", "SandboxRules"]

SANDBOX_LAYERS = frozenset({"landlock", "mask", "network", "namespaces", "seccomp", "processes"})
"""The confinement layers the launcher knows, which :attr:`SandboxRules.require` may name."""


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one child process tree.

    ``cpu_s``: CPU seconds (RLIMIT_CPU, per process); ``wall_s``: wall-clock seconds before the
    whole tree is killed; ``memory_bytes``: address space (RLIMIT_AS); ``file_bytes``: the
    largest file it may write (RLIMIT_FSIZE); ``processes``: processes and threads
    (RLIMIT_NPROC, counted per user namespace; enforced for a root agent too, whose command
    runs as a uid of its own outside the namespace); ``open_files``: descriptors
    (RLIMIT_NOFILE); ``output_bytes``: stdout and stderr kept, each (the rest is read and
    dropped)."""

    cpu_s: int = 10
    wall_s: float = 30.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 64 << 20
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 64_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ValueError(f"SandboxLimits.{field.name}: got {value!r}; expected > 0")

    def tighter(self, other: SandboxLimits | None) -> SandboxLimits:
        """Each limit the smaller of the two (``other`` None: unchanged)."""
        if other is None:
            return self
        return SandboxLimits(
            **{
                f.name: min(getattr(self, f.name), getattr(other, f.name))
                for f in dataclasses.fields(self)
            }
        )

    def within(self, seconds: float | None) -> SandboxLimits:
        """Wall and CPU time no longer than ``seconds`` (a run's remaining time budget)."""
        if seconds is None:
            return self
        seconds = max(0.05, seconds)
        return dataclasses.replace(
            self, wall_s=min(self.wall_s, seconds), cpu_s=max(1, min(self.cpu_s, int(seconds) + 1))
        )


@dataclasses.dataclass(frozen=True)
class SandboxRules:
    """What a policy adds to one child: ``limits`` (a ceiling), ``mask`` (absolute paths to
    hide: protected files and folders inside the workspace, the agent's own files),
    ``require`` (layers without which the command must not run: ``landlock``, ``mask``,
    ``network``, ``namespaces``, ``seccomp`` (the system-call filter), ``processes`` (a
    process count the kernel enforces, which for a root agent needs the launcher's own uid in
    the user namespace))."""

    limits: SandboxLimits | None = None
    mask: tuple[str, ...] = ()
    require: frozenset[str] = frozenset({"landlock", "mask", "network", "seccomp", "processes"})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.require) - SANDBOX_LAYERS)
        if unknown:
            raise ValueError(
                f"SandboxRules.require: unknown {unknown}; expected {sorted(SANDBOX_LAYERS)}"
            )
