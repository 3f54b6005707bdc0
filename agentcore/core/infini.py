"""Infini-attention: a compressive linear-attention memory per layer and KV head.

Owns the memory matrices ``M [H_kv, D_k, D_v]`` and normalisers ``z [H_kv, D_k]`` of one
session (float32 whatever the model dtype), their update with the tokens that leave the
sliding window (the evicted chunk is the segment), the read-out for queries and the per-head
gate that mixes it with local attention::

    sigma(x) = ELU(x) + 1                     (keys and queries before RoPE)
    linear:  M += sigma(K)^T V
    delta:   M += sigma(K)^T (V - sigma(K) M / (sigma(K) z))
             z += sum_t sigma(K_t)
    read:    A_mem = sigma(Q) M / (sigma(Q) z + eps)       (zero before the first write)
    mix:     A = sigmoid(beta) * A_mem + (1 - sigmoid(beta)) * A_local

Never computes local attention (the cache does) and never trains: the gates ``beta`` (one per
layer and query head) come from an adapter made by ``agentcore train memory``
(:mod:`agentcore.train`), loaded with :meth:`MemoryGates.load`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from agentcore._atomic import atomic_path, atomic_write_bytes

__all__ = ["InfiniConfig", "InfiniMemory", "MemoryGates", "memory_fold", "memory_retrieve", "sigma"]

ADAPTER_VERSION = 1


def sigma(x: torch.Tensor) -> torch.Tensor:
    """The ELU + 1 feature map (positive, so the normaliser never changes sign)."""
    return F.elu(x) + 1.0


def memory_fold(
    M: torch.Tensor,
    z: torch.Tensor,
    k_raw: torch.Tensor,
    v: torch.Tensor,
    *,
    rule: str,
    eps: float,
    empty: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One segment's update, out of place (differentiable): returns ``(M', z')`` in float32.

    ``M: [B,H,Dk,Dv]``, ``z: [B,H,Dk]``, ``k_raw, v: [B,H,n,D]`` (pre-RoPE); any leading
    dimensions broadcast (a layer axis folds every layer at once). ``empty``: nothing was written
    yet, so the delta rule has nothing to subtract.
    """
    sk = sigma(k_raw.float())  # [B,H,n,Dk]
    vf = v.float()
    if rule == "delta" and not empty:
        vf = vf - (sk @ M) / ((sk @ z[..., None]) + eps)  # what the memory already returns
    return M + sk.transpose(-1, -2) @ vf, z + sk.sum(dim=-2)


def memory_retrieve(
    q_raw: torch.Tensor, M: torch.Tensor, z: torch.Tensor, *, eps: float
) -> torch.Tensor:
    """``A_mem = sigma(Q) M / (sigma(Q) z + eps)``; ``q_raw: [B,H_q,T,D]`` -> ``[B,H_q,T,D]`` f32.

    Query heads share their KV head's memory (GQA): ``M: [B,H_kv,Dk,Dv]``, ``z: [B,H_kv,Dk]``.
    """
    b, hq, t, d = q_raw.shape
    hkv = M.shape[1]
    sq = sigma(q_raw.float()).reshape(b, hkv, (hq // hkv) * t, d)  # a KV group's heads folded
    num = sq @ M  # [B,Hkv,GT,Dv]
    den = sq @ z[..., None] + eps  # [B,Hkv,GT,1]
    return (num / den).reshape(b, hq, t, d)


@dataclasses.dataclass(frozen=True)
class InfiniConfig:
    """Which update rule the compressive memory uses."""

    update: Literal["linear", "delta"] = "delta"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.update not in ("linear", "delta"):
            raise ValueError(
                f"InfiniConfig.update must be 'linear' or 'delta', got {self.update!r}"
            )


class MemoryGates(torch.nn.Module):
    """One learned gate per layer and query head: ``beta [L, H_q]`` (sigmoid(beta) = memory share)."""

    def __init__(self, n_layers: int, n_heads: int, init: float = -4.0) -> None:
        super().__init__()
        self.beta = torch.nn.Parameter(torch.full((n_layers, n_heads), float(init)))

    def weight(self, layer: int) -> torch.Tensor:
        """``sigmoid(beta)`` of one layer, shaped to broadcast over ``[B, H_q, T, D]``."""
        return torch.sigmoid(self.beta[layer])[None, :, None, None]

    def save(
        self,
        path: str | Path,
        *,
        config: dict[str, Any],
        metrics: dict[str, Any],
        extra: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write the adapter (safetensors) and its training config and metrics (JSON) beside it.

        ``extra``: further tensors of the adapter (``lora.A.<layer>``, ``lora.B.<layer>``).
        """
        from safetensors.torch import save_file

        p = Path(path)
        tensors = {"beta": self.beta.detach().cpu().contiguous()}
        tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
        with atomic_path(p) as tmp:
            save_file(
                tensors,
                str(tmp),
                metadata={
                    "version": str(ADAPTER_VERSION),
                    "lora_scale": str(config.get("lora_scale", 0)),
                },
            )
        meta = {
            "version": ADAPTER_VERSION,
            "config": config,
            "metrics": metrics,
            "shape": list(self.beta.shape),
        }
        atomic_write_bytes(p.with_suffix(".json"), json.dumps(meta, indent=2).encode())
        return p

    @staticmethod
    def load_lora(path: str | Path) -> list[torch.Tensor]:
        """The adapter's low-rank Q/K/V updates merged per layer (``[n_out, hidden]``), or []."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            scale = float((fh.metadata() or {}).get("lora_scale", "0"))
            names = set(fh.keys())
            out = []
            layer = 0
            while f"lora.A.{layer}" in names:
                a, b = fh.get_tensor(f"lora.A.{layer}"), fh.get_tensor(f"lora.B.{layer}")
                out.append((b.float() @ a.float()) * scale)
                layer += 1
        return out

    @classmethod
    def load(cls, path: str | Path, n_layers: int, n_heads: int) -> MemoryGates:
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(
                f"memory adapter {p} does not exist (make one with `agentcore train memory`)"
            )
        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("version") != str(ADAPTER_VERSION):
                raise ValueError(
                    f"memory adapter {p} has version {meta.get('version')}, expected {ADAPTER_VERSION}"
                )
            beta = fh.get_tensor("beta")
        if tuple(beta.shape) != (n_layers, n_heads):
            raise ValueError(
                f"memory adapter {p} is for {tuple(beta.shape)} (layers, heads); this model has "
                f"({n_layers}, {n_heads})"
            )
        gates = cls(n_layers, n_heads)
        with torch.no_grad():
            gates.beta.copy_(beta)
        return gates


class InfiniMemory:
    """The compressive memory of one session (an eviction listener of the streaming cache)."""

    def __init__(
        self,
        config: InfiniConfig,
        gates: MemoryGates,
        *,
        n_layers: int,
        n_kv_heads: int,
        head_dim: int,
        device: torch.device,
        batch: int = 1,
    ) -> None:
        self.config = config
        self.gates = gates
        self.n_kv = n_kv_heads
        self.M = torch.zeros((n_layers, batch, n_kv_heads, head_dim, head_dim), device=device)
        self.z = torch.zeros((n_layers, batch, n_kv_heads, head_dim), device=device)
        self.written = torch.zeros(n_layers, dtype=torch.long)  # tokens folded in, per layer
        self._gate_key: tuple[int, int, torch.device] | None = None
        self._gate_w: list[torch.Tensor | None] = []

    # ------------------------------------------------------------------ phases
    def memory_update(self, layer: int, k_raw: torch.Tensor, v: torch.Tensor) -> None:
        """Fold a segment into the memory. ``k_raw, v: [B,H_kv,n,D]`` (pre-RoPE)."""
        M, z = memory_fold(
            self.M[layer],
            self.z[layer],
            k_raw,
            v,
            rule=self.config.update,
            eps=self.config.eps,
            empty=int(self.written[layer]) == 0,
        )
        self.M[layer].copy_(M)
        self.z[layer].copy_(z)
        self.written[layer] += k_raw.shape[2]

    def on_evict(
        self, layer: int, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> None:
        self.memory_update(layer, k_raw, v)

    def on_evict_layers(
        self, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> None:
        """Fold every layer's evicted tokens at once: ``k_raw, v: [L,B,H_kv,n,D]``.

        Equal to :meth:`memory_update` layer by layer: a decode step runs a few batched ops, not
        a few per layer. (``empty`` only skips the delta rule's subtraction, which is exactly
        zero for a memory that holds nothing, so one flag serves every layer.)
        """
        M, z = memory_fold(
            self.M,
            self.z,
            k_raw,
            v,
            rule=self.config.update,
            eps=self.config.eps,
            empty=not bool(self.written.any()),
        )
        self.M.copy_(M)
        self.z.copy_(z)
        self.written += k_raw.shape[3]

    def memory_read(self, layer: int, q_raw: torch.Tensor) -> torch.Tensor:
        """``q_raw: [B,H_q,T,D]`` (pre-RoPE) -> ``A_mem [B,H_q,T,D]`` float32."""
        if int(self.written[layer]) == 0:
            return torch.zeros(q_raw.shape, device=q_raw.device)
        return memory_retrieve(q_raw, self.M[layer], self.z[layer], eps=self.config.eps)

    def _weights(self, device: torch.device) -> list[torch.Tensor | None]:
        """Per layer ``sigmoid(beta)`` shaped for ``[B,H_q,T,D]``, or None where every gate of
        the layer is closed; derived again only when ``beta`` changes (training, loading)."""
        beta = self.gates.beta
        key = (beta._version, id(beta), device)
        if self._gate_key != key:
            with torch.no_grad():
                ws = [self.gates.weight(layer).to(device) for layer in range(beta.shape[0])]
            self._gate_w = [w if bool(torch.any(w > 0)) else None for w in ws]
            self._gate_key = key
        return self._gate_w

    def mix(self, layer: int, q_raw: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """Gate memory read-out against local attention ``local: [B,H_q,T,D]``:
        ``w * A_mem + (1 - w) * local``, as one interpolation."""
        w = self._weights(local.device)[layer]
        if w is None:
            return local  # a closed gate (beta = -inf) leaves local attention untouched
        a_mem = self.memory_read(layer, q_raw)
        return torch.lerp(local.float(), a_mem, w).to(local.dtype)

    # ------------------------------------------------------------------ inspection & state
    def stats(self) -> dict[str, Any]:
        return {
            "update": self.config.update,
            "tokens_folded": int(self.written.max()),
            "bytes": self.M.numel() * 4 + self.z.numel() * 4,
            "gate_mean": float(torch.sigmoid(self.gates.beta.detach()).mean()),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "M": self.M.cpu().clone(),
            "z": self.z.cpu().clone(),
            "written": self.written.clone(),
            "beta": self.gates.beta.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["M"].shape != self.M.shape:
            raise ValueError(
                f"saved memory has shape {tuple(state['M'].shape)}, expected {tuple(self.M.shape)}"
            )
        self.M.copy_(state["M"].to(self.M.device))
        self.z.copy_(state["z"].to(self.z.device))
        self.written = state["written"].clone()
        self.gates = _gates_for(self.gates, state["beta"])


def _gates_for(shared: MemoryGates, beta: torch.Tensor) -> MemoryGates:
    """``shared`` when it holds ``beta`` (``[L, H_q]``), else a private copy with ``beta``.

    The engine's gates are read by every session on it: a restored session saved under other
    gates resumes with its own copy of them, never by overwriting the shared ones.
    """
    current = shared.beta.detach()
    if torch.equal(current, beta.to(current.device, current.dtype)):
        return shared
    own = MemoryGates(*beta.shape).to(current.device)
    with torch.no_grad():
        own.beta.copy_(beta)
    return own
