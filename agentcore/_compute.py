"""The one thread that runs the model's work.

Owns :func:`run` (call a function on the compute thread and wait for it), :func:`on_compute`
(a method decorator that does that for every call from another thread), :func:`use_threads`
(how many CPU threads the compute thread's PyTorch ops use) and :func:`threads`.
Never decides what runs, never reorders: calls run one at a time, in the order they arrive;
the engine's forward lock (:class:`~agentcore.core.batch.FairLock`) still decides whose chunk
or decode step goes next.

Why one thread. PyTorch's CPU ops run in parallel through OpenMP (libgomp). Every thread that
starts a parallel region keeps a team of worker threads for as long as it lives, and once a
process holds more such threads than it has CPUs, libgomp stops spinning between regions and
wakes its workers through the kernel for each one. A decode step is a hundred small parallel
regions, so the model decoded 1.5x slower on any thread but the first one to run in parallel
(SmolLM2 on 2 cores: 16-17 ms a step on the thread that loaded it, 25-27 on a server's request
thread, which is where every step of a served session ran). Here the model loads, reads and
decodes on one long-lived thread, the first (and, in agentcore's own processes, the only) to
run in parallel, whichever thread asks; and once it has its threads, threads that start later
run their PyTorch ops on one thread (sampling over the vocabulary, copying a session's state
for a save), so that they never start a team of their own. A thread that had already set its
thread count (a program's main thread that called ``torch.set_num_threads``) keeps it; a later
``torch.set_num_threads`` sets the process-wide count again (threads started after it run in
parallel once more): set the model's threads with ``Engine.load(threads=...)`` or
:func:`use_threads` instead.

Gradient mode is per thread, so :func:`on_compute` is for functions that never compute
gradients (the inference forwards); a training run goes there whole (``train_memory`` calls
:func:`run`) and sets its own. A forked child starts a compute thread of its own on first use.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = ["on_compute", "run", "threads", "use_threads"]

P = ParamSpec("P")
R = TypeVar("R")


class _Job:
    """One call waiting for the compute thread."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as error:  # handed to the caller, who raises it
            self.error = error
        finally:
            self.done.set()


class _ComputeThread:
    """A daemon thread that runs queued jobs one at a time."""

    def __init__(self, n_threads: int | None) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.started = threading.Event()
        self.thread = threading.Thread(
            target=self._loop, args=(n_threads,), name="agentcore-compute", daemon=True
        )
        self.thread.start()
        self.started.wait()
        _one_thread_elsewhere()

    def _loop(self, n_threads: int | None) -> None:
        import torch  # a foundation module: torch loads only once there is model work

        # PyTorch sets a thread's count from the process-wide one on the thread's first use
        # (which ``set_num_threads`` is not); that first use comes here, before ours is set
        default = torch.get_num_threads()
        torch.set_num_threads(n_threads or default)
        self.started.set()
        while True:
            self.jobs.get()()


def _one_thread_elsewhere() -> None:
    """Threads that have not set their PyTorch thread count yet start with one.

    PyTorch gives a thread the process-wide count on its first parallel op; the compute
    thread has its own already. Set from a thread of its own, since the call also sets the
    calling thread's count."""
    import torch

    helper = threading.Thread(target=torch.set_num_threads, args=(1,), daemon=True)
    helper.start()
    helper.join()


_lock = threading.Lock()
_worker: _ComputeThread | None = None
_threads: int | None = None  # what the last use_threads asked for (a forked child asks again)


def _compute_thread() -> _ComputeThread:
    global _worker
    with _lock:
        if _worker is None:
            _worker = _ComputeThread(_threads)
        return _worker


def _forget_after_fork() -> None:
    """In a forked child the thread is gone; the next call starts another."""
    global _worker, _lock
    _worker = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def run(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` on the compute thread; its result, or its exception raised here.

    From the compute thread itself (a call inside a call) it runs at once. An interrupt
    (Ctrl-C) while the caller waits is raised once the call has finished: a forward stopped
    halfway would have left its cache half-written, and the caller must not touch the cache
    while the forward still writes it."""
    worker = _compute_thread()
    if threading.current_thread() is worker.thread:
        return fn(*args, **kwargs)
    job = _Job(functools.partial(fn, *args, **kwargs))
    worker.jobs.put(job)
    try:
        job.done.wait()
    except BaseException:
        job.done.wait()
        raise
    if job.error is not None:
        raise job.error
    result: R = job.result
    return result


def on_compute(fn: Callable[P, R]) -> Callable[P, R]:
    """Run every call of ``fn`` on the compute thread (:func:`run`). For functions that never
    compute gradients (``torch.inference_mode``): gradient mode is per thread, and the
    compute thread's is not the caller's."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run(fn, *args, **kwargs)

    return wrapper


def use_threads(n: int) -> None:
    """The compute thread's PyTorch ops use ``n`` CPU threads from now on."""
    import torch

    global _threads
    if n < 1:
        raise ValueError(f"use_threads: n must be >= 1, got {n}")
    _threads = n
    if _worker is None:
        _compute_thread()  # starts with n threads, the others with one
        return
    run(torch.set_num_threads, n)
    _one_thread_elsewhere()  # setting the compute thread's count set the process-wide one too


def threads() -> int:
    """How many CPU threads the compute thread's PyTorch ops use (before it has started: how
    many the calling thread's use; asking does not start it)."""
    import torch

    if _worker is None:
        return torch.get_num_threads()
    return run(torch.get_num_threads)
