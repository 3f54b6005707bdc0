"""Command-line options shared by every command that loads a model (chat, serve, train, info),
and the engine they describe.

Owns the argparse definitions and :func:`load_engine`; the commands handle the errors.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentcore.core.engine import Engine

__all__ = ["add_model_arguments", "add_session_arguments", "load_engine"]


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``--model --device --dtype --weights --threads --memory-adapter``."""
    p.add_argument(
        "--model",
        default=None,
        help="model: an alias ('default', 'qwen2.5-coder-0.5b'; see `agentcore models`), a .gguf file, a model directory or a hub id",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)"
    )
    p.add_argument(
        "--dtype",
        default=None,
        help="float32, bfloat16, float16 (default: bf16 on GPU and on CPUs with bf16, else fp32)",
    )
    p.add_argument(
        "--weights",
        default=None,
        choices=["auto", "float", "packed", "int8", "int4"],
        help="int8: projections as int8 weights (CPU + bf16); int4: groups of 32 (CPU; fastest "
        "decode, exact for 4-bit GGUFs such as SmolLM2's); packed: float32 in oneDNN's blocked "
        "layout (CPU); auto: int8 where bf16 runs on a CPU, packed where float32 does",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of the model's compute thread (default: all cores)",
    )
    p.add_argument(
        "--memory-adapter",
        default=None,
        help="Infini-attention gates from `agentcore train memory`: new sessions get the memory",
    )


def add_session_arguments(p: argparse.ArgumentParser) -> None:
    """``--recall`` / ``--no-recall``: for the commands that open sessions (chat, serve)."""
    p.add_argument(
        "--recall",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="exact recall of evicted context (on by default): new sessions keep the blocks "
        "that leave the window (64 MiB of RAM per session, then memory-mapped files) and "
        "attend to the most relevant ones; --no-recall for plain sliding-window sessions "
        "(docs/long-memory.md)",
    )


def load_engine(ns: argparse.Namespace) -> Engine:
    """The engine the options of :func:`add_model_arguments` name, memory adapter included
    (and, where :func:`add_session_arguments` added it, recall for new sessions unless
    ``--no-recall``)."""
    from agentcore.core.engine import Engine

    engine = Engine.load(
        ns.model, device=ns.device, dtype=ns.dtype, threads=ns.threads, weights=ns.weights
    )
    if ns.memory_adapter:
        engine.load_memory_adapter(ns.memory_adapter)
    if getattr(ns, "recall", False):
        engine.default_recall = engine.recall_config()
    return engine
