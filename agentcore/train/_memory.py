"""``agentcore train memory``: train the Infini-attention gates (and optional low-rank adapters).

Owns the differentiable segment-recurrent forward used for training and the training loop.
A document of ``segments x segment`` tokens runs layer by layer over the whole sequence with
the same geometry as a streaming session: local attention over the sinks plus a sliding window
of ``window`` tokens, and a compressive memory that holds every token already evicted when a
segment starts (folded segment by segment with the chosen rule). Gradients flow through every
memory update, so back-propagation spans all segments of a document (BPTT over >= 4).

Trainable: one gate ``beta`` per layer and query head (initialised near closed, own learning
rate, no weight decay) and, optionally, rank-``r`` adapters on the fused Q/K/V projection. The
model's own weights stay frozen. The result is a small adapter file
(:meth:`agentcore.core.infini.MemoryGates.save`) with the config and metrics beside it.
Never runs a streaming session: evaluation at inference geometry is ``bench/passkey.py`` and
``bench/streaming.py``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from agentcore import _compute as compute
from agentcore.core.infini import InfiniConfig, MemoryGates, memory_fold, memory_retrieve
from agentcore.core.llama import CoreLayer, CoreModel
from agentcore.core.rope import Rotary
from agentcore.train._data import Document, DocumentMaker

_EPS = InfiniConfig().eps  # the same read-out epsilon a session uses

__all__ = ["PRESETS", "LowRankQKV", "MemoryTrainConfig", "segment_forward", "train_memory"]


@dataclasses.dataclass(frozen=True)
class MemoryTrainConfig:
    """Everything a training run depends on (stored beside the adapter)."""

    update: Literal["linear", "delta"] = "delta"
    n_sink: int = 4
    window: int = 128  # local attention span in training (the memory covers what is older)
    segment: int = 128  # tokens per segment (= the evicted chunk folded at once)
    segments: int = 6  # segments per document: the BPTT length
    steps: int = 120
    lr_gates: float = 0.1
    gate_init: float = -4.0
    lora_rank: int = 0  # 0: gates only
    lr_lora: float = 3e-4
    lora_alpha: float = 16.0
    recall_fraction: float = 0.5  # share of synthetic passkey / key-value documents
    grad_clip: float = 1.0
    eval_every: int = 40
    eval_docs: int = 8
    seed: int = 0
    train_books: tuple[str, ...] = ("chesterton-thursday.txt",)
    eval_book: str = "austen-emma.txt"

    def __post_init__(self) -> None:
        if self.segments < 4:
            raise ValueError(
                f"MemoryTrainConfig.segments must be >= 4 (BPTT span), got {self.segments}"
            )
        if self.window % self.segment:
            raise ValueError(
                f"MemoryTrainConfig.window ({self.window}) must be a multiple of segment "
                f"({self.segment})"
            )
        if self.update not in ("linear", "delta"):
            raise ValueError(
                f"MemoryTrainConfig.update must be linear or delta, got {self.update!r}"
            )

    @property
    def length(self) -> int:
        return self.segment * self.segments


PRESETS: dict[str, MemoryTrainConfig] = {
    # two CPU cores: ~770-token documents, gates only, minutes per 100 steps
    "cpu": MemoryTrainConfig(),
    # one GPU: the inference window, longer documents, adapters on Q/K/V as well
    "gpu": MemoryTrainConfig(
        window=1024, segment=512, segments=8, steps=2000, lora_rank=8, eval_every=200
    ),
}


class LowRankQKV(nn.Module):
    """Rank-``r`` adapters on each layer's fused Q/K/V projection: ``delta = (h A^T) B^T * s``."""

    def __init__(self, core: CoreModel, rank: int, alpha: float) -> None:
        super().__init__()
        dims = core.dims
        n_out = (dims.n_heads + 2 * dims.n_kv_heads) * dims.head_dim
        self.scale = alpha / rank
        self.A = nn.ParameterList(
            nn.Parameter(torch.randn(rank, dims.hidden) / math.sqrt(dims.hidden))
            for _ in range(dims.n_layers)
        )
        self.B = nn.ParameterList(
            nn.Parameter(torch.zeros(n_out, rank)) for _ in range(dims.n_layers)
        )

    def delta(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        return (h @ self.A[layer].T) @ self.B[layer].T * self.scale

    def merged(self, layer: int) -> torch.Tensor:
        """The weight update ``[n_out, hidden]`` to add to ``w_qkv`` at inference."""
        return (self.B[layer] @ self.A[layer]) * self.scale


def segment_forward(
    core: CoreModel,
    ids: torch.Tensor,
    gates: MemoryGates,
    cfg: MemoryTrainConfig,
    lora: LowRankQKV | None = None,
) -> torch.Tensor:
    """``ids: [B,N]`` -> final hidden states ``[B,N,hidden]`` (normed), differentiable."""
    b, n = ids.shape
    dims = core.dims
    x = F.embedding(ids.to(core.device), core.embed) * core.embed_scale
    pos = torch.arange(n)
    geo = _Geometry(core, pos, cfg)
    layers: list[CoreLayer] = list(core.layers)  # type: ignore[arg-type]
    for li, layer in enumerate(layers):
        h = F.rms_norm(x, (dims.hidden,), layer.norm_in, dims.rms_eps)
        q, k, v = layer.project_qkv(h, lora.delta(li, h) if lora is not None else None)
        local = geo.attend(q, k, v)  # [B,Hq,N,D]
        out = _mix_memory(li, q, k, v, local, gates, cfg)
        x = x + F.linear(out.transpose(1, 2).reshape(b, n, -1), layer.w_o, layer.b_o)
        x = x + layer.mlp(x)
    return F.rms_norm(x, (dims.hidden,), core.norm, dims.rms_eps)


class _Geometry:
    """Local attention as a streaming session sees it, for a whole document at once.

    Window keys are scored at their stream positions (query ``i`` sees keys ``j`` with
    ``i - window < j <= i``); the sinks are scored in the cache frame, where a query sits at
    ``min(i, n_sink + window - 1)`` (StreamingLLM's positions inside the cache).
    """

    def __init__(self, core: CoreModel, pos: torch.Tensor, cfg: MemoryTrainConfig) -> None:
        dev = core.device
        ns = min(cfg.n_sink, int(pos.numel()))
        self.ns = ns
        self.f_stream = core.rotary.freqs(pos, dev)
        self.f_cache = core.rotary.freqs(torch.clamp(pos, max=cfg.n_sink + cfg.window - 1), dev)
        i, j = pos[:, None], pos[None, :]
        sink_ok = j[:, :ns] <= i
        win_ok = (j[:, ns:] <= i) & (j[:, ns:] > i - cfg.window)
        ok = torch.cat([sink_ok, win_ok], dim=1).to(dev)
        self.bias = torch.zeros(ok.shape, device=dev).masked_fill(~ok, float("-inf"))  # [N,N]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # q: [B,Hq,N,D]; k, v: [B,Hkv,N,D] (pre-RoPE)
        g = q.shape[1] // k.shape[1]
        k_rot = Rotary.rotate(k, self.f_stream).repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        q_s = Rotary.rotate(q, self.f_stream)
        q_c = Rotary.rotate(q, self.f_cache)
        ns = self.ns
        scale = q.shape[-1] ** -0.5
        s_sink = q_c @ k_rot[:, :, :ns].transpose(-1, -2)  # [B,Hq,N,ns]
        s_win = q_s @ k_rot[:, :, ns:].transpose(-1, -2)  # [B,Hq,N,N-ns]
        scores = torch.cat([s_sink, s_win], dim=-1).float() * scale + self.bias
        return (torch.softmax(scores, dim=-1) @ v.float()).to(q.dtype)


def _mix_memory(
    layer: int,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    local: torch.Tensor,
    gates: MemoryGates,
    cfg: MemoryTrainConfig,
) -> torch.Tensor:
    """Segment by segment: read the memory as it stands when the segment starts, then fold."""
    b, hkv, _, d = k.shape
    M = torch.zeros((b, hkv, d, d), device=k.device)
    z = torch.zeros((b, hkv, d), device=k.device)
    folded = cfg.n_sink  # memory holds stream positions [n_sink, folded)
    w = gates.weight(layer)
    parts = []
    for s in range(cfg.segments):
        lo, hi = s * cfg.segment, (s + 1) * cfg.segment
        evicted = lo - cfg.window  # everything before this left the window before segment s
        if evicted > folded:
            M, z = memory_fold(
                M,
                z,
                k[:, :, folded:evicted],
                v[:, :, folded:evicted],
                rule=cfg.update,
                eps=_EPS,
                empty=folded == cfg.n_sink,
            )
            folded = evicted
        seg_local = local[:, :, lo:hi]
        if folded == cfg.n_sink:  # empty memory reads as zero, as in a session
            parts.append((1 - w) * seg_local)
        else:
            a_mem = memory_retrieve(q[:, :, lo:hi], M, z, eps=_EPS)
            parts.append(w * a_mem + (1 - w) * seg_local)
    return torch.cat(parts, dim=2).to(local.dtype)


def document_loss(
    core: CoreModel,
    doc: Document,
    gates: MemoryGates,
    cfg: MemoryTrainConfig,
    lora: LowRankQKV | None = None,
) -> tuple[torch.Tensor, int, int]:
    """Mean cross-entropy on the masked tokens, and (exact answer hits, scored tokens)."""
    ids = torch.tensor([doc.ids])
    hidden = segment_forward(core, ids[:, :-1], gates, cfg, lora)  # the last segment is 1 short
    mask = torch.tensor(doc.mask[1:], dtype=torch.bool)
    logits = F.linear(hidden[0][mask], core.lm_head).float()  # [S,V] only the scored rows
    targets = ids[0, 1:][mask].to(logits.device)
    loss = F.cross_entropy(logits, targets)
    hits = int((logits.argmax(-1) == targets).all()) if doc.kind != "text" else 0
    return loss, hits, int(mask.sum())


@torch.no_grad()
def evaluate(
    core: CoreModel,
    docs: list[Document],
    gates: MemoryGates,
    cfg: MemoryTrainConfig,
    lora: LowRankQKV | None = None,
) -> dict[str, float]:
    """Perplexity on text documents and exact-answer accuracy on recall documents."""
    nll, tokens, hits, recall_docs = 0.0, 0, 0, 0
    for doc in docs:
        loss, hit, count = document_loss(core, doc, gates, cfg, lora)
        if doc.kind == "text":
            nll += float(loss) * count
            tokens += count
        else:
            hits += hit
            recall_docs += 1
    return {
        "ppl": math.exp(nll / tokens) if tokens else float("nan"),
        "recall_acc": hits / recall_docs if recall_docs else float("nan"),
    }


def train_memory(
    core: CoreModel,
    maker: DocumentMaker,
    eval_docs: list[Document],
    cfg: MemoryTrainConfig,
    *,
    log: Callable[[str], None] = print,
) -> tuple[MemoryGates, LowRankQKV | None, dict[str, Any]]:
    """Train and return the gates, the adapters (or None) and the metrics. Runs on agentcore's
    compute thread, with its CPU threads (:mod:`agentcore._compute`)."""
    return compute.run(_train_memory, core, maker, eval_docs, cfg, log=log)


def _train_memory(
    core: CoreModel,
    maker: DocumentMaker,
    eval_docs: list[Document],
    cfg: MemoryTrainConfig,
    *,
    log: Callable[[str], None],
) -> tuple[MemoryGates, LowRankQKV | None, dict[str, Any]]:
    torch.manual_seed(cfg.seed)
    dims = core.dims
    gates = MemoryGates(dims.n_layers, dims.n_heads, init=cfg.gate_init).to(core.device)
    closed = MemoryGates(dims.n_layers, dims.n_heads, init=-30.0).to(core.device)
    lora = (
        LowRankQKV(core, cfg.lora_rank, cfg.lora_alpha).to(core.device) if cfg.lora_rank else None
    )
    groups: list[dict[str, Any]] = [
        {"params": [gates.beta], "lr": cfg.lr_gates, "weight_decay": 0.0}
    ]
    if lora is not None:
        groups.append({"params": list(lora.parameters()), "lr": cfg.lr_lora, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups)
    core.requires_grad_(False)
    metrics: dict[str, Any] = {"closed_gates": evaluate(core, eval_docs, closed, cfg)}
    metrics["initial"] = evaluate(core, eval_docs, gates, cfg, lora)
    log(f"eval closed {metrics['closed_gates']}  initial {metrics['initial']}")
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    window_loss: list[float] = []
    for step in range(1, cfg.steps + 1):
        doc = maker.draw(cfg.recall_fraction, needle_before=cfg.length - cfg.window - cfg.segment)
        loss, _, _ = document_loss(core, doc, gates, cfg, lora)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        window_loss.append(float(loss.detach()))
        if step % 10 == 0 or step == cfg.steps:
            gate = float(torch.sigmoid(gates.beta.detach()).mean())
            rate = step / (time.perf_counter() - start)
            log(
                f"step {step}/{cfg.steps} loss {sum(window_loss) / len(window_loss):.3f} "
                f"mean gate {gate:.4f} ({rate:.2f} steps/s)"
            )
            window_loss = []
        if step % cfg.eval_every == 0 or step == cfg.steps:
            ev = evaluate(core, eval_docs, gates, cfg, lora)
            ev["step"] = step
            history.append(ev)
            log(f"eval step {step}: {ev}")
    metrics["final"] = history[-1] if history else metrics["initial"]
    metrics["history"] = history
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    sg = torch.sigmoid(gates.beta.detach())
    metrics["gates"] = {
        "mean": float(sg.mean()),
        "max": float(sg.max()),
        "open_heads(>0.5)": int((sg > 0.5).sum()),
        "per_layer_mean": [round(float(x), 4) for x in sg.mean(dim=1)],
    }
    return gates, lora, metrics


def default_adapter_path(model_name: str, update: str) -> Path:
    """Where the trained adapter for ``model_name`` ships (inside the package)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_name)
    return (
        Path(__file__).resolve().parent.parent
        / "core"
        / "adapters"
        / f"{safe}.{update}.safetensors"
    )
