"""``agentcore serve``: load the model, open the sessions folder and run uvicorn.

Owns the command-line options of the server, the choice of device (CUDA + bf16 when present,
CPU + float32 otherwise, via the engine loader) and the listening socket: it is bound before
the server starts, so ``--port 0`` picks a free port, and the line
``agentcore serve: listening on http://HOST:PORT`` is printed (flushed) once requests are
accepted. Never handles requests itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from agentcore import _tracing as tracing
from agentcore._model_args import add_model_arguments, add_session_arguments, load_engine
from agentcore.backends._limits import DEFAULT_MAX_RESIDENT, DEFAULT_MAX_SESSIONS
from agentcore.server._config import MIB, ServerConfig, default_sessions_dir

__all__ = [
    "add_serve_arguments",
    "bind_socket",
    "build_parser",
    "config_from_args",
    "main",
    "run_serve",
]


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``agentcore serve`` (shared with ``python -m agentcore.server``)."""
    d = ServerConfig()
    p.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host})")
    tracing.add_trace_argument(p)
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}; 0: any)")
    add_model_arguments(p)
    add_session_arguments(p)
    p.add_argument(
        "--sessions-dir",
        default=None,
        help="folder of persistent sessions (default $AGENTCORE_HOME/server/sessions)",
    )
    p.add_argument(
        "--window", type=int, default=None, help="sink + window budget per session (default 2048)"
    )
    p.add_argument(
        "--max-resident-sessions",
        type=int,
        default=DEFAULT_MAX_RESIDENT,
        help="sessions kept in memory; the least recently used others wait in their files "
        f"(default {DEFAULT_MAX_RESIDENT})",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help="sessions kept on disk; a request opening one more gets HTTP 507 until some are "
        f"deleted (default {DEFAULT_MAX_SESSIONS}; 0: no limit)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=d.max_body_bytes,
        help=f"largest request body accepted (default {d.max_body_bytes // MIB} MiB)",
    )
    p.add_argument(
        "--max-tokens-limit",
        type=int,
        default=d.max_tokens_limit,
        help=f"most tokens one request may generate (default {d.max_tokens_limit})",
    )
    p.add_argument(
        "--reply-penalty",
        type=float,
        default=d.reply_penalty,
        help="repetition penalty on a chat reply's own tokens when the request names no penalty "
        f"(default {d.reply_penalty}; 1: none, plain greedy)",
    )
    p.add_argument("--workers", type=int, default=d.workers, help="generation threads (default 32)")
    p.add_argument(
        "--no-auto-create",
        action="store_true",
        help="refuse requests naming an unknown session (create them with POST /v1/sessions)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages from ORIGIN (e.g. http://localhost:3000) call the API; "
        "repeatable; '*' allows any origin (default: none, no CORS headers)",
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer API_KEY' on every request but GET /health "
        "(default $AGENTCORE_API_KEY; neither set: no check)",
    )
    p.add_argument("--log-level", default=d.log_level, help="uvicorn log level (default info)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentcore serve",
        description="OpenAI-compatible model server with persistent long-memory sessions.",
    )
    add_serve_arguments(parser)
    return parser


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn (``port=0``: any free port).

    Created with ``IPPROTO_TCP`` explicitly: asyncio enables ``TCP_NODELAY`` only on accepted
    sockets whose protocol says TCP, and without it small SSE writes and responses wait ~40 ms
    for delayed ACKs (uvloop sets it regardless).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def config_from_args(ns: argparse.Namespace) -> ServerConfig:
    """The server's limits and access rules from parsed options (``$AGENTCORE_API_KEY`` when
    ``--api-key`` is not given)."""
    return ServerConfig(
        host=ns.host,
        port=ns.port,
        max_body_bytes=ns.max_body_bytes,
        max_tokens_limit=ns.max_tokens_limit,
        reply_penalty=ns.reply_penalty,
        workers=ns.workers,
        auto_create_sessions=not ns.no_auto_create,
        log_level=ns.log_level,
        cors_origins=tuple(ns.cors_origin),
        api_key=ns.api_key or os.environ.get("AGENTCORE_API_KEY") or None,
    )


def run_serve(ns: argparse.Namespace) -> int:
    """Load the model and serve until interrupted (SIGINT/SIGTERM: graceful shutdown)."""
    import uvicorn

    from agentcore.backends._local import LocalBackend
    from agentcore.core.cache import StreamingConfig
    from agentcore.core.loader import ModelNotFoundError
    from agentcore.server._app import create_app

    tracing.configure_from(ns)  # --trace
    try:
        config = config_from_args(ns)
        if ns.max_resident_sessions < 1:
            raise ValueError(
                f"--max-resident-sessions must be >= 1, got {ns.max_resident_sessions}"
            )
        if ns.max_sessions < 0:
            raise ValueError(f"--max-sessions must be >= 0 (0: no limit), got {ns.max_sessions}")
        engine = load_engine(ns)
    except (ModelNotFoundError, ValueError, FileNotFoundError) as exc:
        print(f"agentcore serve: {exc}", file=sys.stderr)
        return 1
    folder = Path(ns.sessions_dir) if ns.sessions_dir else default_sessions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    session_config = engine.session_config(
        StreamingConfig.for_budget(ns.window) if ns.window else None
    )
    backend = LocalBackend(
        engine,
        sessions_dir=folder,
        session_config=session_config,
        max_resident=ns.max_resident_sessions,
        max_sessions=ns.max_sessions or None,
    )
    app = create_app(backend, config)
    try:
        sock = bind_socket(config.host, config.port)
    except OSError as exc:
        print(
            f"agentcore serve: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    host, port = sock.getsockname()[:2]
    info = engine.info()
    uv = uvicorn.Config(
        app,
        log_level=config.log_level,
        ws="none",
        timeout_graceful_shutdown=10,
        access_log=config.log_level == "debug",
    )
    server = uvicorn.Server(uv)
    shown = f"[{host}]" if ":" in str(host) else host

    async def serve() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            print(
                f"agentcore serve: listening on http://{shown}:{port} (model {info.name} on "
                f"{info.device}/{info.dtype}; sessions in {folder}"
                f"{'; API key required' if config.api_key else ''})",
                flush=True,
            )
        await task

    logging.getLogger("agentcore.server").setLevel(config.log_level.upper())
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_serve(build_parser().parse_args(argv))
