"""The line-based terminal chat: read a line, stream the reply, save the session.

Owns the plain chat loop used by ``agentcore chat --plain`` (and by pipes, where stdin is not
a terminal). Never renders a full-screen UI: that is ``apps/``.
"""

from __future__ import annotations

import argparse
import sys
import time

from agentcore import _tracing as tracing
from agentcore._model_args import load_engine
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.loader import ModelNotFoundError, cache_root
from agentcore.core.params import SamplingParams
from agentcore.core.session import Session
from agentcore.core.state import SessionStateError
from agentcore.paths import data_home, session_path

__all__ = ["run_chat", "run_info"]


def _open_session(engine: Engine, ns: argparse.Namespace) -> Session:
    if ns.session:
        path = session_path(ns.session)
        if path.exists():
            session = engine.restore_session(path)
            print(
                f"[resumed session {ns.session!r}: {session.n_tokens} tokens, "
                f"{session.n_messages} messages]",
                file=sys.stderr,
            )
            return session
    streaming = StreamingConfig.for_budget(ns.window) if ns.window else engine.default_streaming()
    session = engine.new_session(engine.session_config(streaming))
    if ns.system:
        session.messages.append({"role": "system", "content": ns.system})
    return session


def run_chat(ns: argparse.Namespace) -> int:
    tracing.configure_from(ns)  # --trace
    interactive = sys.stdin.isatty()
    try:
        t0 = time.perf_counter()
        if interactive:
            print("loading model...", file=sys.stderr, flush=True)
        engine = load_engine(ns)
    except ModelNotFoundError as exc:
        print(f"agentcore: {exc}", file=sys.stderr)
        return 1
    info = engine.info()
    try:
        session = _open_session(engine, ns)
    except (SessionStateError, ValueError) as exc:
        print(f"agentcore: {exc}", file=sys.stderr)
        return 1
    if interactive:
        print(
            f"[{info.name} on {info.device}/{info.dtype}, ready in {time.perf_counter() - t0:.1f}s; "
            "Ctrl-D to quit]",
            file=sys.stderr,
        )
    params = SamplingParams.reply(
        ns.max_tokens,
        temperature=ns.temperature,
        top_p=ns.top_p,
        repetition_penalty=ns.reply_penalty,
    )
    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if interactive:
            print("assistant> ", end="", file=sys.stderr, flush=True)
        span = tracing.start_chat(None, model=info.name, params=params)
        try:
            reply = session.chat(
                text, params, on_token=lambda ev: print(ev.text, end="", flush=True)
            )
            tracing.end_chat(span, reply)
        except BaseException as exc:
            tracing.end_interrupted(span, exc)
            if not isinstance(exc, KeyboardInterrupt):
                raise
            print("\n[stopped]", file=sys.stderr)
        print(flush=True)
        if ns.session:
            session.save(session_path(ns.session))
    return 0


def run_info(ns: argparse.Namespace) -> int:
    try:
        engine = load_engine(ns)
    except ModelNotFoundError as exc:
        print(f"agentcore: {exc}", file=sys.stderr)
        return 1
    info = engine.info()
    for key, value in vars(info).items():
        print(f"{key:15} {value}")
    print(f"{'model_cache':15} {cache_root()}")
    print(f"{'data_home':15} {data_home()}")
    return 0
