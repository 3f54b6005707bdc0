"""Per-session locks of the model service: held while a request runs, dropped afterwards."""

from __future__ import annotations

import asyncio

import pytest

from agentcore.backends import FakeBackend
from agentcore.server._service import ClientGoneError, ModelService


async def _settle(service: ModelService) -> None:
    """Let the workers' finish callbacks (posted to the loop) run."""
    for _ in range(200):
        if not len(service._locks):
            return
        await asyncio.sleep(0.01)


async def test_session_locks_are_dropped_when_requests_finish() -> None:
    service = ModelService(FakeBackend())
    try:
        for i in range(20):
            job = await service.start(f"s{i}", lambda emit, stop: None)
            assert job.future is not None
            await asyncio.wrap_future(job.future)
        assert await service.locked_call("info", lambda: 42) == 42
        await _settle(service)
        assert len(service._locks) == 0
    finally:
        service.close()


async def test_a_client_gone_while_queued_leaves_no_lock_behind() -> None:
    service = ModelService(FakeBackend())
    try:
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        def busy(emit: object, stop: object) -> None:
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=30)

        running = await service.start("s", busy)
        gone: asyncio.Future[None] = loop.create_future()
        queued = asyncio.ensure_future(service.start("s", lambda emit, stop: None, gone))
        await asyncio.sleep(0.05)
        assert len(service._locks) == 1  # one lock, held by one request, awaited by another
        gone.set_result(None)
        with pytest.raises(ClientGoneError):
            await queued
        release.set()
        assert running.future is not None
        await asyncio.wrap_future(running.future)
        await _settle(service)
        assert len(service._locks) == 0
    finally:
        service.close()
