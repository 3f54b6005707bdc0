"""A real HTTP server in a background thread: uvicorn on a free loopback port, for tests.

Owns :func:`serve_in_thread`, a context manager that serves an ASGI app, or a model backend
behind agentcore's OpenAI-compatible app, and yields its base URL; it returns only once uvicorn
is accepting connections and, on leaving, stops the server and waits for its thread. Never
binds anything but the address it is given (``127.0.0.1`` unless told), never installs signal
handlers (uvicorn skips them off the main thread), and never outlives the ``with`` block.
FastAPI (the ``[server]`` extra) loads only when a backend is served.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from agentcore import server
from agentcore.backends import ModelBackend

if TYPE_CHECKING:
    from agentcore.server import ServerConfig

__all__ = ["ASGIApp", "serve_in_thread"]

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]  # (scope, receive, send)


@contextlib.contextmanager
def serve_in_thread(
    target: ModelBackend | ASGIApp,
    *,
    config: ServerConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Serve ``target`` over real HTTP from a background thread; yields ``http://host:port``.

    ``target``: a :class:`~agentcore.backends.ModelBackend` (served by
    :func:`agentcore.server.create_app` under ``config``, :meth:`ServerConfig.small
    <agentcore.server.ServerConfig.small>` unless given; the app's service is closed on the way
    out) or any ASGI app (a FastAPI app, an MCP server's app). ``port=0`` picks a free port.
    ``timeout``: seconds to wait for the server to start, and again for it to stop (requests
    still streaming are cut after it).

    Raises :class:`RuntimeError` when the server does not start in time or dies starting (the
    cause is chained), or does not stop in time.
    """
    if isinstance(target, ModelBackend):
        app: Any = server.create_app(target, config or server.ServerConfig.small())
        service = app.state.service
    elif config is not None:
        raise TypeError("serve_in_thread(config=...) configures a backend's app, not an ASGI app")
    else:
        app, service = target, None
    sock = server.bind_socket(host, port)
    uv = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            ws="none",
            lifespan="auto",
            access_log=False,
            timeout_graceful_shutdown=max(1, int(timeout)),
        )
    )
    failures: list[BaseException] = []

    def run() -> None:
        try:
            uv.run(sockets=[sock])
        except BaseException as exc:  # handed to the caller, raised there
            failures.append(exc)

    thread = threading.Thread(target=run, name=f"serve_in_thread:{app!r:.40}", daemon=True)
    try:
        thread.start()
        _wait_started(uv, thread, failures, timeout)
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        yield f"http://{shown}:{bound[1]}"
    finally:
        uv.should_exit = True
        if thread.ident is not None:
            thread.join(timeout + 5)
        sock.close()
        if service is not None:
            service.close()
    if thread.is_alive():
        raise RuntimeError(f"the in-thread server did not stop within {timeout + 5:.0f} s")
    if failures:
        raise RuntimeError("the in-thread server failed while serving") from failures[0]


def _wait_started(
    uv: uvicorn.Server, thread: threading.Thread, failures: list[BaseException], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not uv.started:
        if failures or not thread.is_alive():
            cause = failures[0] if failures else None
            raise RuntimeError(
                f"the in-thread server failed to start ({cause!r}; uvicorn's log says why: "
                "often the app's lifespan startup failed)"
            ) from cause
        if time.monotonic() > deadline:
            raise RuntimeError(f"the in-thread server did not start within {timeout:.0f} s")
        time.sleep(0.01)
