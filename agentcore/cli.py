"""The ``agentcore`` command line.

Owns argument parsing and dispatch to the subcommands; each subcommand's work lives in
its own module (the chat loop in :mod:`agentcore.chat_cli`, benchmarks in ``bench/``).
Never holds model or agent logic.

The CLI is the top layer, above the apps (docs/architecture.md): it is the one composition
root that knows every program (server, training, terminal assistant, simulation runner) and
nothing imports it. Each program is imported when its subcommand runs, so ``agentcore --help``
needs none of the optional extras (FastAPI, Textual, PyYAML).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agentcore._extras import MissingExtraError, require_extra
from agentcore._model_args import add_model_arguments, add_session_arguments
from agentcore._tracing import add_trace_argument
from agentcore._version import __version__
from agentcore.core.models import DEFAULT_ALIAS, MODELS, model_status
from agentcore.core.params import REPLY_PENALTY
from agentcore.server._main import add_serve_arguments

__all__ = ["main"]

_DESCRIPTION = """\
agentcore: agents on a local language model whose context never ends.

subcommands:
  chat        the terminal assistant (Textual): chat with an agent on the local model, tool
              panels, approvals, plan / memory / session panes, persistent conversations
              (`agentcore chat --help-app` lists its options). With --plain, or when input
              is piped, a line-based chat on one endless session (--session NAME resumes it)
  sim         run a multi-agent simulation scenario (`agentcore sim --help`)
  serve       run the OpenAI-compatible model server with persistent sessions
  bench       run a benchmark from bench/ (streaming, dtype, load, ...) and write its table
              under docs/benchmarks/
  train       train the Infini-attention memory gates: agentcore train memory [--preset cpu|gpu]
  info        show the resolved model, device, dtype and cache folders
  models      list the model aliases, whether each is installed, its size and licence

Models: --model takes an alias ('default' = smollm2-135m, qwen2.5-coder-0.5b; `agentcore models`
lists them), a .gguf file, a local Hugging Face model directory of the Llama family (Llama,
Qwen2/3, Mistral, SmolLM), or a hub id (needs network the first time).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentcore",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"agentcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="chat with the local model (streams tokens)")
    add_model_arguments(chat)
    add_session_arguments(chat)
    chat.add_argument(
        "--session", default=None, help="name of a persistent session to resume or create"
    )
    chat.add_argument("--system", default=None, help="system prompt for a new session")
    chat.add_argument(
        "--max-tokens", type=int, default=512, help="most tokens per reply (default 512)"
    )
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument(
        "--reply-penalty",
        type=float,
        default=REPLY_PENALTY,
        help=f"repetition penalty on each reply's own tokens (default {REPLY_PENALTY}; 1: none)",
    )
    chat.add_argument(
        "--window",
        type=int,
        default=None,
        help="sink + window budget in tokens (default: the model's, 2048 for SmolLM2)",
    )
    chat.add_argument(
        "--plain", action="store_true", help="line-based chat (automatic when input is piped)"
    )
    chat.add_argument(
        "--help-app", action="store_true", help="show the terminal assistant's options"
    )
    add_trace_argument(chat)

    sub.add_parser("sim", help="run a multi-agent simulation scenario", add_help=False)

    serve = sub.add_parser("serve", help="run the OpenAI-compatible model server")
    add_serve_arguments(serve)

    bench = sub.add_parser("bench", help="run a benchmark script from bench/")
    bench.add_argument("name", help="benchmark name (file bench/NAME.py), or 'list'")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")

    train = sub.add_parser("train", help="train the long-memory gates (agentcore train memory)")
    add_model_arguments(train)
    from agentcore.train._cli import add_train_arguments

    add_train_arguments(train)

    info = sub.add_parser("info", help="show model, device and folders")
    add_model_arguments(info)
    sub.add_parser("models", help="list model aliases, installed or not, with sizes")
    return parser


def run_models() -> int:
    """``agentcore models``: one row per registered model, and how to install a missing one."""
    rows = [("alias", "model", "params", "context", "licence", "tools", "installed", "on disk")]
    missing = []
    for card in MODELS:
        st = model_status(card)
        names = card.alias + (" (default)" if card.alias == DEFAULT_ALIAS else "")
        size = f"{st.bytes_on_disk / 2**20:,.0f} MiB" if st.bytes_on_disk else "-"
        rows.append(
            (
                *(names, card.title, card.parameters, f"{card.trained_context // 1024}K"),
                *(card.licence, card.tool_format, "yes" if st.installed else "no", size),
            )
        )
        if not st.installed:
            missing.append(f"  {card.alias}: make setup, or {card.install_command}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    if missing:
        print("\nto install:\n" + "\n".join(missing))
    return 0


def _bench_dir() -> Path:
    env = os.environ.get("AGENTCORE_BENCH_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "bench"


def run_bench(name: str, args: Sequence[str]) -> int:
    folder = _bench_dir()
    if name == "list":
        for f in sorted(folder.glob("*.py")):
            if not f.name.startswith("_"):
                print(f.stem)
        return 0
    path = folder / f"{name}.py"
    if not path.is_file():
        available = ", ".join(
            sorted(f.stem for f in folder.glob("*.py") if not f.name.startswith("_"))
        )
        print(
            f"agentcore bench: no benchmark {name!r} in {folder} (available: {available})",
            file=sys.stderr,
        )
        return 2
    spec = importlib.util.spec_from_file_location(f"agentcore_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look their module up there
    sys.path.insert(0, str(folder))  # for bench/_common.py
    spec.loader.exec_module(module)
    rc: int = module.main(list(args))
    return rc


def _wants_app(args: Sequence[str]) -> bool:
    """``chat`` opens the terminal assistant unless asked for the line chat or fed by a pipe."""
    if "--plain" in args or "--help" in args or "-h" in args:
        return False
    return "--help-app" in args or (sys.stdin.isatty() and sys.stdout.isatty())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except MissingExtraError as exc:
        print(f"agentcore: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: list[str]) -> int:
    if args[:1] == ["sim"]:
        require_extra("sim", "yaml", feature="agentcore sim")
        from agentcore.apps.sim import main as sim_main

        return sim_main(args[1:])
    if args[:1] == ["chat"] and _wants_app(args[1:]):
        require_extra("tui", "textual", feature="the terminal assistant (agentcore chat)")
        from agentcore.apps.assistant import main as app_main

        rest = ["--help" if a == "--help-app" else a for a in args[1:]]
        return app_main(rest)
    parser = build_parser()
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help()
        return 0
    if ns.command == "chat":
        from agentcore.chat_cli import run_chat

        return run_chat(ns)
    if ns.command == "serve":
        require_extra("server", "fastapi", "uvicorn", feature="agentcore serve")
        from agentcore.server import run_serve

        return int(run_serve(ns))
    if ns.command == "bench":
        return run_bench(ns.name, ns.args)
    if ns.command == "train":
        from agentcore.train._cli import run_train

        return run_train(ns)
    if ns.command == "models":
        return run_models()
    if ns.command == "info":
        from agentcore.chat_cli import run_info

        return run_info(ns)
    parser.error(f"unknown command {ns.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
