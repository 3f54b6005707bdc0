"""Shared helpers for benchmarks: book tokens, RSS, timing, writing tables and JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import torch

from agentcore import _compute as compute

if TYPE_CHECKING:
    from agentcore.core.session import Session

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks"
K = TypeVar("K", bound=Hashable)


def shared_data() -> Path:
    """The shared public-domain books (``$AGENTCORE_DATA`` overrides ``../shared/data``)."""
    env = os.environ.get("AGENTCORE_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def book_tokens(codec: Any, n: int, name: str = "austen-emma.txt") -> list[int]:
    """``n`` tokens of a book, repeating it when it is shorter."""
    text = (shared_data() / name).read_text(encoding="utf-8", errors="replace")
    ids = codec.encode(text)
    out: list[int] = []
    while len(out) < n:
        out.extend(ids)
    return out[:n]


def weight_bytes_per_token(engine: Any) -> int:
    """Weight bytes one decode step reads: every weight but the embedding table (one row)."""
    core = engine.core
    total = int(core.weight_bytes(batch_copies=False))
    if core.lm_head is not core.embed:  # tied: the table is the LM head and is read whole
        total -= core.embed.numel() * core.embed.element_size()
    return total


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": compute.threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    name: str, markdown: str, raw: dict[str, Any], out_dir: Path | None = None
) -> Path:
    folder = out_dir or DOCS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    path = folder / f"{name}.md"
    path.write_text(markdown.rstrip() + "\n")
    return path


def publish(name: str, markdown: str, raw: dict[str, Any], out_dir: Path | None = None) -> int:
    """:func:`write_report`, then print the table and where it went; a bench's exit status."""
    path = write_report(name, markdown, raw, out_dir)
    print(markdown)
    print(f"wrote {path}")
    return 0


def memory_view(engine: Any, adapter: Path | None) -> Any:
    """A view of ``engine`` sharing its weights, with the Infini gates of ``adapter``.

    ``None`` keeps the untrained initial gates (beta = -4, about 2% memory). Adapters that carry
    Q/K/V low-rank weights are refused: merging them would change the shared weights.
    """
    from agentcore.core.engine import Engine
    from agentcore.core.infini import MemoryGates

    view = Engine(engine.core, engine.codec, name=engine.name, source=engine.source)
    if adapter is not None:
        if MemoryGates.load_lora(adapter):
            raise SystemExit(f"{adapter} carries Q/K/V adapters; benchmark views share weights")
        view.load_memory_adapter(adapter)
    return view


def ppl(logps: torch.Tensor) -> float:
    x = logps[~torch.isnan(logps)]
    return math.exp(-float(x.mean())) if x.numel() else float("nan")


def interleaved_decode_ms(saved: dict[K, Session], steps: int, period: int = 1) -> dict[K, float]:
    """Decode ms/token of every saved session, the sessions taking turns step by step; medians.

    ``period``: steps of a cycle whose cost must be counted whole (recall re-selects its blocks
    once per ``refresh + 1`` steps, a step several times longer than the others). The steps are
    then cut into runs of ``period``, each run's mean is one sample, and the median is over
    those: the re-selection is amortised into every sample instead of dropped as an outlier.

    This machine's speed drifts by a third within seconds (other tenants share its memory
    bandwidth), so 1K and 64K measured even a minute apart compare two moments as much as two
    contexts. Alternating single steps between forks of every context makes each context see
    the same moments.
    """
    twins = {c: s.fork() for c, s in saved.items()}
    toks = {c: int(torch.argmax(t.next_logits)) for c, t in twins.items()}  # type: ignore[arg-type]
    samples: dict[K, list[float]] = {c: [] for c in saved}
    for _ in range(steps):
        for c, twin in twins.items():
            t0 = time.perf_counter()
            twin.append_tokens([toks[c]])
            samples[c].append(time.perf_counter() - t0)
            assert twin.next_logits is not None
            toks[c] = int(torch.argmax(twin.next_logits))
    out = {}
    for c, v in samples.items():
        v = v[2:]
        runs = [sum(v[i : i + period]) / period for i in range(0, len(v) - period + 1, period)]
        out[c] = median_ms(runs)
    return out
