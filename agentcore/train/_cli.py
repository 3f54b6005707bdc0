"""``agentcore train memory``: argument parsing and the run (load, train, save, report).

Owns the command's options and where the adapter is written; the training itself is
:func:`agentcore.train.train_memory`. Never changes the model's weights on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from agentcore.train._data import DocumentMaker

__all__ = ["add_train_arguments", "run_train"]


def _data_dir() -> Path:
    env = os.environ.get("AGENTCORE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "what", choices=["memory"], help="what to train (memory: Infini-attention gates)"
    )
    p.add_argument("--preset", default="cpu", help="cpu (default) or gpu")
    p.add_argument("--update", choices=["linear", "delta"], default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--segments", type=int, default=None, help="segments per document (>= 4)")
    p.add_argument("--lora-rank", type=int, default=None, help="0: gates only")
    p.add_argument("--lr-gates", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--data", type=Path, default=None, help="folder of .txt books (../shared/data)")
    p.add_argument("--out", type=Path, default=None, help="adapter file (.safetensors)")


def run_train(ns: argparse.Namespace) -> int:
    import torch

    from agentcore.core.engine import Engine
    from agentcore.core.loader import choose_device
    from agentcore.train._memory import PRESETS, MemoryTrainConfig, train_memory

    if ns.preset not in PRESETS:
        print(f"agentcore train: unknown --preset {ns.preset!r} (choose {', '.join(PRESETS)})")
        return 2
    overrides = {
        "update": ns.update,
        "steps": ns.steps,
        "segments": ns.segments,
        "lora_rank": ns.lora_rank,
        "lr_gates": ns.lr_gates,
        "seed": ns.seed,
    }
    try:
        cfg: MemoryTrainConfig = dataclasses.replace(
            PRESETS[ns.preset], **{k: v for k, v in overrides.items() if v is not None}
        )
    except ValueError as exc:
        print(f"agentcore train: {exc}")
        return 2
    data = ns.data or _data_dir()
    books = [data / b for b in cfg.train_books]
    missing = [str(b) for b in [*books, data / cfg.eval_book] if not b.is_file()]
    if missing:
        print(f"agentcore train: missing book files {missing}; pass --data FOLDER")
        return 2
    dtype = ns.dtype
    if dtype is None and choose_device(ns.device).type == "cpu":
        dtype = "float32"  # CPU inference defaults to bf16; CPU training runs in float32
    engine = Engine.load(
        ns.model, device=ns.device, dtype=dtype, threads=ns.threads, weights="float"
    )
    if engine.core.dtype != torch.float32 and engine.core.device.type == "cpu":
        print("agentcore train: CPU training needs --dtype float32")
        return 2
    score_from = cfg.window + cfg.segment  # text is scored where the memory already holds text
    maker = DocumentMaker(
        engine.codec, books, length=cfg.length, score_from=score_from, seed=cfg.seed
    )
    held = DocumentMaker(
        engine.codec,
        [data / cfg.eval_book],
        length=cfg.length,
        score_from=score_from,
        seed=cfg.seed + 1_000,
    )
    needle = cfg.length - cfg.window - cfg.segment
    half = cfg.eval_docs // 2
    eval_docs = [held.text() for _ in range(half)]
    eval_docs += [held.passkey(needle) for _ in range(cfg.eval_docs - half)]
    print(f"training memory gates on {engine.name}: {dataclasses.asdict(cfg)}")
    gates, lora, metrics = train_memory(engine.core, maker, eval_docs, cfg)
    out = ns.out or (
        Path.home()
        / ".cache"
        / "agentcore"
        / "adapters"
        / f"{engine.name}.{cfg.update}.safetensors"
    )
    extra = {}
    if lora is not None:
        for i in range(len(lora.A)):
            extra[f"lora.A.{i}"] = lora.A[i]
            extra[f"lora.B.{i}"] = lora.B[i]
    config = {**dataclasses.asdict(cfg), "model": engine.name, "preset": ns.preset}
    if lora is not None:
        config["lora_scale"] = lora.scale
    gates.save(out, config=config, metrics=metrics, extra=extra)
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2))
    print(f"adapter written to {out} (load it with --memory-adapter {out})")
    return 0
