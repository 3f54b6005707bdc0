"""The words of evicted blocks: a shortlist for recall that does not read every key.

Owns the token ids of the blocks an :class:`~agentcore.core.recall.EvictedStore` holds, and
ranks blocks by the rare words they share with the latest input (BM25 over token ids, blocks as
documents). A full selection over a large store scores only that shortlist with the queries
(exact attention scoring is linear in the store: ~53 ms per 1K evicted tokens on a 2-core
CPU, 53 s at 1M; docs/benchmarks/recall_cost.md); the shortlist reads 4 bytes a token and
costs a few milliseconds at 1M tokens. Never scores attention itself.

Terms are token ids folded by :func:`term_map` (case, and the leading-space marker of
byte-level and sentencepiece vocabularies, so " Paris", "Paris" and "paris" are one term).
The ids live in an append-only file ``tokens.i32`` beside the block files, one ``int32`` per
token, written with them; a kill leaves at most a tail the saved session does not name.
"""

from __future__ import annotations

import os
import shutil
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentcore._atomic import atomic_copy_head

__all__ = ["BlockLexicon", "term_map"]

# BM25's term-frequency saturation; blocks have one length, so its length norm is moot
_K1 = 1.2
# a term in more than this share of the blocks carries no evidence (the template, "the")
_COMMON = 0.25

_TERM_MAPS: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def term_map(codec: Any) -> np.ndarray | None:
    """``[vocab] int32``: each token id's term (ids that read alike once lower-cased and
    stripped of the leading-space marker share one), or None where the codec has no vocabulary
    to read. Built once per codec (~0.1 s for a 150K vocabulary)."""
    cached = _TERM_MAPS.get(codec)
    if cached is not None:
        return cached
    tok = getattr(codec, "hf", None)
    size = int(getattr(codec, "vocab_size", 0) or 0)
    if tok is None or size <= 0:
        return None
    pieces = tok.convert_ids_to_tokens(list(range(size)))
    index: dict[str, int] = {}
    out = np.empty(size, dtype=np.int32)
    for i, piece in enumerate(pieces):
        word = (piece or "").lstrip("Ġ▁ ").lower() or f"\0{i}"
        out[i] = index.setdefault(word, len(index))
    _TERM_MAPS[codec] = out
    return out


class BlockLexicon:
    """Token ids of the stored blocks, their document frequencies and a BM25 shortlist."""

    def __init__(self, path: Path, block_size: int) -> None:
        self.path = path
        self.block = block_size
        self.terms: np.ndarray | None = None  # token id -> term (term_map), None: ids as terms
        self._ids = np.zeros(0, dtype=np.int32)  # [capacity * block] token ids, blocks in order
        self._folded = np.zeros(0, dtype=np.int32)  # the same as terms (-1: unknown)
        self.n_blocks = 0
        self.n_persisted = 0
        self._df = np.zeros(0, dtype=np.int32)  # term -> blocks holding it
        # False once a block's words are unknown (a store saved before the lexicon): the
        # shortlist is then off and selection scores every block, as before
        self.complete = True

    # ------------------------------------------------------------------ writing
    def set_terms(self, terms: np.ndarray | None) -> None:
        """Fold token ids into terms with ``terms`` (see :func:`term_map`); recounts."""
        self.terms = terms
        self._recount()

    def add(self, ids: np.ndarray) -> None:
        """One block's token ids (``[block]``, -1 where unknown)."""
        ids = np.asarray(ids, dtype=np.int32)
        if ids.shape != (self.block,):
            raise ValueError(f"a block holds {self.block} token ids, got shape {ids.shape}")
        need = (self.n_blocks + 1) * self.block
        if need > self._ids.shape[0]:
            size = max(need, 2 * self._ids.shape[0], 64 * self.block)
            self._ids = _grown(self._ids, size)
            self._folded = _grown(self._folded, size)
        self._ids[need - self.block : need] = ids
        folded = self._fold(ids)
        self._folded[need - self.block : need] = folded
        self.n_blocks += 1
        if (ids < 0).any():
            self.complete = False
        present = np.unique(folded[folded >= 0])
        if present.size:
            if present[-1] >= self._df.shape[0]:
                self._df = _grown(self._df, max(int(present[-1]) + 1, 2 * self._df.shape[0]))
            self._df[present] += 1

    def _fold(self, ids: np.ndarray) -> np.ndarray:
        if self.terms is None:
            return ids.copy()
        folded = self.terms[np.clip(ids, 0, self.terms.shape[0] - 1)]
        return np.where(ids >= 0, folded, -1).astype(np.int32)

    def _recount(self) -> None:
        n = self.n_blocks * self.block
        self._folded = self._fold(self._ids[:n])
        known = self._folded >= 0
        if not known.any():
            self._df = np.zeros(0, dtype=np.int32)
            return
        width = int(self._folded.max()) + 1
        blocks = np.flatnonzero(known) // self.block
        pairs = np.unique(blocks.astype(np.int64) * width + self._folded[known])
        self._df = np.bincount(pairs % width, minlength=width).astype(np.int32)

    def _bytes(self) -> int:
        """Bytes of the file the persisted blocks fill."""
        return self.n_persisted * self.block * 4

    def persist(self, *, sync: bool = True) -> None:
        """Append the blocks not yet in the file (``sync``: and fsync it)."""
        if self.n_blocks > self.n_persisted:
            with open(self.path, "r+b" if self.path.exists() else "wb") as fh:
                fh.seek(self._bytes())
                fh.write(
                    self._ids[self.n_persisted * self.block : self.n_blocks * self.block].tobytes()
                )
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            self.n_persisted = self.n_blocks

    def load(self, path: Path, n_blocks: int) -> None:
        """Read the first ``n_blocks`` blocks' ids from ``path``; a file that lacks them (a
        store saved before the lexicon) leaves the lexicon incomplete (no shortlist)."""
        self.path = path
        size = path.stat().st_size if path.exists() else 0
        self.n_blocks = self.n_persisted = n_blocks
        if n_blocks == 0:  # nothing evicted yet: no file need exist
            self._ids = np.zeros(0, dtype=np.int32)
            self.complete = True
        elif size >= self._bytes():
            self._ids = np.fromfile(path, dtype=np.int32, count=n_blocks * self.block)
            self.complete = True
        else:
            self._ids = np.full(n_blocks * self.block, -1, dtype=np.int32)
            self.complete = False
        self._recount()

    def copy_to(self, path: Path, *, move: bool) -> None:
        """Go on in ``path``: the persisted file moved (``move``) or copied there."""
        self.persist()
        if self.path.exists():
            if move:
                shutil.move(str(self.path), path)
            else:
                atomic_copy_head(self.path, path, self._bytes())
        self.path = path

    def fork(self, path: Path) -> BlockLexicon:
        """An independent copy writing to ``path`` (the ids already on disk copied there; this
        one writes nothing)."""
        twin = BlockLexicon(path, self.block)
        twin.terms = self.terms
        twin._ids = self._ids.copy()
        twin._folded = self._folded.copy()
        twin._df = self._df.copy()
        twin.n_blocks = self.n_blocks
        twin.complete = self.complete
        if self.n_persisted:  # the blocks on disk (the rest goes on in RAM, as in this one)
            atomic_copy_head(self.path, path, self._bytes())
            twin.n_persisted = self.n_persisted
        return twin

    # ------------------------------------------------------------------ reading
    def shortlist(self, query: np.ndarray, n_blocks: int, k: int) -> list[int]:
        """The ``k`` blocks of the first ``n_blocks`` that share the most rare terms with
        ``query`` (token ids), best first; BM25 with every block one document. Terms in more
        than a quarter of the blocks are ignored; blocks sharing no term are not listed."""
        n = min(n_blocks, self.n_blocks)
        q = np.unique(self._fold(np.asarray(query, dtype=np.int32)))
        q = q[(q >= 0) & (q < self._df.shape[0])]
        df = self._df[q]
        keep = (df > 0) & (df <= max(1.0, _COMMON * n))
        q, df = q[keep], df[keep]
        if n == 0 or q.size == 0:
            return []
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        lut = np.full(self._df.shape[0] + 1, -1, dtype=np.int64)  # term -> query slot
        lut[q] = np.arange(q.size)
        slot = lut[self._folded[: n * self.block]]  # -1 (also for unknown ids: lut[-1])
        hit = np.flatnonzero(slot >= 0)
        if hit.size == 0:
            return []
        pairs, tf = np.unique((hit // self.block) * q.size + slot[hit], return_counts=True)
        score = idf[pairs % q.size] * tf * (_K1 + 1) / (tf + _K1)
        per_block = np.bincount(pairs // q.size, weights=score, minlength=n)
        top = np.argsort(-per_block, kind="stable")[:k]
        return [int(b) for b in top if per_block[b] > 0]

    def blocks_holding(self, run: Sequence[int], n_blocks: int) -> list[int]:
        """The blocks of the first ``n_blocks`` where the token ids ``run`` occur in a row (a
        run crossing a block boundary counts for the block it starts in), in stream order;
        none where the ids are unknown (a store restored without them)."""
        n = min(n_blocks, self.n_blocks) * self.block
        want = np.asarray(run, dtype=np.int32)
        if want.size == 0 or want.size > n or not self.complete:
            return []
        ids = self._ids[:n]
        starts = np.flatnonzero(ids[: n - want.size + 1] == want[0])
        for j in range(1, want.size):
            starts = starts[ids[starts + j] == want[j]]
        return sorted({int(i) // self.block for i in starts})


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out
