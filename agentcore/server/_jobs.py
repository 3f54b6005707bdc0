"""Blocking generations run in worker threads and stream their text to the event loop.

Owns :class:`JobRunner` (a thread pool) and :class:`Job`: the worker calls the blocking
function with an ``emit`` callback (each text piece goes to an :class:`asyncio.Queue` on the
loop) and a ``should_stop`` callback (true once :meth:`Job.cancel` was called, e.g. when the
client disconnected), and the loop awaits :meth:`Job.next_event`. The model forward is not
thread-safe: the engine's lock serialises forwards, so jobs on different sessions interleave
one forward at a time. Never knows what a job computes, and never holds session locks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Job", "JobEvent", "JobRunner", "ShuttingDownError"]

log = logging.getLogger("agentcore.server")

T = TypeVar("T")

Emit = Callable[[str], None]
ShouldStop = Callable[[], bool]


class ShuttingDownError(RuntimeError):
    """The runner was closed: the server is shutting down and takes no new work."""


@dataclasses.dataclass(frozen=True)
class JobEvent:
    """``kind``: ``text`` (a piece of output), ``done`` (``value`` is the result) or ``error``."""

    kind: str
    value: Any


class Job(Generic[T]):
    """One running generation: its events, its cancel flag and its future."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._cancel = threading.Event()
        self.future: concurrent.futures.Future[None] | None = None

    # ------------------------------------------------------------ worker side
    def _push(self, event: JobEvent) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody listens any more
            self._cancel.set()

    def emit(self, text: str) -> None:
        if text:
            self._push(JobEvent("text", text))

    def should_stop(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------ loop side
    def cancel(self) -> None:
        """Ask the worker to stop at its next token (it still finishes and cleans up)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    async def next_event(self) -> JobEvent:
        return await self._queue.get()

    def on_finished(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the event loop once the worker has returned (or never ran)."""
        assert self.future is not None
        loop = self._loop

        def done(_: concurrent.futures.Future[None]) -> None:
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # loop closed (server shutting down): run it here
                callback()

        self.future.add_done_callback(done)


class JobRunner:
    """A pool of worker threads for blocking model work."""

    def __init__(self, workers: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="agentcore-gen"
        )
        self._active: set[Job[Any]] = set()
        self._guard = threading.Lock()
        self._closed = False

    def start(self, fn: Callable[[Emit, ShouldStop], T]) -> Job[T]:
        """Run ``fn(emit, should_stop)`` in a worker; its result arrives as a ``done`` event."""
        if self._closed:
            raise ShuttingDownError("the server is shutting down; retry against a running one")
        job: Job[T] = Job(asyncio.get_running_loop())

        def run() -> None:
            try:
                result = fn(job.emit, job.should_stop)
            except BaseException as exc:  # handed to the request that owns the job
                job._push(JobEvent("error", exc))
            else:
                job._push(JobEvent("done", result))
            finally:
                with self._guard:
                    self._active.discard(job)

        with self._guard:
            self._active.add(job)
        # the worker runs in the request's context: spans it starts nest under the request's
        job.future = self._pool.submit(contextvars.copy_context().run, run)
        return job

    async def call(self, fn: Callable[[], T]) -> T:
        """Run a short blocking call (session inspection, deletion) in a worker."""
        if self._closed:
            raise ShuttingDownError("the server is shutting down; retry against a running one")
        return await asyncio.wrap_future(self._pool.submit(fn))

    @property
    def active(self) -> int:
        with self._guard:
            return len(self._active)

    def close(self) -> None:
        """Cancel every running job, wait for the workers to return, refuse new work."""
        self._closed = True
        with self._guard:
            jobs = list(self._active)
        for job in jobs:
            job.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
