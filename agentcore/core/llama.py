"""The long-memory model core: a lean Llama-family forward pass over a streaming cache.

Owns the weights of a Hugging Face Llama-family causal LM (Llama, Mistral, Qwen2/3, SmolLM)
re-laid for speed (fused QKV and gate/up projections, rotary pairs interleaved) and the
per-layer forward that calls the session's cache for attention. It knows nothing about
text: it maps token ids to logits. Tokenization, sampling and sessions live elsewhere.

Phases: :meth:`CoreModel.forward` runs ``embed -> layers -> norm -> lm_head`` for up to
``chunk_size`` tokens; :meth:`CoreModel.prefill` streams any number of tokens through in
chunks (eviction between them); a decode step is a forward of one token.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agentcore._atomic import atomic_path
from agentcore._compute import on_compute
from agentcore.core import native
from agentcore.core.cache import DecodeGroup, DecodeRows, StreamingCache, StreamingConfig
from agentcore.core.infini import InfiniMemory
from agentcore.core.quant import (
    Int4Weight,
    Int8Weight,
    PackedWeight,
    int4_available,
    int4_exact,
    int4_fits,
    int8_available,
    linear,
)
from agentcore.core.recall import EvictedStore
from agentcore.core.rope import Rotary, interleave_permutation

__all__ = ["CORE_FORMAT", "CoreModel", "ModelDims"]

CORE_FORMAT = 1  # version of the re-laid weight cache written by CoreModel.save
_HELD = (Int8Weight, Int4Weight, PackedWeight)  # weights held other than as a plain tensor
# one layer's attention in a decode step: (layer, q, k, v, q and k rotated) -> [B,Hq,1,D]
_Attend = Callable[
    [int, torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None],
    torch.Tensor,
]


@dataclasses.dataclass(frozen=True)
class ModelDims:
    """Shapes of a Llama-family model."""

    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    rms_eps: float


def _meta(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape, device="meta"), requires_grad=False)


class CoreLayer(nn.Module):
    """One decoder block with fused projections. Weights only; attention goes to the cache."""

    def __init__(self, hf_layer: Any, dims: ModelDims, perm: torch.Tensor) -> None:
        super().__init__()
        attn, mlp = hf_layer.self_attn, hf_layer.mlp
        d, hq, hkv = dims.head_dim, dims.n_heads, dims.n_kv_heads

        def rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
            # permute each head's output rows to the interleaved rotary layout
            w = weight.detach().reshape(heads, d, *weight.shape[1:])
            return w[:, perm].reshape(heads * d, *weight.shape[1:])

        wq = rows(attn.q_proj.weight, hq)
        wk = rows(attn.k_proj.weight, hkv)
        wv = attn.v_proj.weight.detach()
        self.w_qkv = nn.Parameter(torch.cat([wq, wk, wv], 0).contiguous(), requires_grad=False)
        if attn.q_proj.bias is not None:
            b = torch.cat(
                [rows(attn.q_proj.bias, hq), rows(attn.k_proj.bias, hkv), attn.v_proj.bias.detach()]
            )
            self.b_qkv: nn.Parameter | None = nn.Parameter(b, requires_grad=False)
        else:
            self.b_qkv = None
        self.w_o = nn.Parameter(attn.o_proj.weight.detach().contiguous(), requires_grad=False)
        self.b_o = (
            nn.Parameter(attn.o_proj.bias.detach(), requires_grad=False)
            if getattr(attn.o_proj, "bias", None) is not None
            else None
        )
        self.w_gate_up = nn.Parameter(
            torch.cat([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()], 0).contiguous(),
            requires_grad=False,
        )
        self.w_down = nn.Parameter(mlp.down_proj.weight.detach().contiguous(), requires_grad=False)
        self.norm_in = nn.Parameter(hf_layer.input_layernorm.weight.detach(), requires_grad=False)
        self.norm_post = nn.Parameter(
            hf_layer.post_attention_layernorm.weight.detach(), requires_grad=False
        )
        # Qwen3-style per-head q/k norms (applied before RoPE; permuted like the rows)
        qn = getattr(attn, "q_norm", None)
        kn = getattr(attn, "k_norm", None)
        self.q_norm = (
            nn.Parameter(qn.weight.detach()[perm], requires_grad=False) if qn is not None else None
        )
        self.k_norm = (
            nn.Parameter(kn.weight.detach()[perm], requires_grad=False) if kn is not None else None
        )
        self.dims = dims
        self.split = (hq * d, hkv * d, hkv * d)

    @classmethod
    def _empty(
        cls, dims: ModelDims, *, bias: bool, o_bias: bool, qk_norm: bool, inter: int
    ) -> CoreLayer:
        """A layer with meta-device parameters, filled by ``load_state_dict(assign=True)``."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        d, hq, hkv, hid = dims.head_dim, dims.n_heads, dims.n_kv_heads, dims.hidden
        n_qkv = (hq + 2 * hkv) * d
        layer.w_qkv = _meta(n_qkv, hid)
        layer.b_qkv = _meta(n_qkv) if bias else None
        layer.w_o = _meta(hid, hq * d)
        layer.b_o = _meta(hid) if o_bias else None
        layer.w_gate_up = _meta(2 * inter, hid)
        layer.w_down = _meta(hid, inter)
        layer.norm_in = _meta(hid)
        layer.norm_post = _meta(hid)
        layer.q_norm = _meta(d) if qk_norm else None
        layer.k_norm = _meta(d) if qk_norm else None
        layer.dims = dims
        layer.split = (hq * d, hkv * d, hkv * d)
        return layer

    def project_qkv(
        self, h: torch.Tensor, delta: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h: [B,T,hidden]`` -> ``q: [B,Hq,T,D]``, ``k, v: [B,Hkv,T,D]`` (pre-RoPE).

        ``delta: [B,T,(Hq+2Hkv)*D]`` is added to the fused projection (low-rank adapters in training).
        """
        b, t, _ = h.shape
        dims = self.dims
        qkv = linear(h, self.w_qkv, self.b_qkv)
        if delta is not None:
            qkv = qkv + delta
        q, k, v = qkv.split(self.split, dim=-1)
        q = q.view(b, t, dims.n_heads, dims.head_dim).transpose(1, 2)
        k = k.view(b, t, dims.n_kv_heads, dims.head_dim).transpose(1, 2)
        v = v.view(b, t, dims.n_kv_heads, dims.head_dim).transpose(1, 2)
        if self.q_norm is not None and self.k_norm is not None:
            q = F.rms_norm(q, (dims.head_dim,), self.q_norm, dims.rms_eps)
            k = F.rms_norm(k, (dims.head_dim,), self.k_norm, dims.rms_eps)
        return q, k, v

    def native_decode(self) -> bool:
        """Whether this layer's decode step can run on the native decode ops: every projection
        int8 on the native kernel (float32 scales) and no per-head q/k norms."""
        return self.q_norm is None and all(
            isinstance(w, Int8Weight) and w.scale.dtype == torch.float32 and not w.cast
            for w in (self.w_qkv, self.w_o, self.w_gate_up, self.w_down)
        )

    def decode_native(
        self, ops: Any, x: torch.Tensor, attend: _Attend, index: int, freqs: torch.Tensor
    ) -> torch.Tensor:
        """One decode step of this layer (``x: [B,1,hidden]`` float32) on the native ops
        (:mod:`agentcore.core.native`, ``decode.cpp``): norm, Q/K/V and rotation in one call
        (``freqs``: ``[D/2, 2]`` for every row or ``[B, D/2, 2]``, one rotation per row), the
        attention (``attend``: a cache's, with its own bookkeeping, or :class:`DecodeRows`',
        one session per row; native attention kernel), then the output projection and MLP with
        both residuals in one call. Same math as the PyTorch path."""
        b = x.shape[0]
        dims = self.dims
        x2 = x.view(b, -1)
        wq = self.w_qkv
        assert isinstance(wq, Int8Weight)
        q, k, v, q_rot, k_rot = native.call(
            "decode_qkv", ops.decode_qkv, x2, self.norm_in, dims.rms_eps, wq.q, wq.scale,
            self.b_qkv, freqs, dims.n_heads, dims.n_kv_heads,
        )  # fmt: skip
        a = attend(index, q, k, v, (q_rot, k_rot))
        wo, wgu, wd = self.w_o, self.w_gate_up, self.w_down
        assert isinstance(wo, Int8Weight)
        assert isinstance(wgu, Int8Weight)
        assert isinstance(wd, Int8Weight)
        out = native.call(
            "decode_mlp", ops.decode_mlp, x2, a.reshape(b, -1), wo.q, wo.scale, self.b_o,
            self.norm_post, dims.rms_eps, wgu.q, wgu.scale, wd.q, wd.scale,
        )  # fmt: skip
        return out.view(b, 1, -1)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        h = F.rms_norm(x, (x.shape[-1],), self.norm_post, self.dims.rms_eps)
        gate, up = linear(h, self.w_gate_up).chunk(2, dim=-1)
        return linear(F.silu(gate) * up, self.w_down)


@dataclasses.dataclass
class ProbedChunk:
    """What a probe forward of a chunk computed (:meth:`CoreModel.probe`): each layer's keys
    and values ``[B,Hkv,T,D]`` up to layer ``last``, at ``last`` the residual stream ``x``
    and the attention output ``a`` it stopped at, and the residual stream ``x_in`` entering
    layer ``resume`` (``RecallConfig.read_from``, where a question that recalls goes on from
    the probe's layers below it)."""

    last: int
    resume: int = 0
    kv: list[tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=list)
    x: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    a: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    x_in: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))


class CoreModel(nn.Module):
    """Token ids -> logits over a :class:`StreamingCache`, for any Llama-family HF model."""

    # decode steps of several sessions attend in one call while no row holds more keys than
    # this (:class:`~agentcore.core.cache.DecodeGroup`); 0: each session attends alone
    group_keys: int = 256
    # decode steps of several sessions attend one session per row in one native call per layer
    # (float32 or bf16 caches; :class:`~agentcore.core.cache.DecodeRows`); False: as without
    # the native module (benchmarks)
    native_rows: bool = True
    # a chunk keeps the layers its probe computed (all where it recalls nothing, those below
    # RecallConfig.read_from where it recalls) instead of computing them again
    # (:meth:`StreamingCache.probe_kept`); False: computes them (benchmarks, tests)
    reuse_probe: bool = True

    def __init__(self, hf_model: Any) -> None:
        super().__init__()
        cfg = hf_model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        n_heads = text_cfg.num_attention_heads
        head_dim = getattr(text_cfg, "head_dim", None) or text_cfg.hidden_size // n_heads
        self.dims = ModelDims(
            n_layers=text_cfg.num_hidden_layers,
            hidden=text_cfg.hidden_size,
            n_heads=n_heads,
            n_kv_heads=getattr(text_cfg, "num_key_value_heads", None) or n_heads,
            head_dim=head_dim,
            vocab=text_cfg.vocab_size,
            max_positions=getattr(text_cfg, "max_position_embeddings", 2048),
            rms_eps=float(text_cfg.rms_norm_eps),
        )
        base = hf_model.model
        perm = interleave_permutation(head_dim)
        self.embed = nn.Parameter(base.embed_tokens.weight.detach(), requires_grad=False)
        self.layers = nn.ModuleList(CoreLayer(layer, self.dims, perm) for layer in base.layers)
        self.norm = nn.Parameter(base.norm.weight.detach(), requires_grad=False)
        lm_head = hf_model.get_output_embeddings()
        if lm_head is None or lm_head.weight is base.embed_tokens.weight:
            self.lm_head = self.embed
        else:
            self.lm_head = nn.Parameter(lm_head.weight.detach(), requires_grad=False)
        rotary = base.rotary_emb
        self.rotary = Rotary(rotary.inv_freq, float(getattr(rotary, "attention_scaling", 1.0)))
        self.embed_scale = float(getattr(text_cfg, "embedding_multiplier", 1.0) or 1.0)
        self.last_logits: torch.Tensor | None = None  # set by score(): logits after the last token
        # set_qkv_update's bases
        self._qkv_bases: dict[int, torch.Tensor | Int8Weight | Int4Weight | PackedWeight] = {}

    # ------------------------------------------------------------------ core cache
    def save(self, path: Path) -> None:
        """Write the re-laid weights (and RoPE table) so later loads skip the HF model."""
        from safetensors.torch import save_file

        if self.quantized:
            raise ValueError(
                f"an {self.weights} core cannot be saved: save the float model it came from"
            )
        tied = self.lm_head is self.embed
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if tied:
            tensors.pop("lm_head", None)
        tensors["rotary.inv_freq"] = self.rotary.inv_freq.to(torch.float32)
        first: CoreLayer = self.layers[0]  # type: ignore[assignment]
        meta = {
            "format": str(CORE_FORMAT),
            "tied": "1" if tied else "0",
            "scaling": str(self.rotary.scaling),
            "dims": json.dumps(dataclasses.asdict(self.dims)),
            "embed_scale": str(self.embed_scale),
            "flags": json.dumps(
                {
                    "bias": first.b_qkv is not None,
                    "o_bias": first.b_o is not None,
                    "qk_norm": first.q_norm is not None,
                    "inter": int(first.w_down.shape[1]),
                }
            ),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: Path) -> CoreModel:
        """Rebuild a core saved by :meth:`save` (no transformers model is built)."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != str(CORE_FORMAT):
                raise ValueError(
                    f"{path}: core cache format {meta.get('format')}, expected {CORE_FORMAT}"
                )
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
        dims = ModelDims(**json.loads(meta["dims"]))
        flags = json.loads(meta["flags"])
        core = cls.__new__(cls)
        nn.Module.__init__(core)
        core.dims = dims
        core.embed = _meta(dims.vocab, dims.hidden)
        core.layers = nn.ModuleList(CoreLayer._empty(dims, **flags) for _ in range(dims.n_layers))
        core.norm = _meta(dims.hidden)
        tied = meta.get("tied") == "1"
        core.lm_head = core.embed if tied else _meta(dims.vocab, dims.hidden)
        core.embed_scale = float(meta.get("embed_scale", "1.0"))
        core.last_logits = None
        core._qkv_bases = {}
        inv_freq = tensors.pop("rotary.inv_freq")
        if tied:
            tensors["lm_head"] = tensors["embed"]
        params = {k: nn.Parameter(v, requires_grad=False) for k, v in tensors.items()}
        core.load_state_dict(params, assign=True, strict=True)
        if tied:
            core.lm_head = core.embed
        core.rotary = Rotary(inv_freq, float(meta.get("scaling", "1.0")))
        return core

    # ------------------------------------------------------------------ int8 / int4 weights
    _PROJECTIONS = ("w_qkv", "w_o", "w_gate_up", "w_down")

    @property
    def quantized(self) -> bool:
        """Whether the projections are held as anything but plain float tensors: int8, int4 or
        packed (see :mod:`agentcore.core.quant`); such a core is not saved or trained."""
        return self.weights != "float"

    @property
    def weights(self) -> str:
        """How the projections are held: ``"float"``, ``"packed"``, ``"int8"`` or ``"int4"``."""
        first: CoreLayer = self.layers[0]  # type: ignore[assignment]
        if any(isinstance(vars(first).get(name), Int4Weight) for name in self._PROJECTIONS):
            return "int4"
        if isinstance(self.lm_head, PackedWeight):
            return "packed"
        return "int8" if isinstance(self.lm_head, Int8Weight) else "float"

    def pack_float(self) -> None:
        """Hold every projection and the LM head as float32 in oneDNN's blocked layout
        (:class:`~agentcore.core.quant.PackedWeight`; CPU, float32). The math stays float32;
        a tied LM head gets a packed copy (the embedding table stays for the lookup)."""
        if self.quantized:
            if self.weights == "packed":
                return
            raise ValueError(f"this core already holds {self.weights} weights")
        if self.device.type != "cpu" or self.dtype != torch.float32:
            raise ValueError(
                f"packed weights are float32 on the CPU; this model is {self.dtype} on "
                f"{self.device}"
            )
        for layer in self.layers:
            for name in self._PROJECTIONS:
                packed = PackedWeight(getattr(layer, name))
                delattr(layer, name)  # drop the plain Parameter, keep the packed form
                object.__setattr__(layer, name, packed)
        head = PackedWeight(self.lm_head)
        delattr(self, "lm_head")  # the name only: a tied table stays registered as ``embed``
        object.__setattr__(self, "lm_head", head)

    def quantize_int8(self, dense_rows: int | None = None, group_size: int | None = None) -> None:
        """Store every projection and the LM head as per-row int8 (CPU; bf16 activations on
        PyTorch's kernel, float32 on agentcore's native one where it runs, see
        :mod:`agentcore.core.native`).

        Embeddings, norms, biases and the KV cache keep the model's dtype. A quantized core
        cannot be saved (the float cache file is the source of truth) and is not trained.
        ``dense_rows``: batches of that many rows or more (many sessions' decode steps) run on a
        bf16 copy of the int8 values (see :class:`~agentcore.core.quant.Int8Weight`); None: the
        int8 kernel for every batch up to its limit. ``group_size`` (float32 on the native
        kernel): one scale per group of that many inputs instead of per row, for every weight
        whose inputs it divides (the others keep a scale per row).
        """
        if self.quantized:
            return
        if self.device.type != "cpu":
            raise ValueError(f"int8 weights are for the CPU; this model is on {self.device}")
        if not int8_available():
            raise RuntimeError("this PyTorch build has no int8-weight matmul (_weight_int8pack_mm)")
        for layer in self.layers:
            for name in self._PROJECTIONS:
                w = getattr(layer, name)
                packed = Int8Weight(w, dense_rows=dense_rows, group_size=_divides(group_size, w))
                delattr(layer, name)  # drop the float Parameter, keep the int8 form
                object.__setattr__(layer, name, packed)
        head = Int8Weight(
            self.lm_head, dense_rows=dense_rows, group_size=_divides(group_size, self.lm_head)
        )
        delattr(self, "lm_head")
        object.__setattr__(self, "lm_head", head)

    def quantize_int4(self) -> None:
        """Store every projection as int4 with a bf16 scale and zero per group of 32 inputs, and
        the LM head as per-row int8 (CPU; activations bf16 or float32, see :class:`Int4Weight`).

        The head stays int8: in GGUF files it is usually 8-bit (SmolLM2's is Q8_0), and int4
        there cost 6% perplexity on SmolLM2 where int4 projections cost nothing (they are Q4_1
        in the file, so int4 holds them as they were; docs/benchmarks/dtype.md). A projection
        whose shape the int4 kernel does not take (rows not a multiple of 16, inputs not of
        32) stays as it is. Embeddings, norms, biases and the KV cache keep the model's dtype;
        as with int8, the core cannot be saved and is not trained.
        """
        if self.quantized:
            if self.weights == "int4":
                return
            raise ValueError(f"this core already holds {self.weights} weights")
        if self.device.type != "cpu":
            raise ValueError(f"int4 weights are for the CPU; this model is on {self.device}")
        if self.dtype not in (torch.bfloat16, torch.float32):
            raise ValueError(f"int4 weights need bfloat16 or float32 activations, not {self.dtype}")
        if not int4_available():
            raise RuntimeError(
                "this PyTorch build has no CPU int4-weight matmul (_weight_int4pack_mm_for_cpu)"
            )
        for layer in self.layers:
            for name in self._PROJECTIONS:
                w = getattr(layer, name)
                if not int4_fits(*w.shape):
                    continue
                packed = Int4Weight(w)
                delattr(layer, name)  # drop the float Parameter, keep the int4 form
                object.__setattr__(layer, name, packed)
        if int8_available():
            head = Int8Weight(self.lm_head, kernel_dtype=torch.bfloat16)
            delattr(self, "lm_head")
            object.__setattr__(self, "lm_head", head)

    def int4_exact(self) -> bool:
        """Whether int4 holds this model's projections as they are: the first layer's
        projections sit on a 4-bit grid of groups of 32 (a GGUF whose projections are Q4_0 /
        Q4_1, such as SmolLM2's; see :func:`~agentcore.core.quant.int4_exact`)."""
        if self.quantized or not int4_available():
            return False
        first: CoreLayer = self.layers[0]  # type: ignore[assignment]
        with torch.no_grad():
            return all(int4_exact(getattr(first, name)) for name in self._PROJECTIONS)

    def add_to_qkv(self, layer_index: int, delta: torch.Tensor) -> None:
        """Add ``delta: [n_qkv, hidden]`` to one layer's fused Q/K/V weight (adapter merge)."""
        layer: CoreLayer = self.layers[layer_index]  # type: ignore[assignment]
        w = layer.w_qkv
        if isinstance(w, _HELD):
            object.__setattr__(layer, "w_qkv", self._held_plus(w, delta))
            return
        with torch.no_grad():
            w.add_(delta.to(w.device, w.dtype))

    def _held_plus(
        self, w: Int8Weight | Int4Weight | PackedWeight, delta: torch.Tensor
    ) -> Int8Weight | PackedWeight | torch.Tensor:
        """``w + delta`` for a weight held as int8, int4 or packed (see the ``_*_plus`` helpers)."""
        if isinstance(w, Int8Weight):
            return _int8_plus(w, delta)
        if isinstance(w, Int4Weight):
            return _int4_plus(w, delta, self.dtype)
        return _packed_plus(w, delta)

    def set_qkv_update(self, layer_index: int, delta: torch.Tensor | None) -> None:
        """Make one layer's fused Q/K/V weight its own weight plus ``delta: [n_qkv, hidden]``
        (None: its own weight again). The weight before the first update is kept, so a second
        update replaces the first instead of adding to it; callers hold the forward lock."""
        layer: CoreLayer = self.layers[layer_index]  # type: ignore[assignment]
        base = self._qkv_bases.get(layer_index)
        if base is None:
            if delta is None:
                return  # never updated: already its own weight
            w = layer.w_qkv
            base = w if isinstance(w, _HELD) else w.detach().clone()
            self._qkv_bases[layer_index] = base
        if isinstance(base, _HELD):
            merged = base if delta is None else self._held_plus(base, delta)
            object.__setattr__(layer, "w_qkv", merged)
            return
        w = layer.w_qkv
        assert isinstance(w, torch.Tensor)
        with torch.no_grad():
            if delta is None:
                w.copy_(base)
            else:
                w.copy_((base.float() + delta.to(base.device, torch.float32)).to(w.dtype))

    def weight_bytes(self, *, batch_copies: bool = True) -> int:
        """Bytes the model's weights take as held now (int8 and int4 counted at their size).
        ``batch_copies=False`` leaves out the bf16 copies int8 weights build for batches
        (:meth:`Int8Weight.dense_nbytes`): what one decode step reads."""
        total = sum(p.numel() * p.element_size() for p in self.parameters())
        for module in [self, *self.layers]:
            for name in (*self._PROJECTIONS, "lm_head"):
                v = vars(module).get(name)
                if isinstance(v, Int8Weight):
                    total += v.nbytes() + (v.dense_nbytes() if batch_copies else 0)
                elif isinstance(v, (Int4Weight, PackedWeight)):
                    total += v.nbytes()
                elif isinstance(v, torch.Tensor):  # an int4 Q/K/V weight with an update merged
                    total += v.numel() * v.element_size()
        return total

    @property
    def device(self) -> torch.device:
        return self.embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    def new_cache(
        self,
        config: StreamingConfig | None = None,
        batch: int = 1,
        recall: EvictedStore | None = None,
        memory: InfiniMemory | None = None,
    ) -> StreamingCache:
        """A fresh, empty streaming cache for this model, optionally with recall and memory."""
        cache = StreamingCache(
            config or StreamingConfig(),
            n_layers=self.dims.n_layers,
            n_kv_heads=self.dims.n_kv_heads,
            head_dim=self.dims.head_dim,
            rotary=self.rotary,
            device=self.device,
            dtype=self.dtype,
            batch=batch,
            recall=recall,
            memory=memory,
        )
        cache.set_query_heads(self.dims.n_heads)
        return cache

    @on_compute
    @torch.inference_mode()
    def forward(
        self,
        ids: torch.Tensor,
        cache: StreamingCache,
        logits: str = "last",
        probed: ProbedChunk | None = None,
    ) -> torch.Tensor:
        """``ids: [B,T]`` (T <= chunk_size) -> logits ``[B,T,V]`` (``"all"``) or ``[B,1,V]`` (``"last"``).
        ``probed``: what :meth:`probe` of this chunk computed, kept where the forward reads
        what the probe read (see :meth:`forward_hidden`)."""
        return self.forward_hidden(ids, cache, logits, probed=probed)

    @on_compute
    @torch.inference_mode()
    def complete_recall_block(self, cache: StreamingCache) -> None:
        """:meth:`StreamingCache.complete_recall_block`, on the thread and in the mode the
        recall store's tensors are written in."""
        cache.complete_recall_block()

    @on_compute
    @torch.inference_mode()
    def probe(self, ids: torch.Tensor, cache: StreamingCache) -> ProbedChunk:
        """A dry forward of the chunk ``ids: [B,T]`` up to the last layer recall probes: the
        recall store sees the chunk's queries, the cache stays as it was (see
        :meth:`StreamingCache.begin`). The forward of the same chunk should follow, given what
        this returns."""
        assert cache.recall is not None
        probed = ProbedChunk(last=max(cache.recall.probes), resume=cache.recall.config.read_from)
        self.forward_hidden(ids, cache, "none", probe_until=probed.last, probed=probed)
        return probed

    def forward_hidden(
        self,
        ids: torch.Tensor,
        cache: StreamingCache | Sequence[StreamingCache],
        logits: str = "last",
        probe_until: int | None = None,
        probed: ProbedChunk | None = None,
    ) -> torch.Tensor:
        """The forward pass without the inference-mode guard (training wraps it with grads).
        ``probe_until``: a dry probe forward that stops after that layer (see :meth:`probe`),
        keeping each layer's keys and values and where it stopped in ``probed``. Without it,
        ``probed`` is that probe of the same chunk: the layers where the cache reads what the
        probe read (:meth:`StreamingCache.probe_kept`: all up to the probe's last where the
        chunk recalls nothing, those below ``RecallConfig.read_from`` where it recalls) are
        not computed again (the same ops on the same inputs: the result is the same bit for
        bit); their keys and values are stored.
        ``cache``: one cache for the whole batch, or one per row of ``ids`` (sessions of their
        own, batched: projections and MLP run on every row at once, attention row by row)."""
        eps = self.dims.rms_eps
        x = F.embedding(ids.to(self.device), self.embed)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        caches = [cache] if isinstance(cache, StreamingCache) else list(cache)
        for j, c in enumerate(caches):  # one cache per row, or one for the batch (row 0 read)
            c.begin(ids.shape[1], probe=probe_until is not None, ids=ids[min(j, len(ids) - 1)])
        b, t, _ = x.shape
        layers: list[CoreLayer] = list(self.layers)  # type: ignore[arg-type]
        ops = _decode_ops(x, caches, probe_until)
        attend: _Attend | None = None
        freqs: torch.Tensor | None = None
        native_layers = [ops is not None and la.native_decode() for la in layers]
        rows = None  # several sessions' decode steps, each row's attention on its own cache
        if len(caches) > 1 and probe_until is None and self.native_rows:
            rows = None if torch.is_grad_enabled() else DecodeRows.plan(caches)
        if ops is not None and len(caches) == 1:
            attend, freqs = caches[0].attend, torch.view_as_real(caches[0].step_freqs())
        elif rows is not None and ops is not None:  # and the rest of the layer native too
            attend, freqs = rows.attend, rows.freqs()
        # several sessions' decode steps without the native attention: their keys side by side
        grouped = rows is None and len(caches) > 1 and probe_until is None and self.group_keys > 0
        group = DecodeGroup.plan(caches, self.group_keys) if grouped else None
        kept = 0  # leading layers taken from the probe of this chunk
        if probed is not None and probe_until is None and self.reuse_probe and len(caches) == 1:
            kept = min(caches[0].probe_kept(), probed.last + 1)
        keep = probed if probe_until is not None else None  # a probe keeps what it computes
        for i, layer in enumerate(layers):
            if attend is not None and freqs is not None and native_layers[i]:
                x = layer.decode_native(ops, x, attend, i, freqs)
                continue
            if keep is not None and i == keep.resume:
                keep.x_in = x
            if i < kept:
                assert probed is not None
                caches[0].store_probed(i, *probed.kv[i])
                if i < probed.last:
                    if i + 1 == kept:  # the next layer reads the recalled blocks
                        x = probed.x_in
                    continue
                x, a = probed.x, probed.a
            else:
                a = self._attend_layer(layer, i, x, caches, rows or group, keep)
            if i == probe_until:
                assert keep is not None
                keep.x, keep.a = x, a
                break
            x = x + linear(a.transpose(1, 2).reshape(b, t, -1), layer.w_o, layer.b_o)
            x = x + layer.mlp(x)
        if group is not None:
            group.commit()
        for c in caches:
            c.end()
        if probe_until is not None:
            return x[:, :0, :0]
        if logits == "last":
            x = x[:, -1:]
        elif logits == "none":
            return x[:, :0, :0]
        x = F.rms_norm(x, (x.shape[-1],), self.norm, eps)
        return linear(x, self.lm_head).float()

    def _attend_layer(
        self,
        layer: CoreLayer,
        i: int,
        x: torch.Tensor,
        caches: list[StreamingCache],
        group: DecodeRows | DecodeGroup | None,
        keep: ProbedChunk | None,
    ) -> torch.Tensor:
        """Layer ``i``'s attention output ``[B,Hq,T,D]`` for the residual stream ``x`` (the
        PyTorch path; ``group``: several sessions' decode steps attending together); a probe's
        keys and values are kept in ``keep``."""
        h = F.rms_norm(x, (x.shape[-1],), layer.norm_in, self.dims.rms_eps)
        q, k, v = layer.project_qkv(h)
        if keep is not None:
            keep.kv.append((k, v))
        if len(caches) == 1:
            return caches[0].attend(i, q, k, v)  # [B,Hq,T,D]
        if group is not None:
            return group.attend(i, q, k, v)  # [B,Hq,1,D]
        return torch.cat(  # row j is its own session
            [c.attend(i, q[j : j + 1], k[j : j + 1], v[j : j + 1]) for j, c in enumerate(caches)]
        )

    @on_compute
    @torch.inference_mode()
    def score(
        self, ids: torch.Tensor, cache: StreamingCache, first_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stream ``ids: [1,N]`` through the cache and return each token's log-probability ``[N]``.

        Token ``i`` is scored by the logits after token ``i-1``; the first token uses
        ``first_logits`` (the session's next-token logits) when given, else gets NaN. Memory
        stays bounded: logits are reduced chunk by chunk, never kept for the whole input.
        """
        size = cache.config.chunk_size
        n = ids.shape[1]
        out = torch.full((n,), float("nan"))
        prev = first_logits
        for s in range(0, n, size):
            chunk = ids[:, s : s + size]
            logits = self.forward(chunk, cache, logits="all")[0]  # [T,V]
            logp = torch.log_softmax(logits.float(), dim=-1)
            t = chunk.shape[1]
            targets = chunk[0].to(logp.device)
            if t > 1:
                out[s + 1 : s + t] = logp[:-1].gather(1, targets[1:, None])[:, 0].cpu()
            if prev is not None:
                out[s] = torch.log_softmax(prev.float(), dim=-1)[int(chunk[0, 0])].cpu()
            prev = logits[-1]
        self.last_logits = prev
        return out

    def prefill(
        self,
        ids: torch.Tensor,
        cache: StreamingCache,
        logits: str = "last",
        lock: AbstractContextManager[Any] | None = None,
    ) -> torch.Tensor:
        """Stream ``ids: [B,N]`` of any length through the cache in chunks.

        Returns logits of the last token ``[B,1,V]`` (``"last"``) or of every token
        ``[B,N,V]`` on the CPU (``"all"``, for perplexity). ``lock`` (the engine's forward
        lock) is held per chunk, so other sessions' forwards run between the chunks.
        """
        size = cache.config.chunk_size
        n = ids.shape[1]
        if n == 0:
            raise ValueError("prefill needs at least one token")
        outs: list[torch.Tensor] = []
        last = torch.empty(0)
        for s in range(0, n, size):
            chunk = ids[:, s : s + size]
            is_last = s + size >= n
            mode = "all" if logits == "all" else ("last" if is_last else "none")
            with lock if lock is not None else nullcontext():
                probed = None
                if is_last and cache.recall is not None:  # what has just left the window
                    self.complete_recall_block(cache)  # can be recalled by this input
                if is_last and cache.wants_probe(chunk.shape[1]):
                    # the new input's end (a question) picks the recall
                    probed = self.probe(chunk, cache)
                out = self.forward(chunk, cache, logits=mode, probed=probed)
            if logits == "all":
                outs.append(out.cpu())
            elif is_last:
                last = out
        return torch.cat(outs, dim=1) if logits == "all" else last


def _decode_ops(
    x: torch.Tensor, caches: Sequence[StreamingCache], probe_until: int | None
) -> Any | None:
    """The native decode ops where this forward is a decode step (one session's, or one per
    row of several sessions, :class:`DecodeRows`) on float32 CPU activations (no gradients,
    not a probe), else None; each layer still checks its weights
    (:meth:`CoreLayer.native_decode`)."""
    if (
        probe_until is not None
        or x.shape[1] != 1
        or x.dtype != torch.float32
        or x.device.type != "cpu"
        or torch.is_grad_enabled()
    ):
        return None
    return native.decode_ops()


def _divides(group_size: int | None, weight: torch.Tensor) -> int | None:
    """``group_size`` where it divides the weight's inputs, else None (a scale per row)."""
    return group_size if group_size and weight.shape[1] % group_size == 0 else None


def _int8_plus(w: Int8Weight, delta: torch.Tensor) -> Int8Weight:
    """``w + delta`` re-quantized (``delta: [n_out, n_in]``)."""
    merged = w.dequantize(torch.float32) + delta.float()
    return Int8Weight(merged.to(w.scale.dtype), dense_rows=w.dense_rows, group_size=w.group_size)


def _packed_plus(w: PackedWeight, delta: torch.Tensor) -> PackedWeight:
    """``w + delta`` packed again (``delta: [n_out, n_in]``)."""
    return PackedWeight(w.dequantize() + delta.to(torch.float32))


def _int4_plus(w: Int4Weight, delta: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``w + delta`` as a dense ``dtype`` weight (``delta: [n_out, n_in]``). Not re-quantized:
    an adapter's update is far smaller than an int4 step (1/15 of a group's range) and would
    round away, so a layer with an update holds its Q/K/V weight in the model's dtype."""
    return (w.dequantize(torch.float32) + delta.to(torch.float32)).to(dtype)
