"""The engine: one loaded model shared by many sessions.

Owns the :class:`~agentcore.core.llama.CoreModel`, its codec and the device it runs on,
and creates or restores :class:`~agentcore.core.session.Session` objects. Never holds
per-conversation state: that is the session's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch

from agentcore import _compute as compute
from agentcore.core.batch import DecodeBatcher, FairLock
from agentcore.core.cache import StreamingCache, StreamingConfig
from agentcore.core.codec import Codec, HFCodec
from agentcore.core.infini import InfiniConfig, MemoryGates
from agentcore.core.llama import CoreModel
from agentcore.core.loader import (
    ModelSource,
    choose_device,
    choose_dtype,
    choose_weights,
    core_cache_path,
    cpu_has_bf16,
    load_model,
    load_tokenizer,
    resolve_model,
    source_directory,
)
from agentcore.core.quant import DENSE_ROWS, INT8_GROUP
from agentcore.core.recall import RecallConfig
from agentcore.core.session import Session, SessionConfig
from agentcore.core.state import iter_history, load_session, save_session

__all__ = ["Engine", "EngineInfo"]


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """What a user sees about the running model."""

    name: str
    source: str
    device: str
    dtype: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    load_seconds: float
    weights: str = "float"


class Engine:
    """A model ready to run sessions, from any number of threads: one forward at a time (a
    chunk of a prompt, or the decode steps of every session waiting for one, batched)."""

    def __init__(
        self,
        core: CoreModel,
        codec: Codec,
        *,
        name: str = "model",
        source: ModelSource | None = None,
        load_seconds: float = 0.0,
    ) -> None:
        self.core = core
        self.codec = codec
        self.name = name
        self.source = source
        self.load_seconds = load_seconds
        # One forward at a time on this model (sessions on different threads share it): a
        # batch of decode steps, or one chunk of a prompt; never a whole request. Granted in
        # arrival order, so a session waiting behind a long prompt is next after its chunk.
        self.lock = FairLock()
        # decode steps asked for by sessions on different threads run together (group commit)
        self.batcher = DecodeBatcher(core, self.lock)
        self._gates: MemoryGates | None = None
        # the compressive memory new default sessions get (set by load_memory_adapter)
        self.default_infini: InfiniConfig | None = None
        # the evicted-context store new default sessions get (``--recall``; None: off)
        self.default_recall: RecallConfig | None = None

    @property
    def device(self) -> torch.device:
        """The device the model runs on (where sessions keep their caches)."""
        return self.core.device

    def decode(self, cache: StreamingCache, token: int) -> torch.Tensor:
        """One decode step of one session: ``token`` into ``cache``; the next-token logits
        ``[V]``. Steps that sessions on other threads ask for meanwhile share the forward."""
        return self.batcher.step(cache, token)

    def generating(self) -> AbstractContextManager[None]:
        """Held by a session while it generates (see :meth:`DecodeBatcher.generating`)."""
        return self.batcher.generating()

    def memory_gates(self) -> MemoryGates:
        """The Infini-attention gates sessions use (closed-ish, beta=-4, until an adapter loads)."""
        if self._gates is None:
            self._gates = MemoryGates(self.core.dims.n_layers, self.core.dims.n_heads)
        return self._gates

    def load_memory_adapter(self, path: str | os.PathLike[str]) -> None:
        """Load gates trained by ``agentcore train memory`` for this model.

        An adapter trained with low-rank Q/K/V adapters also updates the model's projections
        (merged here, under the forward lock): every session of this engine then uses them.
        Loading again replaces the previous adapter's update; it never adds a second one.
        """
        n_layers = self.core.dims.n_layers
        gates = MemoryGates.load(Path(path), n_layers, self.core.dims.n_heads)
        updates = MemoryGates.load_lora(Path(path))
        if updates and len(updates) != n_layers:
            raise ValueError(
                f"memory adapter {path} has adapters for {len(updates)} layers, the model has "
                f"{n_layers}"
            )
        meta = Path(path).with_suffix(".json")
        update = "delta"
        if meta.is_file():
            update = json.loads(meta.read_text()).get("config", {}).get("update", "delta")
        infini = InfiniConfig(update=update)  # type: ignore[arg-type] # validated there
        with self.lock:  # no forward runs on half-merged weights
            for i in range(n_layers):
                self.core.set_qkv_update(i, updates[i] if updates else None)
            self._gates = gates.to(self.core.device)
            self.default_infini = infini

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        threads: int | None = None,
        weights: str | None = None,
    ) -> Engine:
        """Load a Llama-family model (the default SmolLM2 when ``model`` is None).

        ``weights``: ``"int8"`` stores the projections as int8 (CPU with bf16 activations),
        ``"int4"`` as int4 in groups of 32 (CPU with bf16 or float32 activations), ``"float"``
        keeps them in ``dtype``, ``"packed"`` as float32 in oneDNN's blocked layout (CPU,
        float32); ``"auto"``/None picks what measured fastest at unchanged
        perplexity (:func:`~agentcore.core.loader.choose_weights`). ``threads``: the CPU
        threads of the model's work, which runs on agentcore's compute thread, as loading does
        (:mod:`agentcore._compute`; default: PyTorch's count when that thread starts).
        """
        if threads:
            compute.use_threads(threads)
        return compute.run(cls._load, model, device, dtype, weights)

    @classmethod
    def _load(
        cls,
        model: str | os.PathLike[str] | None,
        device: str | None,
        dtype: str | torch.dtype | None,
        weights: str | None,
    ) -> Engine:
        start = time.perf_counter()
        source = resolve_model(model)
        core_file = core_cache_path(source)
        dev = choose_device(device)
        if core_file is not None and core_file.is_file():
            tokenizer = load_tokenizer(source_directory(source))
            core = CoreModel.load(core_file)
        elif core_file is None:
            loaded = load_model(model, device=device, dtype=dtype)
            core, tokenizer = CoreModel(loaded.hf_model), loaded.tokenizer
        else:  # first load: build the core from float32 weights and cache it for next time
            loaded = load_model(model, device="cpu", dtype=torch.float32)
            core, tokenizer = CoreModel(loaded.hf_model), loaded.tokenizer
            core_file.parent.mkdir(parents=True, exist_ok=True)
            core.save(core_file)
        core = core.to(device=dev, dtype=choose_dtype(dev, dtype))
        chosen = choose_weights(dev, core.dtype, weights)
        if chosen == "int8" and core.dtype == torch.float32:  # the native kernel, per group
            core.quantize_int8(group_size=INT8_GROUP)
        elif chosen == "int8":  # batches of many sessions on a bf16 copy where bf16 is native
            core.quantize_int8(dense_rows=DENSE_ROWS if cpu_has_bf16() else None)
        elif chosen == "int4":
            core.quantize_int4()
        elif chosen == "packed":
            core.pack_float()
        return cls(
            core,
            HFCodec(tokenizer),
            name=source.name,
            source=source,
            load_seconds=time.perf_counter() - start,
        )

    @classmethod
    def from_hf(cls, hf_model: Any, codec: Codec, name: str = "model") -> Engine:
        """Wrap an already-built HF model (tests use tiny random-weight configs)."""
        return cls(CoreModel(hf_model.eval()), codec, name=name)

    def info(self) -> EngineInfo:
        d = self.core.dims
        return EngineInfo(
            name=self.name,
            source=self.source.location if self.source else "in-memory",
            device=str(self.device),
            dtype=str(self.core.dtype).replace("torch.", ""),
            n_layers=d.n_layers,
            n_heads=d.n_heads,
            n_kv_heads=d.n_kv_heads,
            head_dim=d.head_dim,
            vocab=d.vocab,
            max_positions=d.max_positions,
            load_seconds=self.load_seconds,
            weights=self.core.weights,
        )

    def default_streaming(self) -> StreamingConfig:
        """Sinks + window of a default session: the model card's ``default_window`` (2048 for
        SmolLM2-135M, 4096 for Qwen2.5-Coder-0.5B; see :mod:`agentcore.core.models`), 2048 for a
        model outside the registry, never more than the model's trained length."""
        card = self.source.card if self.source is not None else None
        budget = card.default_window if card is not None else 2048
        return StreamingConfig.for_budget(min(budget, self.core.dims.max_positions))

    def recall_config(self, **changes: Any) -> RecallConfig:
        """The evicted-context store's sizes for this model's sessions: :class:`RecallConfig`
        with the model card's ``recall_evidence`` (see :meth:`EvictedStore.points_back`),
        ``recall_margin`` (``evidence_margin``), ``recall_turns`` (``lexical_turns``),
        ``recall_best_nearest`` (``best_nearest``), ``recall_read_bias`` and
        ``recall_read_heads`` (``read_bias``, ``read_heads``), ``recall_read_from``
        (``read_from``) and ``recall_top_k`` (``top_k``), then ``changes``."""
        card = self.source.card if self.source is not None else None
        per_model: dict[str, Any] = {
            "evidence_to_recall": card.recall_evidence if card is not None else None,
            "evidence_margin": card.recall_margin if card is not None else None,
            "lexical_turns": card.recall_turns if card is not None else False,
            "best_nearest": card.recall_best_nearest if card is not None else False,
            "read_bias": card.recall_read_bias if card is not None else 0.0,
            "read_heads": card.recall_read_heads if card is not None else (),
            "read_from": card.recall_read_from if card is not None else 0,
        }
        if card is not None and card.recall_top_k is not None:
            per_model["top_k"] = card.recall_top_k
        return RecallConfig(**{**per_model, **changes})

    def fingerprint(self) -> str:
        """Identifies the model for saved sessions (a state only restores on the same shapes)."""
        d = self.core.dims
        return (
            f"{self.name}|L{d.n_layers}|H{d.n_heads}/{d.n_kv_heads}|D{d.head_dim}|"
            f"V{d.vocab}|{self.core.dtype}"
        )

    def session_config(self, streaming: StreamingConfig | None = None) -> SessionConfig:
        """The :class:`SessionConfig` of a default session: ``streaming`` (else
        :meth:`default_streaming`) with this engine's default compressive memory and recall."""
        return SessionConfig(
            streaming=streaming or self.default_streaming(),
            infini=self.default_infini,
            recall=self.default_recall,
        )

    def new_session(
        self, config: SessionConfig | StreamingConfig | None = None, **kwargs: Any
    ) -> Session:
        """A new session: ``config`` a SessionConfig as it is, else (a StreamingConfig or None)
        :meth:`session_config` with ``kwargs`` replacing its fields."""
        if isinstance(config, SessionConfig):
            return Session(self, config)
        return Session(self, dataclasses.replace(self.session_config(config), **kwargs))

    def restore_session(self, path: str | os.PathLike[str]) -> Session:
        """The session saved at ``path`` (raises SessionStateError when it cannot be read)."""
        return load_session(self, Path(path))

    def save_session(self, session: Session, path: Path) -> Path:
        """Save ``session`` at ``path`` atomically (see :mod:`agentcore.core.state`)."""
        return save_session(session, path)

    def session_history(self, session: Session, kind: str) -> Iterator[Any]:
        """Everything of ``kind`` in ``session``'s saved history and memory, oldest first."""
        return iter_history(session, kind)
