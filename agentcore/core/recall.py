"""Exact recall of evicted context: a per-layer store of key/value blocks that left the window.

Owns the evicted-context store of one session. Tokens leaving the sliding window arrive
(pre-RoPE keys and values) through :meth:`EvictedStore.on_evict`; every ``block_size`` of them
become a block. At each chunk of new tokens (and every ``refresh`` decode steps) the cache asks
:meth:`EvictedStore.plan` for the blocks most relevant to the current queries and attends to
them, in every layer, between the sinks and the window. Never computes attention itself (the
cache does) and never drops a block: the newest ``host_blocks`` blocks per layer stay in RAM,
older ones are read back from append-only files through ``numpy.memmap``. A store given no
folder works in a private temporary one, removed by :meth:`EvictedStore.close` (the store is a
context manager) or, failing that, when the store is collected or the interpreter exits.

Selection is shared by all layers. A few *probe layers* (default: at 1/4, 1/2 and 3/4 of the
depth) keep every evicted key in RAM (bfloat16) and the latest ``query_window`` queries of the
stream (:meth:`EvictedStore.observe`). A full selection scores every evicted key (of the
shortlist's blocks, below) of each probe layer against those queries exactly: per key the
largest attention probability any head and query gives it (normalised per head and query over
the scored tokens), less what the queries
before the newest input already gave it (the contrast); a block's evidence is its best key's,
summed over the probe layers, and the best ``candidates`` blocks are kept; every
layer then recalls the same ``top_k`` best (each with its successor, so a fact cut by a block
boundary comes back whole). The first decode step after new input (a question) runs a full
selection with all ``query_window`` queries; later refreshes re-rank the candidates; each chunk
of a long prompt selects with its ``chunk_queries`` latest queries. Per-layer choices, each
layer with its own queries, were the first design: on prose the early layers do not retrieve
and dropped the needle the middle layers had found (measured in ``bench/recall_real.py``).
Mean-pooled block summaries were tried before that and lose an isolated needle among random
keys; exact scoring on probe layers does not.

A full selection over a store of more than ``shortlist`` blocks scores only a shortlist: the
blocks sharing the most rare words with the new input (:class:`~agentcore.core.lexicon.
BlockLexicon`, BM25 over the token ids each block holds, fed by :meth:`EvictedStore.note_tokens`),
so its cost no longer grows with the store (scoring every key was ~53 ms per 1K evicted tokens
on a 2-core CPU, 53 s at 1M). With ``lexical_turns`` the selection at new input also takes
blocks from that word ranking itself, in turns with the attention evidence.

Storage per evicted token: keys and values of every layer in float16 (``2 * L * H_kv * D * 2``
bytes, RAM tier or disk) plus the probe layers' keys in RAM (``P * H_kv * D * 2`` bytes) and
the token id (4 bytes on disk, 8 in RAM with its folded term).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentcore._atomic import atomic_copy_head
from agentcore.core.lexicon import BlockLexicon
from agentcore.core.loader import cpu_has_bf16
from agentcore.core.rope import Rotary

__all__ = ["EvictedStore", "RecallConfig"]


_LEXICON_FILE = "tokens.i32"

# keys one scoring slice holds: [H_kv, Q, 8192] float32 scores, ~19 MB for SmolLM2
_SLICE_KEYS = 8192


@functools.cache
def _score_dtype() -> torch.dtype:
    """What scoring multiplies in: the index's bfloat16 where the CPU has bf16 dot products,
    else float32 (each slice of keys widened as it is read): without them a bfloat16 matmul is
    emulated, ~6x slower than widening and multiplying in float32 on an AVX2 CPU."""
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def _scorer(q: torch.Tensor, keys: torch.Tensor, step: int) -> Callable[[int], torch.Tensor]:
    """``scores(lo)``: the float32 logits ``[H_kv, Q, <=step]`` of ``q: [H_kv, Q, D]`` against
    ``keys[:, lo : lo + step]``, multiplied in :func:`_score_dtype`."""
    dtype = _score_dtype()
    q = q.to(dtype)

    def scores(lo: int) -> torch.Tensor:
        return torch.matmul(q, keys[:, lo : lo + step].to(dtype).transpose(1, 2)).float()

    return scores


def _groups(ranked: Sequence[int], k: int, n: int) -> list[list[int]]:
    """Up to ``k`` of the ``n`` blocks, in groups best first: each of ``ranked`` (best first)
    followed by its successor, so a fact cut by a block boundary comes back whole (the
    successor alone where the block was already taken as another's successor)."""
    groups: list[list[int]] = []
    taken: set[int] = set()
    for b in ranked:
        if len(taken) >= k:
            break
        group = [x for x in (b, b + 1) if x < n and x not in taken][: k - len(taken)]
        if group:
            taken.update(group)
            groups.append(group)
    return groups


def _layout(ranked: Sequence[int], k: int, n: int, best_nearest: bool) -> list[int]:
    """The order the chosen blocks are laid out in, oldest position first: stream order, or
    (``best_nearest``) the groups of :func:`_groups` from the worst to the best, so that the
    best block and its successor sit nearest the newest token."""
    groups = _groups(ranked, k, n)
    if not best_nearest:
        return sorted(b for group in groups for b in group)
    return [b for group in reversed(groups) for b in group]


@dataclasses.dataclass(frozen=True)
class RecallConfig:
    """Sizes of the evicted-context store and of what is recalled."""

    block_size: int = 64
    top_k: int = 8  # blocks recalled, the same in every layer (top_k * block_size extra keys)
    candidates: int = 32  # blocks a full scoring keeps for the cheap re-rankings of decode
    refresh: int = 32  # decode steps between re-selections (a re-selection costs ~2 steps)
    # blocks per layer kept in RAM, older ones live in the memory-mapped files (None: as many
    # as ``host_ram_mib`` holds over all layers; give a number to keep more, e.g. to fork)
    host_blocks: int | None = None
    host_ram_mib: int = 64  # RAM tier per session when host_blocks is None
    query_window: int = 64  # latest queries per probe layer a full selection scores with
    chunk_queries: int = 8  # of those, the ones a chunk of a long prompt selects with (cheaper)
    probe_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)  # probe layers, as depth fractions
    # positions between the newest token and the end of the recalled span: the span reads as
    # recent context (None: right before the window, as the oldest context; on prose a small
    # model then ignores what it recalled: bench/recall_real.py, docs/long-memory.md)
    distance: int | None = 256
    # rank blocks by the new input's evidence less the evidence of the queries before it
    # (False: the new input's evidence alone; see EvictedStore.mark_input)
    contrast: bool = True
    # where the difference is taken: "token" (each key's, then the block's best) or "block"
    # (the block's best under each, the ranking before 2026-12-03; kept for comparison)
    contrast_unit: str = "token"
    # a key's baseline is floored at e**contrast_floor / (keys scored): see EvictedStore._evidence
    contrast_floor: float = 2.0
    # the end of new input and its reply recall only when the input points back at evicted
    # text: its best block's contrast, per probe layer, at least this (else they read sinks +
    # window alone, and recalled text cannot draw the answer away from the window; None:
    # always recall). Per model (ModelCard.recall_evidence, Engine.recall_config); see
    # EvictedStore.points_back
    evidence_to_recall: float | None = None
    # the end of new input and its reply recall only the blocks whose evidence (per probe
    # layer, as the gate reads it) is within this of the best block's, each with its
    # successor, at most ``top_k`` blocks: one fact that stands out is read without the
    # company of blocks that merely resemble the question; several facts that match alike
    # (several values of one key) are all recalled (None: always ``top_k``). Per model
    # (ModelCard.recall_margin); see EvictedStore._budget_for
    evidence_margin: float | None = None
    # a full selection over more blocks than this scores only this many with the queries: the
    # blocks sharing the most rare words with the latest ``lexical_query`` tokens (BM25,
    # agentcore.core.lexicon), and the last selection's candidates; None: score every block
    # (linear in the store, ~53 ms per 1K evicted tokens on a 2-core CPU)
    shortlist: int | None = 64
    lexical_query: int = 128
    # a new input's selection takes blocks from two rankings in turns: the attention evidence
    # and the input's rare words (BM25 over the blocks, the shortlist's ranking); False: the
    # attention evidence alone. See EvictedStore._take_turns
    lexical_turns: bool = False
    # score keys and queries without their rotary positions (ReAttention's position-agnostic
    # top-k; False: as attention sees a key ``distance`` back, see EvictedStore.set_geometry)
    position_agnostic: bool = False
    # lay the recalled blocks out best last, nearest the newest token (each with its
    # successor after it), instead of in stream order. Per model (ModelCard.recall_best_nearest);
    # see EvictedStore.plan
    best_nearest: bool = False
    # added to the attention logits of the recalled tokens while new input's last chunk and its
    # reply read them, in the query heads ``read_heads`` names ((layer, head) pairs; empty: every
    # head): there each recalled token counts e**read_bias times against the window's. The
    # model's retrieval heads, the few that copy facts from context (bench/retrieval_heads.py
    # finds them), weighed up let a small model read what it recalled. Per model
    # (ModelCard.recall_read_bias, recall_read_heads); 0: read as any other key
    read_bias: float = 0.0
    read_heads: tuple[tuple[int, int], ...] = ()
    # the end of new input (the chunk its probe saw) reads its recalled blocks from this layer
    # up; the layers below read sinks + window as its probe did, so where the probe reads the
    # window (a recall gate, evidence_to_recall) the forward keeps the probe's layers below
    # this one instead of computing them again: a question that recalls costs its probe and
    # the layers from here, not its probe and a whole forward. Its reply reads the blocks in
    # every layer. 0: every layer reads them. Per model (ModelCard.recall_read_from, at or
    # below its lowest retrieval head); see StreamingCache.probe_kept
    read_from: int = 0

    def __post_init__(self) -> None:
        for name in (
            "block_size",
            "top_k",
            "candidates",
            "refresh",
            "host_ram_mib",
            "query_window",
            "chunk_queries",
            "lexical_query",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"RecallConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.host_blocks is not None and self.host_blocks < 1:
            raise ValueError(
                f"RecallConfig.host_blocks must be >= 1 or None, got {self.host_blocks}"
            )
        if self.shortlist is not None and self.shortlist < self.candidates:
            raise ValueError(
                f"RecallConfig.shortlist ({self.shortlist}) must be >= candidates "
                f"({self.candidates}) or None"
            )
        if self.evidence_margin is not None and self.evidence_margin < 0:
            raise ValueError(
                f"RecallConfig.evidence_margin must be >= 0 or None, got {self.evidence_margin}"
            )
        if self.distance is not None and self.distance < 0:
            raise ValueError(f"RecallConfig.distance must be >= 0 or None, got {self.distance}")
        if self.candidates < self.top_k:
            raise ValueError(
                f"RecallConfig.candidates ({self.candidates}) must be >= top_k ({self.top_k})"
            )
        if not self.probe_fractions or not all(0 <= f < 1 for f in self.probe_fractions):
            raise ValueError(
                f"RecallConfig.probe_fractions must be fractions in [0, 1), got {self.probe_fractions}"
            )
        if self.contrast_unit not in ("token", "block"):
            raise ValueError(
                f"RecallConfig.contrast_unit must be 'token' or 'block', got {self.contrast_unit!r}"
            )
        if self.read_from < 0:
            raise ValueError(f"RecallConfig.read_from must be >= 0, got {self.read_from}")
        if not math.isfinite(self.read_bias):
            raise ValueError(
                f"RecallConfig.read_bias must be a finite number, got {self.read_bias}"
            )
        heads = tuple(self.read_heads)
        if not all(
            isinstance(h, (tuple, list))
            and len(h) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in h)
            for h in heads
        ):
            raise ValueError(
                "RecallConfig.read_heads must be (layer, query head) pairs of integers >= 0, "
                f"got {self.read_heads!r}"
            )
        object.__setattr__(self, "probe_fractions", tuple(self.probe_fractions))
        object.__setattr__(self, "read_heads", tuple((int(a), int(b)) for a, b in heads))

    @property
    def recalled_tokens(self) -> int:
        return self.top_k * self.block_size


class _LayerStore:
    """Blocks of one layer: a RAM tier of recent blocks and an append-only file of all blocks."""

    def __init__(self, path: Path, n_kv: int, block: int, dim: int, host_blocks: int) -> None:
        self.path = path
        self.shape = (2, n_kv, block, dim)  # [k|v, H_kv, block, D]
        self.record = int(np.prod(self.shape)) * 2  # float16 bytes
        self.host_blocks = host_blocks
        self.ram: dict[int, torch.Tensor] = {}  # block index -> [2,H_kv,block,D] float16
        self.n_blocks = 0
        self.n_persisted = 0  # blocks written to the file
        self.unsynced = False  # blocks written since the file's last fsync
        self._map: np.memmap | None = None
        self._map_blocks = 0

    def add(self, kv: torch.Tensor) -> None:
        # kv: [2,H_kv,block,D] float16
        self.ram[self.n_blocks] = kv
        self.n_blocks += 1
        while len(self.ram) > self.host_blocks:
            oldest = min(self.ram)
            self.persist(upto=oldest + 1, sync=False)
            del self.ram[oldest]

    def persist(self, upto: int | None = None, *, sync: bool = True) -> None:
        """Append blocks ``[n_persisted, upto)`` to the file (all blocks by default).

        ``sync``: fsync the file (also for blocks written unsynced before). A block spilled out
        of the RAM tier is written without one: nothing refers to it until a save, and a save
        persists with ``sync`` before the session file names the blocks. One fsync per layer
        per spilled block cost ~50 ms per 64 tokens read on SmolLM2 (30 layers, ~1.7 ms each)."""
        end = self.n_blocks if upto is None else upto
        if end > self.n_persisted:
            with open(self.path, "r+b" if self.path.exists() else "wb") as fh:
                fh.seek(self.n_persisted * self.record)
                for i in range(self.n_persisted, end):
                    fh.write(self.ram[i].numpy().tobytes())
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            self.n_persisted = end
            self.unsynced = not sync
        elif sync and self.unsynced:
            with open(self.path, "rb") as fh:
                os.fsync(fh.fileno())
            self.unsynced = False

    def get(self, idx: int) -> torch.Tensor:
        block = self.ram.get(idx)
        if block is not None:
            return block
        if self._map is None or self._map_blocks <= idx:
            self._map = np.memmap(
                self.path, dtype=np.float16, mode="r", shape=(self.n_persisted, *self.shape)
            )
            self._map_blocks = self.n_persisted
        return torch.from_numpy(np.array(self._map[idx]))

    def ram_bytes(self) -> int:
        return len(self.ram) * self.record


class EvictedStore:
    """Evicted key/value blocks of every layer of one session, with relevance selection."""

    def __init__(
        self,
        config: RecallConfig,
        *,
        n_layers: int,
        n_kv_heads: int,
        head_dim: int,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.n_layers = n_layers
        self.n_kv = n_kv_heads
        self.dim = head_dim
        private = directory is None
        self.directory = Path(
            tempfile.mkdtemp(prefix="agentcore-recall-") if directory is None else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        # a private temporary folder goes with close(), or when the store is collected or the
        # interpreter exits, whichever comes first; a folder the caller named always stays
        self._remove_own_dir: weakref.finalize[Any, Any] | None = (
            weakref.finalize(self, shutil.rmtree, str(self.directory), ignore_errors=True)
            if private
            else None
        )
        bs = config.block_size
        host_blocks = config.host_blocks or max(
            1, config.host_ram_mib * 2**20 // (n_layers * 2 * n_kv_heads * bs * head_dim * 2)
        )
        self.layers = [
            _LayerStore(self.directory / f"layer{i:03d}.kv", n_kv_heads, bs, head_dim, host_blocks)
            for i in range(n_layers)
        ]
        self.probes = sorted({min(n_layers - 1, int(f * n_layers)) for f in config.probe_fractions})
        # probe layers: every evicted key, for exact scoring: [H_kv, N, D] bfloat16 (grown by doubling)
        self._index = {
            p: torch.zeros((n_kv_heads, 0, head_dim), dtype=torch.bfloat16) for p in self.probes
        }
        self._index_n = dict.fromkeys(self.probes, 0)
        # evicted tokens waiting to fill a block: per layer lists of [H_kv,n,D] float16
        self._pending_k: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
        self._pending_v: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
        self._pending_n = [0] * n_layers
        self.block_start: list[int] = []  # stream position of each block's first token
        self._pending_pos: list[int] = []
        # tokens before this stream position were taken ahead of their eviction (take_ahead):
        # their eviction from the window adds nothing
        self._taken_until = 0
        # the words of every block (the shortlist of a full selection over a large store)
        self.lexicon = BlockLexicon(self.directory / _LEXICON_FILE, bs)
        # token ids of the stream from position _live_pos0 on: those not yet in a block
        self._live_ids = np.zeros(0, dtype=np.int32)
        self._live_pos0 = 0
        self._live_end = 0  # ids noted so far, from _live_pos0
        self._input_at: int | None = None  # where the newest input's last chunk began
        self._candidates: list[int] = []  # best blocks of the last full scoring, best first
        # the new input's blocks by its rare words, best first (lexical_turns; kept for the
        # re-rankings of its reply, which the words of the question still describe)
        self._lexical: list[int] = []
        # the best block's contrast per probe layer at the last full selection that took the
        # contrast (None: it did not), see points_back
        self.evidence: float | None = None
        # the same per candidate of that selection, best first by attention (diagnostics)
        self.ranked_evidence: list[tuple[int, float]] = []
        # blocks the newest input and its reply recall (evidence_margin; None: top_k)
        self._budget: int | None = None
        self._recent: dict[int, torch.Tensor] = {}  # probe layer -> latest queries [H_q,T,D]
        # probe layer -> the latest queries as they were before the newest input (mark_input):
        # what the text was already asking for, subtracted from what the new input asks for
        self._baseline: dict[int, torch.Tensor] = {}
        self._back: torch.Tensor | None = None  # RoPE rotation by -distance (set_geometry)
        # (probe layer, candidate blocks) -> the baseline's weight of those blocks, with the
        # baseline queries and rotation it was computed from: the baseline only changes at new
        # input, so decode refreshes that re-rank the same candidates reuse it
        self._baseline_memo: dict[
            tuple[int, tuple[int, ...], str],
            tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
        ] = {}

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Let go of the block files and remove the store's private temporary folder (if it
        still has one: the folder of a saved session stays). Closing twice is harmless."""
        for s in self.layers:
            s._map = None
        self._drop_own_dir()

    def __enter__(self) -> EvictedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_own_dir(self) -> None:
        """Remove the private temporary folder now; from here on the store has none."""
        if self._remove_own_dir is not None:
            self._remove_own_dir()  # rmtree, once; the finalizer is then dead
            self._remove_own_dir = None

    # ------------------------------------------------------------------ writing
    def _take(
        self, layer: int, k16: torch.Tensor, v16: torch.Tensor, positions: torch.Tensor
    ) -> None:
        # k16, v16: [H_kv,n,D] float16 on the host
        if layer == 0:
            self._pending_pos.extend(positions.tolist())
        self._pending_k[layer].append(k16)
        self._pending_v[layer].append(v16)
        self._pending_n[layer] += int(k16.shape[1])
        if layer in self._index:
            self._append_index(layer, k16.to(torch.bfloat16))
        bs = self.config.block_size
        while self._pending_n[layer] >= bs:
            k_all = torch.cat(self._pending_k[layer], dim=1)  # [H_kv,n,D]
            v_all = torch.cat(self._pending_v[layer], dim=1)
            self._pending_k[layer] = [k_all[:, bs:]] if k_all.shape[1] > bs else []
            self._pending_v[layer] = [v_all[:, bs:]] if v_all.shape[1] > bs else []
            self._pending_n[layer] -= bs
            self.layers[layer].add(torch.stack([k_all[:, :bs], v_all[:, :bs]]))
            if layer == self.n_layers - 1:
                self.block_start.append(self._pending_pos[0])
                self.lexicon.add(self._ids_at(self._pending_pos[:bs]))
                self._forget_ids_before(self._pending_pos[bs - 1] + 1)
                del self._pending_pos[:bs]

    def note_tokens(self, positions: torch.Tensor, ids: torch.Tensor) -> None:
        """The token ids the stream reads at ``positions`` (``[n]`` each), before they are read:
        a block's words for the shortlist, and the latest input for its query."""
        pos = positions.tolist()
        if not pos:
            return
        if self._live_end == 0:  # nothing noted since the last block (or a store from before)
            self._live_pos0 = max(self._live_pos0, pos[0])
        end = pos[-1] + 1 - self._live_pos0
        if end > self._live_ids.shape[0]:
            grown = np.full(max(end, 2 * self._live_ids.shape[0], 1024), -1, dtype=np.int32)
            grown[: self._live_ids.shape[0]] = self._live_ids
            self._live_ids = grown
        lo = pos[0] - self._live_pos0
        vals = ids.to("cpu", torch.int32).numpy()
        if lo < 0:  # positions already in blocks (never the case in stream order)
            vals, lo = vals[-lo:], 0
        self._live_ids[lo:end] = vals[: max(0, end - lo)]
        self._live_end = max(self._live_end, end)

    def _ids_at(self, positions: list[int]) -> np.ndarray:
        idx = np.asarray(positions, dtype=np.int64) - self._live_pos0
        ok = (idx >= 0) & (idx < self._live_ids.shape[0])
        out = np.full(len(positions), -1, dtype=np.int32)
        out[ok] = self._live_ids[idx[ok]]
        return out

    def _forget_ids_before(self, position: int) -> None:
        drop = min(position - self._live_pos0, self._live_end)
        if drop > 0:
            self._live_ids = self._live_ids[drop:].copy()
            self._live_end -= drop
            self._live_pos0 += drop

    def _lexical_query(self, *, new_input: bool = False) -> np.ndarray:
        """The latest ``lexical_query`` token ids; ``new_input``: of those, only the new
        input's (see :meth:`mark_input`). The tail of a document before a question matched
        the blocks next to it, and "What was Father Blount's dog called?" at 128K ranked its
        needle 215th; the question alone ranks it first (bench/recall_shortlist.py)."""
        end = self._live_end
        lo = end - self.config.lexical_query
        if new_input and self._input_at is not None:
            lo = max(lo, self._input_at - self._live_pos0)
        return self._live_ids[max(0, lo) : end]

    def on_evict_layers(
        self, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> None:
        """Every layer's tokens leaving the window at once: ``k_raw, v: [L,B,H_kv,n,D]``.

        The same as calling :meth:`on_evict` layer by layer, with one device-to-host copy for
        all layers instead of one per layer (a decode step evicts one token per layer).
        """
        k_raw, v, positions = self._not_taken(k_raw, v, positions)
        if not positions.numel():
            return
        k16 = k_raw[:, 0].detach().to("cpu", torch.float16)
        v16 = v[:, 0].detach().to("cpu", torch.float16)
        for layer in range(self.n_layers):
            self._take(layer, k16[layer], v16[layer], positions)

    def on_evict(
        self, layer: int, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> None:
        """Tokens leaving the window: ``k_raw, v: [B,H_kv,n,D]`` pre-RoPE, ``positions: [n]``."""
        k_raw, v, positions = self._not_taken(k_raw, v, positions)
        if not positions.numel():
            return
        k16 = k_raw[0].detach().to("cpu", torch.float16)
        self._take(layer, k16, v[0].detach().to("cpu", torch.float16), positions)

    def _not_taken(
        self, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The evicted tokens (``positions`` ascending, tokens along dim -2 of ``k_raw`` and
        ``v``) that :meth:`take_ahead` has not taken already."""
        if not positions.numel() or int(positions[0]) >= self._taken_until:
            return k_raw, v, positions
        skip = int((positions < self._taken_until).sum())
        return k_raw[..., skip:, :], v[..., skip:, :], positions[skip:]

    def missing_ahead(self) -> tuple[int, int]:
        """(the stream position after the evicted tokens waiting to fill a block, how many more
        tokens that block needs); (0, 0) when none is waiting."""
        if not self._pending_pos:
            return 0, 0
        return self._pending_pos[-1] + 1, self.config.block_size - len(self._pending_pos)

    def take_ahead(self, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor) -> None:
        """Complete the block the latest evicted tokens began with the tokens that follow them,
        still in the window (``k_raw, v: [L,B,H_kv,n,D]`` pre-RoPE, ``positions: [n]``, from
        :meth:`missing_ahead`), so that it can be recalled now; their eviction later adds
        nothing.

        Why: evicted tokens wait for a whole block before they can be selected, so up to
        ``block_size - 1`` tokens just past the window were in neither the window nor the store.
        A fact there at the moment a question came was out of reach (the 0.5B model's pass
        key at 8K, depth 0.5: the needle sat in the 54 tokens waiting). Called when new input
        is about to select; the block's last tokens are then in view twice (window and block)
        when it is recalled before the window lets them go."""
        start, missing = self.missing_ahead()
        if not missing:
            return
        if positions.numel() != missing or int(positions[0]) != start:
            raise ValueError(
                f"take_ahead: the waiting block needs positions {start}..{start + missing - 1}, "
                f"got {positions.tolist()[:1]}..{positions.tolist()[-1:]} ({positions.numel()})"
            )
        self.on_evict_layers(k_raw, v, positions)
        self._taken_until = start + missing

    def _append_index(self, layer: int, k: torch.Tensor) -> None:
        # k: [H_kv,n,D] bfloat16
        n, cap = self._index_n[layer], self._index[layer].shape[1]
        need = n + k.shape[1]
        if need > cap:
            grown = torch.zeros(
                (self.n_kv, max(need, 2 * cap, 1024), self.dim), dtype=torch.bfloat16
            )
            grown[:, :n] = self._index[layer][:, :n]
            self._index[layer] = grown
        self._index[layer][:, n:need] = k
        self._index_n[layer] = need

    # ------------------------------------------------------------------ reading
    @property
    def n_blocks(self) -> int:
        return self.layers[-1].n_blocks

    def observe(self, layer: int, q_raw: torch.Tensor) -> None:
        """Remember the latest queries of a probe layer: ``q_raw: [B,H_q,T,D]`` pre-RoPE.

        Selection scores with the ``query_window`` most recent queries of each probe layer, so a
        question asked in the last turn (and the reply so far) is what picks the blocks.
        """
        if layer not in self._index:
            return
        q = q_raw[0, :, -self.config.query_window :].detach().to("cpu", torch.bfloat16)
        buf = self._recent.get(layer)
        if buf is not None:
            q = torch.cat([buf, q], dim=1)[:, -self.config.query_window :]
        self._recent[layer] = q  # [H_q, <=query_window, D] bfloat16 (what scoring multiplies in)

    def mark_input(self, at: int | None = None) -> None:
        """New input is about to be read (its last chunk from stream position ``at``): remember
        the queries seen so far as the baseline, and that the shortlist's words are the input's.

        Selection then ranks blocks by how much more the new input (a question, and the reply
        to it) attends to them than the text before it did. Blocks every query attends to
        (the system prompt, the start of a document) stop crowding out the one block a
        question is about: on a fact hidden in a novel the needle block ranked 1-19th by the
        question's evidence alone and 0-3rd by the contrast (docs/long-memory.md).
        """
        self._baseline = dict(self._recent)
        self._input_at = at

    def set_geometry(self, rotary: Rotary, distance: int) -> None:
        """Score keys as attention would see them: rotated ``distance`` positions before the
        query (``position_agnostic``: unrotated, the dot product of the raw query and key)."""
        if self.config.position_agnostic:
            self._back = None
            return
        self._back = rotary.freqs(torch.tensor([-distance]), torch.device("cpu"))

    def _queries(self, q: torch.Tensor, n_queries: int | None) -> torch.Tensor:
        # a probe layer's queries [H_q,T,D] -> [H_kv, G*T, D] float32, rotated by -distance so
        # that q'.k equals the RoPE score of a key sitting that far back, and scaled
        q = q.float()
        if n_queries is not None:
            q = q[:, -n_queries:]
        if self._back is not None:
            q = Rotary.rotate(q, self._back)
        g = q.shape[0] // self.n_kv
        scale = self.dim**-0.5
        return q.reshape(self.n_kv, g * q.shape[1], self.dim) * scale

    @staticmethod
    def _block_weight(keys: torch.Tensor, q: torch.Tensor, block: int) -> torch.Tensor:
        """``keys: [H_kv, n*block, D]``, ``q: [H_kv, Q, D]`` -> ``[n]``: per block, the largest
        :meth:`_token_weight` of its keys, in one pass over the keys (a block's best score per
        head and query is kept, and each query's log-sum-exp subtracted at the end)."""
        step = max(1, _SLICE_KEYS // block) * block  # whole blocks per slice
        score = _scorer(q, keys, step)
        best: list[torch.Tensor] = []
        lse: torch.Tensor | None = None
        for lo in range(0, keys.shape[1], step):
            scores = score(lo)
            part = torch.logsumexp(scores, dim=-1)  # [H_kv, Q]
            lse = part if lse is None else torch.logaddexp(lse, part)
            h, nq, m = scores.shape
            best.append(scores.view(h, nq, m // block, block).amax(dim=-1))  # [H_kv, Q, m/block]
        if lse is None:
            return torch.zeros(0)
        return (torch.cat(best, dim=-1) - lse[..., None]).amax(dim=(0, 1))

    @staticmethod
    def _token_weight(keys: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``keys: [H_kv, N, D]``, ``q: [H_kv, Q, D]`` -> ``[N]``: per key, the log of the largest
        attention probability any head and query would give it among these keys (per-head
        normalisation, so heads with large logits everywhere do not drown the others).

        The keys are scored ``_SLICE_KEYS`` at a time, so the score matrix has one size whatever
        the history (one matrix over every key of a 100K-token store was ~230 MB per probe
        layer, and the allocator kept a growing heap of them: RSS +6.5 GB per 100K tokens,
        docs/benchmarks/long_session.md). A store larger than one slice is scored twice: once for
        each query's log-sum-exp over all keys, then for the normalised maxima."""
        n, step = keys.shape[1], _SLICE_KEYS
        if n == 0:
            return torch.zeros(0)
        scores = _scorer(q, keys, step)
        if n <= step:
            s = scores(0)
            return torch.log_softmax(s, dim=-1).amax(dim=(0, 1))  # one fused pass
        lse: torch.Tensor | None = None
        for lo in range(0, n, step):
            part = torch.logsumexp(scores(lo), dim=-1)  # [H_kv, Q]
            lse = part if lse is None else torch.logaddexp(lse, part)
        assert lse is not None
        out = torch.empty(n)
        for lo in range(0, n, step):
            out[lo : lo + step] = (scores(lo) - lse[..., None]).amax(dim=(0, 1))
        return out

    def _evidence(
        self, blocks: list[int] | None, n: int, n_queries: int | None
    ) -> tuple[torch.Tensor, int]:
        """Per block (all ``n`` blocks, or only ``blocks``), the evidence summed over the probe
        layers that have seen queries.

        A layer's evidence for a block is its best token's: the :meth:`_token_weight` of the
        token for the latest queries, less (``contrast``) what the baseline queries
        (:meth:`mark_input`) already gave that token. The baseline is floored at
        ``e**contrast_floor`` times a uniform share, so a token nothing attended to before
        earns only as much as the new input really gives it. Subtracting per token, not per
        block, matters when a block holds both a fact and text every query attends to (the
        needle right after a document's first line: its block ranked 82nd of 127 by the
        block-level difference, first by the token-level one; ``contrast_unit="block"`` keeps
        the block-level difference for comparison). Also returns how many probe layers took the
        contrast.

        The chunks of a long prompt (``n_queries`` given) rank by their own evidence alone, in
        one pass over the keys: the per-token contrast takes two passes for the latest queries
        and two for the baseline, and at every chunk that made reading long documents ~2x
        slower. The selections the contrast is for are the ones at new input's end (the
        question) and the decode refreshes after it."""
        bs = self.config.block_size
        total = torch.zeros(n if blocks is None else len(blocks))
        contrasted = 0
        for p in self.probes:
            if p not in self._recent:
                continue
            index = self._index[p]
            if blocks is None:
                keys = index[:, : n * bs]
            else:
                keys = index[:, : n * bs].view(self.n_kv, n, bs, self.dim)[:, blocks]
                keys = keys.reshape(self.n_kv, -1, self.dim)
            q = self._queries(self._recent[p], n_queries)
            if not (self.config.contrast and p in self._baseline) or n_queries is not None:
                total += self._block_weight(keys, q, bs)
                continue
            contrasted += 1
            if self.config.contrast_unit == "block":
                total += self._block_weight(keys, q, bs) - self._baseline_weight(p, keys, blocks)
            else:
                latest, base = self._token_weight(keys, q), self._baseline_weight(p, keys, blocks)
                floor = torch.tensor(self.config.contrast_floor - math.log(keys.shape[1]))
                total += (latest - torch.logaddexp(base, floor)).view(-1, bs).amax(dim=-1)
        return total, contrasted

    def _baseline_weight(
        self, p: int, keys: torch.Tensor, blocks: list[int] | None
    ) -> torch.Tensor:
        """The baseline queries' :meth:`_token_weight` of ``keys`` (probe layer ``p``); for a
        re-ranking of candidate ``blocks`` it is computed once per baseline and rotation."""
        base = self._baseline[p]

        def weigh() -> torch.Tensor:
            q = self._queries(base, None)
            if self.config.contrast_unit == "block":
                return self._block_weight(keys, q, self.config.block_size)
            return self._token_weight(keys, q)

        if blocks is None:
            return weigh()
        key = (p, tuple(blocks), self.config.contrast_unit)
        memo = self._baseline_memo.get(key)
        if memo is not None and memo[0] is base and memo[1] is self._back:
            return memo[2]
        weight = weigh()
        if len(self._baseline_memo) >= 4 * len(self.probes):  # old candidate sets
            self._baseline_memo.clear()
        self._baseline_memo[key] = (base, self._back, weight)
        return weight

    def plan(self, *, full: bool, n_queries: int | None = None) -> list[int]:
        """The blocks every layer of the next forward recalls, in the order they are laid out
        (the first at the oldest position): stream order, or with ``best_nearest`` the best
        block and its successor last, nearest the newest token.

        ``full``: score every stored block with the probe layers' latest ``n_queries`` queries
        (all ``query_window`` by default) and keep the best ``candidates`` for later cheap
        re-rankings; otherwise re-rank only those candidates. The evidence is summed over the
        probe layers and the choice is shared by all layers: per-layer choices let the layers
        that do not retrieve (the early ones, on prose) drop the block the others found.
        Blocks are taken best first, each followed by its successor (a fact cut by a block
        boundary comes back whole), until :meth:`recall_blocks` blocks are chosen (``top_k``,
        or fewer under ``evidence_margin``: the new input's selection sets how many, and the
        re-rankings of its reply keep to it).
        """
        n = self.n_blocks  # blocks complete in every layer: what the cache plans for
        if full:
            self._budget = None  # a chunk recalls top_k; new input's selection sets its own
        k = self.recall_blocks()
        if full and n_queries is None:
            self.evidence = None  # until this selection scores the blocks
        if n <= k:
            return list(range(n))
        if not self._recent:  # no queries seen yet (a fresh or restored store): the latest blocks
            return list(range(n - k, n))
        cands = [c for c in self._candidates if c < n]
        if full or len(cands) < k:
            cfg, new_input = self.config, n_queries is None
            narrow = cfg.shortlist is not None and n > cfg.shortlist and self.lexicon.complete
            turns = new_input and cfg.lexical_turns and self.lexicon.complete
            size = cfg.shortlist if narrow and cfg.shortlist else 0
            words = self._word_ranking(n, new_input, max(size, cfg.candidates if turns else 0))
            scored = self._shortlist(n, cands, words) if narrow else None
            weight, contrasted = self._evidence(scored, n, n_queries)
            top = torch.topk(weight, min(cfg.candidates, len(weight))).indices.tolist()
            ranked = attention = top if scored is None else [scored[i] for i in top]
            if new_input:
                self.evidence = float(weight[top[0]]) / contrasted if contrasted else None
                per = max(contrasted, 1)
                self.ranked_evidence = [
                    (b, float(weight[i]) / per) for b, i in zip(ranked, top, strict=True)
                ]
            self._lexical = words[: cfg.candidates] if turns else []
            ranked = self._candidates = self._take_turns(ranked)[: cfg.candidates]
            if full and new_input and contrasted:
                self._budget = self._budget_for(weight[top] / contrasted, attention, ranked, k, n)
                k = self.recall_blocks()
        else:
            weight, _ = self._evidence(cands, n, n_queries)
            ranked = [cands[i] for i in torch.argsort(weight, descending=True).tolist()]
            ranked = self._take_turns(ranked)
        return _layout(ranked, k, n, self.config.best_nearest)

    def recall_blocks(self) -> int:
        """How many blocks the next forward recalls: ``top_k`` (at most the blocks stored),
        or fewer where the newest input's selection found few that stand out
        (``evidence_margin``)."""
        k = min(self.config.top_k, self.n_blocks)
        return k if self._budget is None else min(self._budget, k)

    def _budget_for(
        self, evidence: torch.Tensor, attention: list[int], merged: list[int], k: int, n: int
    ) -> int | None:
        """The blocks a new input recalls under ``evidence_margin``: those its best candidates
        by attention (``attention``, their ``evidence`` per probe layer, best first) within the
        margin of the best take, each with its successor, at most ``k``; with
        ``lexical_turns``, as many of the words' best beside them (the head of ``merged``, the
        two rankings taken in turns). None: no margin.

        Why: at a question about one fact the selection's best block stands out (SmolLM2, dev
        split at 8K: the needle's block 2.8-4.2 per probe layer, the next 1.5-2.4), while
        look-alike facts or several values of one key come as a cluster within ~0.6 of each
        other. The blocks after the first only resembled the question, and read beside the
        fact they drew the 135M model's answer away (4 recalled blocks instead of 8 answered 7
        single-needle questions of 12 instead of 4)."""
        margin = self.config.evidence_margin
        if margin is None or not len(evidence):
            return None
        keep = int((evidence >= evidence[0] - margin).sum())
        limit = len(set(attention[:keep]) | set(self._lexical[:keep]))
        return sum(len(group) for group in _groups(merged[:limit], k, n))

    def _word_ranking(self, n: int, new_input: bool, k: int) -> list[int]:
        """The best ``k`` of the first ``n`` blocks by the rare words they share with the latest
        ``lexical_query`` tokens (``new_input``: the new input's), best first (BM25)."""
        if k <= 0:
            return []
        return self.lexicon.shortlist(self._lexical_query(new_input=new_input), n, k)

    def _take_turns(self, ranked: list[int]) -> list[int]:
        """``ranked`` (by attention evidence) and the new input's word ranking merged by taking
        their best blocks in turns, attention first, each block once.

        Why: on prose with look-alike facts (several people's lanes, several values of one
        key) the attention evidence of a question ranked a look-alike above the asked fact
        (the answer's block 8th for one question of Qwen2.5-Coder-0.5B at 8K, the model then
        named the look-alike's value), while the question's rare words (the asked person's
        name) ranked the asked block at a median rank of 0-2 and in the best 16 for 64 of 64
        needles of the test split at 8K-128K (docs/benchmarks/recall_shortlist-test-qwen).
        Taking turns recalls the best of both; where they agree, the next blocks of each get
        the room."""
        if not self._lexical:
            return ranked
        merged: dict[int, None] = {}
        for pair in itertools.zip_longest(ranked, self._lexical):
            for b in pair:
                if b is not None:
                    merged.setdefault(b)
        return list(merged)

    @property
    def candidates(self) -> list[int]:
        """The blocks the last full selection kept for re-ranking, best first."""
        return list(self._candidates)

    def blocks_holding(self, run: Sequence[int]) -> list[int]:
        """The complete blocks whose text holds the token ids ``run`` in a row (see
        :meth:`BlockLexicon.blocks_holding`): where a fact went, for diagnostics."""
        return self.lexicon.blocks_holding(run, self.n_blocks)

    def _shortlist(self, n: int, candidates: list[int], words: list[int]) -> list[int]:
        """The ``shortlist`` blocks a full selection over ``n`` blocks scores: those sharing the
        most rare words with the latest input (``words``, best first), then the last
        selection's candidates (what the conversation was about), then the newest blocks, in
        stream order."""
        size = self.config.shortlist
        assert size is not None
        chosen = dict.fromkeys(words[:size])
        for b in [*candidates, *range(n - 1, -1, -1)]:
            if len(chosen) >= size:
                break
            chosen.setdefault(b)
        return sorted(chosen)

    def new_input(self) -> None:
        """New input begins: its chunks recall ``top_k`` blocks until the selection at its
        end sets how many it and its reply recall (``evidence_margin``)."""
        self._budget = None

    def points_back(self) -> bool:
        """Whether the last full selection found a block the new input points back at: its
        contrast per probe layer at least ``evidence_to_recall`` (the new input gives one of its
        keys ``e**evidence_to_recall`` times what the text before gave it, or the floor). The
        cache then recalls the chosen blocks for the input's last chunk and its reply
        (``distance`` positions back, as recent context); otherwise they read sinks + window
        alone.

        What it is for: a question about text still in the window. The recalled blocks are then
        only the evicted text most like the question, and read as recent context they drew the
        answer away: SmolLM2-135M asked for a pass key told right before the question answered
        "the pass key. The What is..." after recalling the task's opening line (every such
        document of bench/passkey.py at 8K and 32K missed, 4 of 4; placed right before the
        window instead, 1 of 4 still missed). Measured at the question
        (per probe layer, bench/passkey.py at 8K and the dev split of bench/recall_real.py):
        SmolLM2-135M, needle outside the window 2.8-4.6 on prose (9 questions) and 3.0-3.4 on
        the pass key, inside it 0.6-1.4, hence its card's 2.0. Qwen2.5-Coder-0.5B does not
        separate (outside 1.6-3.4 on prose, 2.1 on the pass key; inside 1.8) and answers the
        pass key inside the window with recall at every question (12 of 12), so its card
        leaves the gate off (None).
        """
        threshold = self.config.evidence_to_recall
        if threshold is None or self.evidence is None:
            return True
        return self.evidence >= threshold

    def gather(
        self, layer: int, blocks: list[int], device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (pre-RoPE) and values of ``blocks`` -> ``[1,H_kv,n*block,D]`` each."""
        store = self.layers[layer]
        kv = torch.stack([store.get(i) for i in blocks])  # [n,2,H_kv,bs,D]
        kv = kv.permute(1, 2, 0, 3, 4).reshape(2, self.n_kv, -1, self.dim)
        kv = kv.to(device=device, dtype=dtype)
        return kv[0][None], kv[1][None]

    def relocate(self, directory: str | os.PathLike[str]) -> None:
        """Make ``directory`` (next to a saved session file) hold this store's blocks, and go on
        writing there.

        Files in the store's private temporary folder move; files in a folder that another saved
        session reads (a "save as") are copied, so that session stays restorable.
        """
        target = Path(directory)
        for s in self.layers:
            s.persist()
        self.lexicon.persist()
        if target.resolve() == self.directory.resolve():
            return
        target.mkdir(parents=True, exist_ok=True)
        for s in self.layers:
            dest = target / s.path.name
            if not s.path.exists():
                dest.unlink(missing_ok=True)  # a stale file of an earlier session
            elif self._remove_own_dir is not None:  # the private folder: nobody else reads it
                shutil.move(str(s.path), dest)
            else:
                atomic_copy_head(s.path, dest, s.n_persisted * s.record)
            s.path = dest
            s._map = None
        self.lexicon.copy_to(target / _LEXICON_FILE, move=self._remove_own_dir is not None)
        self._drop_own_dir()
        self.directory = target

    def fork(self) -> EvictedStore:
        """An independent copy in a private folder of its own: it shares the (immutable) RAM
        blocks and gets a copy of the blocks already on disk (both go on appending to their
        own files)."""
        twin = EvictedStore(
            self.config, n_layers=self.n_layers, n_kv_heads=self.n_kv, head_dim=self.dim
        )
        twin._back = self._back
        for mine, theirs in zip(self.layers, twin.layers, strict=True):
            if mine.n_persisted:
                atomic_copy_head(mine.path, theirs.path, mine.n_persisted * mine.record)
            theirs.ram = dict(mine.ram)
            theirs.n_blocks = mine.n_blocks
            theirs.n_persisted = mine.n_persisted
        for p in self.probes:
            twin._index[p] = self._index[p][:, : self._index_n[p]].clone()
            twin._index_n[p] = self._index_n[p]
        twin._pending_k = [list(x) for x in self._pending_k]
        twin._pending_v = [list(x) for x in self._pending_v]
        twin._pending_n = list(self._pending_n)
        twin._pending_pos = list(self._pending_pos)
        twin._taken_until = self._taken_until
        twin.lexicon = self.lexicon.fork(twin.lexicon.path)
        twin._live_ids = self._live_ids.copy()
        twin._live_pos0, twin._live_end = self._live_pos0, self._live_end
        twin._input_at = self._input_at
        twin.block_start = list(self.block_start)
        twin._candidates = list(self._candidates)
        twin._lexical = list(self._lexical)
        twin.evidence = self.evidence
        twin.ranked_evidence = list(self.ranked_evidence)
        twin._budget = self._budget
        twin._recent = dict(self._recent)  # tensors are replaced, never written in place
        twin._baseline = dict(self._baseline)
        return twin

    # ------------------------------------------------------------------ inspection & state
    def stats(self) -> dict[str, Any]:
        ram = sum(s.ram_bytes() for s in self.layers)
        ram += sum(int(self._index_n[p]) * self.n_kv * self.dim * 2 for p in self.probes)
        ram += self.lexicon.n_blocks * self.config.block_size * 8  # ids and terms, int32 each
        disk = sum(s.n_persisted * s.record for s in self.layers)
        disk += self.lexicon.n_persisted * self.config.block_size * 4
        return {
            "blocks": self.n_blocks,
            "tokens": self.n_blocks * self.config.block_size,
            "ram_bytes": ram,
            "disk_bytes": disk,
            "probe_layers": self.probes,
            "directory": str(self.directory),
        }

    def state_dict(self) -> dict[str, Any]:
        """Persist every block to the append-only files and describe the store (small)."""
        for s in self.layers:
            s.persist()
        self.lexicon.persist()
        return {
            "config": dataclasses.asdict(self.config),
            "directory": str(self.directory),
            "n_blocks": [s.n_blocks for s in self.layers],
            "block_start": torch.tensor(self.block_start, dtype=torch.long),
            "pending_k": [torch.cat(p, 1) if p else torch.zeros(0) for p in self._pending_k],
            "pending_v": [torch.cat(p, 1) if p else torch.zeros(0) for p in self._pending_v],
            "pending_pos": torch.tensor(self._pending_pos, dtype=torch.long),
            "taken_until": self._taken_until,
            # ids of the tokens not yet in a block (at most a window and a chunk)
            "live_ids": torch.from_numpy(self._live_ids[: self._live_end].copy()),
            "live_pos0": self._live_pos0,
            "candidates": torch.tensor(self._candidates, dtype=torch.long),
            "lexical": torch.tensor(self._lexical, dtype=torch.long),
            "budget": -1 if self._budget is None else self._budget,
            "recent": dict(self._recent),
            "baseline": dict(self._baseline),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        directory = Path(state["directory"])
        for i, s in enumerate(self.layers):
            n = int(state["n_blocks"][i])
            s.path = directory / s.path.name
            size = s.path.stat().st_size if s.path.exists() else 0
            if size < n * s.record:
                raise RuntimeError(
                    f"recall store {s.path} holds {size // s.record} blocks, the session expects {n}"
                )
            s.n_blocks = s.n_persisted = n
            s.ram = {}
            s._map = None
        if directory != self.directory:
            self._drop_own_dir()
        self.directory = directory
        self.block_start = [int(x) for x in state["block_start"]]
        self._pending_k = [[p] if p.numel() else [] for p in state["pending_k"]]
        self._pending_v = [[p] if p.numel() else [] for p in state["pending_v"]]
        self._pending_n = [int(p.shape[1]) if p.numel() else 0 for p in state["pending_k"]]
        self._pending_pos = [int(x) for x in state["pending_pos"]]
        self._taken_until = int(state.get("taken_until", 0))  # saved before take_ahead: none
        self.lexicon.load(directory / _LEXICON_FILE, self.n_blocks)
        live = state.get("live_ids")  # None: saved before the lexicon (its ids are unknown)
        self._live_ids = (
            live.numpy().astype(np.int32) if live is not None else np.zeros(0, np.int32)
        )
        self._live_end = int(self._live_ids.shape[0])
        self._live_pos0 = int(state.get("live_pos0", 0))
        self._candidates = [int(x) for x in state["candidates"]]
        # a state saved before lexical_turns has no word ranking: the re-rankings use attention
        self._lexical = [int(x) for x in state.get("lexical", ())]
        budget = int(state.get("budget", -1))  # saved before evidence_margin: none
        self._budget = None if budget < 0 else budget
        self._recent = {int(p): q for p, q in state.get("recent", {}).items()}
        self._baseline = {int(p): q for p, q in state.get("baseline", {}).items()}
        # rebuild the probe index from the stored blocks and the pending tokens
        for p in self.probes:
            self._index[p] = torch.zeros((self.n_kv, 0, self.dim), dtype=torch.bfloat16)
            self._index_n[p] = 0
            store = self.layers[p]
            for b in range(store.n_blocks):
                self._append_index(p, store.get(b)[0].to(torch.bfloat16))
            if self._pending_k[p]:
                self._append_index(p, self._pending_k[p][0].to(torch.bfloat16))
