"""Attention-sink streaming KV cache (StreamingLLM) with static buffers.

Owns the key/value state of one session: the first ``n_sink`` tokens of the stream, a
sliding window of the most recent ``window`` tokens, the positions RoPE sees, and the
attention over them. Never computes projections or sampling: the model core
(:mod:`agentcore.core.llama`) calls :meth:`StreamingCache.attend` once per layer.

Positions, as in StreamingLLM, are assigned *inside the cache*: a cache holding stream
tokens ``[0,1,2,3,6,7,8]`` shows them to the model at positions ``0..6``. Keys are stored
before RoPE (``k_raw``). For speed the window keys are also kept rotated at their stream
position; because RoPE scores depend only on the distance between query and key, and the
window is contiguous in the stream, a query rotated at its stream position sees every
window key at exactly its in-cache distance. Sink keys (and any retrieved keys placed
between sinks and window) live in the *cache frame* and are rotated at their cache
positions against a query rotated at its cache position ``c(p) = R + min(p, n_sink+W-1)``.
The result equals re-rotating every cached key at its cache position each step, without
touching the window. (Decoding with recalled blocks is the one exception, by design: see
:meth:`StreamingCache._decode_frame`.)

Per query at stream position ``p`` the visible keys are the sinks plus stream positions
``p-W+1 .. p``; chunked prefill masks per query, so token-by-token and chunked processing
see identical keys and give identical logits.

:class:`DecodeRows` runs one decode step's attention of several sessions' caches in one native
call per layer, each row over its own cache (batched decoding, :mod:`agentcore.core.batch`);
:class:`DecodeGroup` does it elsewhere (a GPU, a CPU without the native module) over the rows'
keys copied side by side; each cache keeps its own state.

Shapes: buffers are ``[L, B, H_kv, S, D]``; ``attend`` takes ``q: [B, H_q, T, D]`` and
``k, v: [B, H_kv, T, D]`` (pre-RoPE, interleaved rotary layout) and returns ``[B, H_q, T, D]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F

from agentcore.core import native
from agentcore.core.rope import Rotary

if TYPE_CHECKING:
    from agentcore.core.infini import InfiniMemory
    from agentcore.core.recall import EvictedStore

__all__ = [
    "OPENING_TOKENS",
    "DecodeGroup",
    "EvictionListener",
    "StreamingCache",
    "StreamingConfig",
    "merge_state",
]


# the dtypes of caches whose decode attention the native kernel runs (it computes in float32)
NATIVE_ATTENTION_DTYPES = (torch.float32, torch.bfloat16)

OPENING_TOKENS = 64
"""Sinks of a default session: the stream's first 64 tokens, which hold a conversation's
opening (the chat template's system prompt and the first line of the first user turn for both
registered models, ~50 tokens), stay in view for the whole session. StreamingLLM's four sinks
keep only "<|im_start|>system\nYou are"; once the opening had left the window, facts read in
the window or recalled were answered less often than in a short conversation. Measured with
``bench/recall_real.py`` (dev split, 8K, recall on): SmolLM2-135M 36% -> 44% of 36 questions
(5 better, none worse), Qwen2.5-Coder-0.5B 74% -> 85% of 18 (4 better, none worse); the test
split's numbers are in ``docs/benchmarks/recall_real-sinks/``."""


@dataclasses.dataclass(frozen=True)
class StreamingConfig:
    """Sizes of the streaming cache. ``n_sink + window`` is the attention budget per token."""

    n_sink: int = OPENING_TOKENS
    window: int = 2048 - OPENING_TOKENS
    chunk_size: int = 512

    def __post_init__(self) -> None:
        if self.n_sink < 0:
            raise ValueError(f"n_sink must be >= 0, got {self.n_sink}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 1 <= self.chunk_size <= self.window:
            raise ValueError(
                f"chunk_size must be between 1 and window ({self.window}), got {self.chunk_size}"
            )

    @property
    def budget(self) -> int:
        """Keys any single query attends to (sinks + window)."""
        return self.n_sink + self.window

    @classmethod
    def for_budget(
        cls, budget: int, n_sink: int | None = None, chunk_size: int = 512
    ) -> StreamingConfig:
        """A config whose sinks plus window equal ``budget`` tokens; ``n_sink`` defaults to
        :data:`OPENING_TOKENS`, at most a quarter of a small budget."""
        if n_sink is None:
            n_sink = min(OPENING_TOKENS, budget // 4)
        window = budget - n_sink
        return cls(n_sink=n_sink, window=window, chunk_size=min(chunk_size, window))


class EvictionListener(Protocol):
    """Receives keys/values as they leave the window (compressive memory, retrieval store)."""

    def on_evict(
        self, layer: int, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> None:
        """``k_raw, v: [B, H_kv, n, D]`` pre-RoPE, in stream order; ``positions: [n]``."""
        ...

    def on_evict_layers(
        self, k_raw: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> None:
        """Every layer's evictions at once (a decode step): ``k_raw, v: [L, B, H_kv, n, D]``.

        Must equal calling :meth:`on_evict` for each layer in turn."""
        ...


class StreamingCache:
    """Sinks + sliding window KV state for one session, with the attention that reads it.

    Optional ``recall`` (an :class:`~agentcore.core.recall.EvictedStore`) receives evicted
    tokens and supplies relevant evicted blocks that are attended between sinks and window.
    """

    def __init__(
        self,
        config: StreamingConfig,
        *,
        n_layers: int,
        n_kv_heads: int,
        head_dim: int,
        rotary: Rotary,
        device: torch.device,
        dtype: torch.dtype,
        batch: int = 1,
        recall: EvictedStore | None = None,
        memory: InfiniMemory | None = None,
    ) -> None:
        self.config = config
        self.memory = memory
        self.n_layers = n_layers
        self.n_kv_heads = n_kv_heads
        self.head_dim = head_dim
        self.rotary = rotary
        self.device = device
        self.dtype = dtype
        self.batch = batch
        self.recall = recall
        ns, w = config.n_sink, config.window
        self.r_max = recall.config.recalled_tokens if recall is not None else 0
        self.ring0 = ns + self.r_max  # first ring slot in the attention layout
        shape = (n_layers, batch, n_kv_heads)
        # Cache-frame keys before RoPE: [sinks | recalled blocks]
        self.cf_k_raw = torch.zeros((*shape, ns + self.r_max, head_dim), device=device, dtype=dtype)
        self.ring_k_raw = torch.zeros((*shape, w, head_dim), device=device, dtype=dtype)
        # Attention layout [sinks | recalled (cache frame, see _decode_frame) | ring (stream frame)]
        self.att_k = torch.zeros((*shape, self.ring0 + w, head_dim), device=device, dtype=dtype)
        self.att_v = torch.zeros_like(self.att_k)
        self.ring_pos = torch.full((w,), -1, dtype=torch.long)  # stream position per ring slot
        self.pos = 0  # tokens processed so far (the next token's stream position)
        self.listeners: list[EvictionListener] = [x for x in (recall, memory) if x is not None]
        self._lift = 0  # cache-frame positions the recalled blocks sit above the sinks
        # the newest input points back at evicted text (EvictedStore.points_back): its last
        # chunk and reply recall; else they read sinks + window alone
        self._recalling = True
        if recall is not None:
            # recalled blocks sit ``distance`` positions before the newest query (by default
            # right before the window); selection scores keys at that distance
            near = recall.config.distance if recall.config.distance is not None else config.window
            self._lift = max(0, config.window - near)
            recall.set_geometry(rotary, config.window - self._lift + self.r_max // 2)
        self.n_recalled = 0  # recalled tokens currently in the attention layout
        self._cf_offset: int | None = None  # the offset the cache-frame keys in att_k are
        # rotated for in decode steps (None: not yet, rotate before the next decode step)
        self._since_refresh = 0
        self._reselect = False  # a decode step is due to score every block (after new input)
        self._probed = False  # the last forward was a probe of the chunk that comes next
        self._bias_cache: dict[int, torch.Tensor] = {}
        self._head_bias: list[torch.Tensor | None] = [None] * n_layers
        self._step: _StepPlan | None = None
        self._groups = 1  # query heads per KV head; set by the model core

    def set_query_heads(self, n_heads: int) -> None:
        if n_heads % self.n_kv_heads:
            raise ValueError(
                f"{n_heads} query heads do not group evenly over {self.n_kv_heads} KV heads"
            )
        self._groups = n_heads // self.n_kv_heads
        self._head_bias = self._read_head_biases(n_heads)

    def _read_head_biases(self, n_heads: int) -> list[torch.Tensor | None]:
        """Per layer, ``RecallConfig.read_bias`` on the query heads ``read_heads`` names as
        ``[Hkv, G]`` (G query heads per KV head), or None for a layer it leaves alone."""
        cfg = self.recall.config if self.recall is not None else None
        if cfg is None or not cfg.read_bias:
            return [None] * self.n_layers
        for layer, head in cfg.read_heads:
            if layer >= self.n_layers or head >= n_heads:
                raise ValueError(
                    f"RecallConfig.read_heads names head {head} of layer {layer}; this model has "
                    f"{self.n_layers} layers of {n_heads} query heads"
                )
        out: list[torch.Tensor | None] = []
        for layer in range(self.n_layers):
            heads = [h for lay, h in cfg.read_heads if lay == layer]
            if cfg.read_heads and not heads:
                out.append(None)
                continue
            bias = torch.zeros(n_heads, dtype=torch.float32)
            bias[heads if cfg.read_heads else slice(None)] = cfg.read_bias
            out.append(bias.view(self.n_kv_heads, self._groups).to(self.device))
        return out

    def _biased_decode(
        self, layer: int, qg: torch.Tensor, plan: _StepPlan, bias: torch.Tensor
    ) -> torch.Tensor:
        """A decode step's attention ``qg: [B,Hkv,G,D]`` with ``bias: [Hkv, G]`` added to the
        recalled keys' scores of each query head (the chosen heads read recalled text weighed
        up, :meth:`_read_head_biases`): a mask per head, on PyTorch (the native kernel takes
        the bias itself where it runs)."""
        n, ns = plan.n_keys, self.config.n_sink
        hkv, g, d = qg.shape[1], qg.shape[2], qg.shape[3]
        mask = torch.zeros((hkv, g, n), dtype=torch.float32, device=qg.device)
        if plan.key_mask is not None:
            mask += plan.key_mask[0, :n].float()
        mask[:, :, ns : ns + plan.n_recall] += bias[:, :, None]
        keys, vals = self.att_k[layer][:, :, :n], self.att_v[layer][:, :, :n]
        scores = torch.matmul(qg * d**-0.5, keys.transpose(-1, -2)).float()
        return _softmax_values(scores, mask[None], vals)

    # ------------------------------------------------------------------ bookkeeping
    @property
    def n_ring(self) -> int:
        """Window slots currently filled."""
        return int(min(max(self.pos - self.config.n_sink, 0), self.config.window))

    @property
    def n_sinks_filled(self) -> int:
        return min(self.pos, self.config.n_sink)

    def cached_tokens(self) -> int:
        """Tokens held in the cache: sinks, window and recalled blocks."""
        return self.n_sinks_filled + self.n_ring + self.n_recalled

    def cache_position(self, p: torch.Tensor | int, recalled: int = 0) -> torch.Tensor:
        """Cache-frame position of a query at stream position ``p``."""
        limit = self.config.n_sink + self.config.window - 1
        return torch.clamp(torch.as_tensor(p), max=limit) + recalled

    def nbytes(self) -> int:
        tensors = (self.cf_k_raw, self.ring_k_raw, self.att_k, self.att_v)
        return sum(t.numel() * t.element_size() for t in tensors)

    def _recall_tokens(self) -> int:
        """Recalled tokens a forward starting now will see."""
        if self.recall is None or not self._recalling:
            return 0
        return self.recall.recall_blocks() * self.recall.config.block_size

    # ------------------------------------------------------------------ per forward
    def wants_probe(self, n_new: int) -> bool:
        """Whether the last chunk of new input should first be probed (see :meth:`begin`):
        recall is on and there are more blocks than it recalls, so the choice matters."""
        return (
            self.recall is not None
            and n_new > 1
            and self.recall.n_blocks > self.recall.config.top_k
        )

    def begin(self, n_new: int, *, probe: bool = False, ids: torch.Tensor | None = None) -> None:
        """Plan a forward of ``n_new`` tokens: positions, rotations and masks for all layers.

        ``probe``: a dry forward that only lets the recall store see the chunk's queries (the
        model stops it after the last probe layer); it writes nothing and :meth:`end` commits
        nothing. The forward of the same chunk that follows then recalls the blocks those
        queries choose, so a question is read with the facts it asks about in view. Where a
        question may recall nothing (the recall gate, ``evidence_to_recall``), the probe reads
        sinks + window, as the question's forward then does, and that forward can keep the
        probe's layers (:meth:`probe_kept`); without a gate every question recalls, and the
        probe reads the blocks the queries before it chose (:attr:`_probe_reads_window`).
        ``ids``: the ``[n_new]`` token ids read, for the recall store's words (its shortlist).
        """
        cfg = self.config
        if n_new > cfg.chunk_size and n_new > 1:
            raise ValueError(f"a forward of {n_new} tokens exceeds chunk_size={cfg.chunk_size}")
        p0 = self.pos
        positions = torch.arange(p0, p0 + n_new, dtype=torch.long)
        if ids is not None and self.recall is not None:
            self.recall.note_tokens(positions, ids)
        plan = _StepPlan(positions=positions)
        plan.freqs_stream = self.rotary.freqs(positions, self.device)
        self._plan_slots(plan)
        if n_new == 1 and self.listeners and plan.evicted_pos.numel():
            # a decode step: every listener gets every layer's evicted token at once (one copy,
            # a few batched ops instead of a few per layer), before the recall store counts its
            # blocks and before any layer reads the memory (a chunk reads it before its
            # evictions and hands them over layer by layer, in _store)
            slots = plan.ring_slots[plan.evicted_mask]
            k_ev = self.ring_k_raw[:, :, :, slots]
            v_ev = self.att_v[:, :, :, self.ring0 + slots]
            for listener in self.listeners:
                listener.on_evict_layers(k_ev, v_ev, plan.evicted_pos)
        chosen = self._select_for_input(n_new)
        r = 0 if probe and self._probe_reads_window else self._recall_tokens()
        plan.n_recall = r
        if n_new == 1:
            plan.decode = True
            refresh = (
                self.recall is not None
                and r > 0
                and (
                    self.n_recalled != r
                    or self._since_refresh >= self.recall.config.refresh
                    or chosen is not None
                )
            )
            plan.refresh = refresh
            self._since_refresh = 0 if refresh else self._since_refresh + 1
            offset = p0 - int(self.cache_position(p0, r))
            frame = self._decode_frame(offset, refresh)
            plan.cf_offset = frame
            n_cf = self.n_sinks_filled + self.n_recalled
            if refresh and self.recall is not None:
                # the first step after new input scores every block with the latest queries
                # (the question just asked); later refreshes re-rank the candidates it kept
                plan.blocks = chosen if chosen is not None else self.recall.plan(full=False)
                pos = self._cf_positions(cfg.n_sink, r, self._lift)
                plan.freqs_refresh = self.rotary.freqs(pos + frame, self.device)
            if not refresh and n_cf and frame != self._cf_offset:
                self._rotate_cache_frame(frame)
            if self.r_max and r < self.r_max:  # some recalled slots are empty: mask them
                plan.bias = self._decode_bias(r)
            plan.read_bias = self._read_bias if r else 0.0
            n_ring = min(max(p0 + 1 - cfg.n_sink, 0), cfg.window)
            if n_ring == 0:  # sinks only: the ring fills once every sink slot is taken
                plan.n_keys = min(p0 + 1, cfg.n_sink)
            else:
                plan.n_keys = self.ring0 + n_ring
                plan.key_mask = plan.bias if plan.bias.numel() else None
            plan.native = self._native()
        else:
            plan.decode = False
            plan.dry = probe
            plan.observed = self._probed  # the probe saw this chunk's queries
            if r and self.recall is not None:
                if chosen is not None:  # chosen with all of them
                    plan.blocks = chosen
                else:  # a chunk of a long prompt: a few of the queries up to the last forward
                    n_q = self.recall.config.chunk_queries
                    plan.blocks = self.recall.plan(full=True, n_queries=n_q)
            if probe and self.recall is not None:
                # what was asked before this input is the baseline its queries beat
                self.recall.mark_input(p0)
            # the last chunk of new input (probed) reads the recalled span as recent context,
            # as decode does; the chunks of a long text before it read it as the oldest context
            # (right before the window), where it helps the next-token loss most
            last = probe or self._probed  # the last chunk of new input
            lift = self._lift if last else 0
            plan.read_bias = self._read_bias if last and r else 0.0
            self._probed = probe
            plan.freqs_cache = self.rotary.freqs(self.cache_position(positions, r), self.device)
            if r and plan.observed and self.recall is not None and self.recall.config.read_from:
                plan.read_from = self.recall.config.read_from
                plan.freqs_window = self.rotary.freqs(self.cache_position(positions), self.device)
            plan.n_old_sinks = self.n_sinks_filled
            if plan.n_old_sinks or r:
                cf_pos = self._cf_positions(plan.n_old_sinks, r, lift)
                plan.freqs_cf = self.rotary.freqs(cf_pos, self.device)
            w = cfg.window
            # the ring fills slots 0.. in order before it wraps: a chunk reads the filled ones
            # (a short first prompt then attends over its own tokens, not a window of empties)
            plan.n_fill = self.n_ring
            # ring mask [T, n_fill]: slot filled and still inside the query's window
            rp = self.ring_pos[None, : plan.n_fill]
            ring_ok = (rp >= 0) & (rp > positions[:, None] - w)
            # new-token mask [T, T]: causal, inside the window (sinks always visible)
            j = positions[None, :]
            i = positions[:, None]
            new_ok = (j <= i) & ((j > i - w) | (j < cfg.n_sink))
            mask = torch.cat([ring_ok, new_ok], dim=1)  # [T, n_fill+T]
            bias = torch.zeros(mask.shape, dtype=torch.float32).masked_fill_(~mask, float("-inf"))
            # rows follow the folded query layout [G*T]: group-major, then token
            plan.bias = bias.repeat(self._groups, 1).to(self.device, self.dtype)
        self._step = plan

    def _plan_slots(self, plan: _StepPlan) -> None:
        """Where the new tokens go, and which ring entries they evict."""
        cfg = self.config
        positions = plan.positions
        is_sink = positions < cfg.n_sink
        plan.sink_idx = positions[is_sink]
        ring_positions = positions[~is_sink]
        plan.ring_src = torch.nonzero(~is_sink).flatten()
        plan.ring_slots = (ring_positions - cfg.n_sink) % cfg.window
        if plan.ring_src.numel() == 1:  # one token (a decode step): read once, not per layer
            plan.ring_one = (int(plan.ring_slots[0]), int(plan.ring_src[0]))
        old = self.ring_pos[plan.ring_slots]
        plan.evicted_mask = old >= 0
        plan.evicted_pos = old[plan.evicted_mask]

    def _decode_frame(self, offset: int, refresh: bool) -> int:
        """The offset a decode step sees the cache-frame keys (sinks, recalled blocks) rotated for.

        ``offset = p - c(p)`` puts them exactly where the cache places them, right before the
        window, for a query rotated at its stream position ``p``. Without recall only the few
        sinks are there and they follow the query every step. With recall a few hundred
        recalled keys are there too; re-rotating them every step cost more than the attention
        (and scoring them with a second rotation of the query cost ~2 ms per token over 30
        layers), so they are rotated when the blocks are re-selected and then kept: until the
        next re-selection they recede one position per step, at most ``refresh - 1`` positions
        behind their exact place, and are exact again at the next one. The blocks themselves
        are chosen once per ``refresh`` steps too; the positions are no staler than the choice.
        """
        if self.recall is None or refresh or self._cf_offset is None:
            return offset
        if 0 <= offset - self._cf_offset < self.recall.config.refresh:
            return self._cf_offset
        return offset

    def complete_recall_block(self) -> None:
        """New input is about to be read: the evicted tokens still waiting to fill a block
        (up to ``block_size - 1`` of them, just past the window) become a block now, completed
        with the oldest tokens of the window (:meth:`EvictedStore.take_ahead`), so a question
        can recall a fact that has only just left the window."""
        if self.recall is None:
            return
        start, missing = self.recall.missing_ahead()
        if not missing or start + missing > self.pos:  # (a window shorter than a block)
            return
        positions = torch.arange(start, start + missing)
        slots = (positions - self.config.n_sink) % self.config.window
        held = self.ring_pos[slots]
        if not torch.equal(held, positions):  # the window holds them: nothing else is written
            raise RuntimeError(
                f"complete_recall_block: the window holds {held.tolist()} where the waiting "
                f"block goes on with positions {positions.tolist()}"
            )
        dev_slots = slots.to(self.ring_k_raw.device)
        self.recall.take_ahead(
            self.ring_k_raw[:, :, :, dev_slots],
            self.att_v[:, :, :, self.ring0 + dev_slots],
            positions,
        )

    def _select_for_input(self, n_new: int) -> list[int] | None:
        """The blocks the end of new input recalls, chosen with all its queries, and whether
        it recalls at all; None where this forward is not that selection.

        Two forwards select for new input: the chunk that was just probed (its queries seen),
        or, with no probe, the first decode step after new input. Where the input points back
        at no evicted block (:meth:`EvictedStore.points_back`) it and its reply read sinks +
        window alone: the blocks most like a question about text still in the window, read as
        recent context, drew the answer away from the window. A new input's first chunk (a
        probe, or a chunk of text being read) recalls again."""
        if self.recall is None:
            return None
        if n_new > 1 and not self._probed:
            self._recalling = True
            self.recall.new_input()
        reselect = self._reselect if n_new == 1 else self._probed
        if not reselect or not self._recall_tokens():
            return None
        chosen = self.recall.plan(full=True)
        self._reselect = False
        self._recalling = self.recall.points_back()
        return chosen

    def _cf_positions(self, n_sinks: int, r: int, lift: int) -> torch.Tensor:
        """Cache-frame positions of the first ``n_sinks`` sinks and ``r`` recalled tokens: the
        recalled span starts ``lift`` positions above the last sink slot."""
        return torch.cat([torch.arange(n_sinks), self.config.n_sink + lift + torch.arange(r)])

    @property
    def _read_bias(self) -> float:
        return self.recall.config.read_bias if self.recall is not None else 0.0

    def _decode_bias(self, r: int) -> torch.Tensor:
        """``[1, ring0 + W]``: masks the recalled slots beyond the ``r`` recalled tokens."""
        cached = self._bias_cache.get(r)
        if cached is None:
            bias = torch.zeros((1, self.ring0 + self.config.window), dtype=self.dtype)
            bias[:, self.config.n_sink + r : self.ring0] = float("-inf")
            cached = self._bias_cache[r] = bias.to(self.device)
        return cached

    def _rotate_cache_frame(self, offset: int) -> None:
        """Rotate sinks and recalled keys (all layers at once) for queries at ``c(p) + offset``."""
        ns = self.n_sinks_filled
        r = self.n_recalled
        f = self.rotary.freqs(self._cf_positions(ns, r, self._lift) + offset, self.device)
        if ns:
            self.att_k[:, :, :, :ns] = Rotary.rotate(self.cf_k_raw[:, :, :, :ns], f[:ns])
        if r:
            lo = self.config.n_sink
            self.att_k[:, :, :, lo : lo + r] = Rotary.rotate(
                self.cf_k_raw[:, :, :, lo : lo + r], f[ns:]
            )
        self._cf_offset = offset

    def attend(
        self,
        layer: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        rotated: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Store this layer's new keys/values and attend. ``q: [B,Hq,T,D]``, ``k,v: [B,Hkv,T,D]``.
        ``rotated``: a decode step's ``q`` and ``k`` already rotated by :meth:`step_freqs` (the
        native decode path rotates them as it projects them)."""
        plan = self._step
        assert plan is not None, "call begin() before attend()"
        if plan.decode:
            return self._attend_decode(layer, q, k, v, plan, rotated)
        assert rotated is None, "only a decode step takes pre-rotated queries and keys"
        return self._attend_chunk(layer, q, k, v, plan)

    @property
    def _probe_reads_window(self) -> bool:
        """Whether a probe reads sinks + window alone: where the recall gate can leave a
        question reading the window, so that its forward may keep the probe's layers. Without
        a gate nothing is kept, and the probe reads the blocks the queries before it chose
        (on the dev split at 8K, Qwen2.5-Coder-0.5B, whose card has no gate, answered 12.0 of
        16 questions with the window-only probe and 12.7 with this one: nothing gained to pay
        for the change there; SmolLM2, gated, 6.0 and 5.7 of 18)."""
        return self.recall is not None and self.recall.config.evidence_to_recall is not None

    def probe_kept(self) -> int:
        """How many leading layers of the planned forward compute what the probe of its chunk
        computed (they read what the probe read), so that :meth:`store_probed` can take the
        probe's keys and values for them: every layer (``n_layers``) where the chunk recalls
        nothing (its queries point back at no evicted block, :meth:`EvictedStore.points_back`);
        the layers below ``RecallConfig.read_from`` where it recalls and the probe read sinks +
        window (a recall gate, :attr:`_probe_reads_window`); else none."""
        plan = self._step
        if plan is None or plan.decode or not plan.observed:
            return 0
        if plan.n_recall == 0:
            return self.n_layers
        return plan.read_from if self._probe_reads_window else 0

    def store_probed(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store one layer's keys and values ``[B,Hkv,T,D]`` of the planned chunk as its
        forward would (:meth:`probe_kept`: the probe computed them, and the layer's
        attention output, reading the same keys), and stage the layer's recalled blocks for
        the reply, as the forward would."""
        plan = self._step
        assert plan is not None and not plan.decode and not plan.dry, "plan a chunk first"
        if plan.n_recall:
            self._load_recalled(layer, plan.blocks, plan.n_recall)
        self._store(layer, k, Rotary.rotate(k, plan.freqs_stream), v, plan)

    def step_freqs(self) -> torch.Tensor:
        """The rotation of the planned forward's new tokens at their stream positions:
        complex ``[T, D/2]`` (what a decode step rotates its query and key by)."""
        assert self._step is not None, "call begin() first"
        return self._step.freqs_stream

    def end(self) -> None:
        """Commit the planned forward: advance the stream position and the ring bookkeeping."""
        plan = self._step
        assert plan is not None
        if plan.dry:
            self._step = None
            return
        if plan.ring_slots.numel():
            self.ring_pos[plan.ring_slots] = plan.positions[plan.ring_src]
        if plan.sink_idx.numel():  # new sinks joined att_k in the cache frame at offset 0
            self._cf_offset = 0  # (valid until the window fills)
        self.pos += int(plan.positions.numel())
        if plan.decode and plan.refresh:
            self.n_recalled = plan.n_recall
            self._cf_offset = plan.cf_offset
        elif not plan.decode and plan.n_recall:
            self.n_recalled = plan.n_recall
            self._cf_offset = None  # the decode path re-rotates before its first use
            self._since_refresh = 0
        elif not plan.decode and not self._recalling:
            self.n_recalled = 0  # the input points back at nothing evicted: none recalled
        if not plan.decode and self.recall is not None:
            # new input: the next decode step selects afresh, unless this chunk already
            # selected with its own queries (it was probed)
            self._reselect = not plan.observed
        self._step = None

    # ------------------------------------------------------------------ phases
    def _store(
        self, layer: int, k: torch.Tensor, k_rot: torch.Tensor, v: torch.Tensor, plan: _StepPlan
    ) -> None:
        r0 = self.ring0
        if plan.decode and plan.native is not None:  # one call, not three
            raw, raw_slot, att_slot = self._decode_target(plan)
            native.call(
                "decode_store", plan.native.decode_store, k, k_rot, v, raw, self.att_k,
                self.att_v, layer, raw_slot, att_slot,
            )  # fmt: skip
            return
        if plan.sink_idx.numel():
            n = int(plan.sink_idx.numel())
            idx = plan.sink_idx
            self.cf_k_raw[layer, :, :, idx] = k[:, :, :n]
            # new sinks join att_k in the cache frame at offset 0 (valid until the window fills)
            self.att_k[layer, :, :, idx] = k_rot[:, :, :n]
            self.att_v[layer, :, :, idx] = v[:, :, :n]
        if plan.ring_slots.numel():
            src = plan.ring_src
            slots = plan.ring_slots
            if plan.evicted_pos.numel() and self.listeners and not plan.decode:
                ev_slots = slots[plan.evicted_mask]
                ek = self.ring_k_raw[layer, :, :, ev_slots]
                evv = self.att_v[layer, :, :, r0 + ev_slots]
                for listener in self.listeners:
                    listener.on_evict(layer, ek, evv, plan.evicted_pos)
            if plan.ring_one is not None:
                s, i = plan.ring_one
                self.ring_k_raw[layer, :, :, s] = k[:, :, i]
                self.att_k[layer, :, :, r0 + s] = k_rot[:, :, i]
                self.att_v[layer, :, :, r0 + s] = v[:, :, i]
            else:
                self.ring_k_raw[layer, :, :, slots] = k[:, :, src]
                self.att_k[layer, :, :, r0 + slots] = k_rot[:, :, src]
                self.att_v[layer, :, :, r0 + slots] = v[:, :, src]

    def _decode_target(self, plan: _StepPlan) -> tuple[torch.Tensor, int, int]:
        """Where a decode step's new key and value go: the buffer of raw keys, the key's slot
        there, and its slot in ``att_k`` / ``att_v`` (a sink's in the cache frame, else the
        ring's)."""
        if plan.ring_one is not None:
            s = plan.ring_one[0]
            return self.ring_k_raw, s, self.ring0 + s
        sink = int(plan.sink_idx[0])
        return self.cf_k_raw, sink, sink

    def _native(self) -> Any | None:
        """The native decode ops where this cache can use them (float32 on the CPU)."""
        if self.dtype != torch.float32 or self.device.type != "cpu":
            return None
        return native.decode_ops()

    @property
    def _native_shapes(self) -> bool:
        """Whether the native attention takes this cache's keys (:func:`_native_attention`: a
        head size that is a multiple of 8 up to 256; :meth:`_native` checked the dtype)."""
        return self.head_dim % 8 == 0 and self.head_dim <= 256

    def _load_recalled(self, layer: int, blocks: list[int], n: int) -> torch.Tensor:
        """Stage this layer's keys and values of the planned blocks; returns the values
        ``[B,Hkv,n,D]``."""
        assert self.recall is not None
        k_raw, v = self.recall.gather(layer, blocks, self.device, self.dtype)
        lo = self.config.n_sink
        self.cf_k_raw[layer, :, :, lo : lo + n] = k_raw
        self.att_v[layer, :, :, lo : lo + n] = v
        return v

    def _attend_decode(
        self,
        layer: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        plan: _StepPlan,
        rotated: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        # q: [B,Hq,1,D]; k, v: [B,Hkv,1,D]
        self._decode_recall(layer, q, plan)
        if rotated is None:
            f = plan.freqs_stream
            q_rot, k_rot = Rotary.rotate(q, f), Rotary.rotate(k, f)
        else:
            q_rot, k_rot = rotated
        self._store(layer, k, k_rot, v, plan)
        b, hq, _, d = q.shape
        hkv = self.n_kv_heads
        qg = q_rot.view(b, hkv, hq // hkv, d)  # the query heads of a KV group, folded: [B,Hkv,G,D]
        keys, vals, n, mask = self.att_k[layer], self.att_v[layer], plan.n_keys, plan.key_mask
        bias = self._head_bias[layer] if plan.read_bias else None
        if bias is not None:
            ops = _native_attention(qg, keys, vals, mask, n)
            if ops is None:
                out = self._biased_decode(layer, qg, plan, bias)
            else:  # the chosen heads weigh the recalled keys up, in the kernel
                lo = self.config.n_sink
                out = native.call(
                    "decode_attention", ops.decode_attention, qg, keys, vals, mask, n, bias, lo,
                    lo + plan.n_recall,
                )  # fmt: skip
        elif plan.native is not None and self._native_shapes and qg.is_contiguous():
            ops = plan.native  # its shapes checked at the cache's creation
            out = native.call("decode_attention", ops.decode_attention, qg, keys, vals, mask, n)
        else:
            out = decode_attention(qg, keys, vals, mask, n)
        out = out.view(b, hq, 1, d)
        if self.memory is not None:
            out = self.memory.mix(layer, q, out)
        return out

    def _decode_recall(self, layer: int, q: torch.Tensor, plan: _StepPlan) -> None:
        """A decode step's recall on this layer before its attention: the store sees the query
        ``q: [B,Hq,1,D]``, and a refresh stages the recalled blocks and rotates the cache frame's
        keys (the slots before ``ring0``; the new token's slot is in the ring)."""
        if self.recall is None:
            return
        self.recall.observe(layer, q)
        if plan.refresh:
            r = plan.n_recall
            ns = self.config.n_sink
            self._load_recalled(layer, plan.blocks, r)
            self.att_k[layer, :, :, : ns + r] = Rotary.rotate(
                self.cf_k_raw[layer, :, :, : ns + r], plan.freqs_refresh
            )

    def _attend_chunk(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: _StepPlan
    ) -> torch.Tensor:
        b, hq, t, d = q.shape
        hkv = k.shape[1]
        g = hq // hkv
        r0 = self.ring0
        scale = d**-0.5
        if self.recall is not None and not plan.observed:
            self.recall.observe(layer, q)
        q_p = Rotary.rotate(q, plan.freqs_stream)
        k_p = Rotary.rotate(k, plan.freqs_stream)
        filled = r0 + plan.n_fill
        keys = torch.cat([self.att_k[layer, :, :, r0:filled], k_p], dim=2)  # [B,Hkv,n_fill+T,D]
        vals = torch.cat([self.att_v[layer, :, :, r0:filled], v], dim=2)
        qf = q_p.reshape(b, hkv, g * t, d)  # query heads of a KV group folded into the length
        out, lse = attention_with_lse(qf, keys, vals, plan.bias, scale)  # [B,Hkv,GT,D], [B,Hkv,GT]
        n_old, r, freqs_q = plan.n_old_sinks, plan.n_recall, plan.freqs_cache
        if r and layer < plan.read_from:  # below read_from: staged for the reply, not read
            self._load_recalled(layer, plan.blocks, r)
            r, freqs_q = 0, plan.freqs_window
        if n_old or r:
            # sinks and recalled blocks live in the cache frame: score them with the query at
            # its cache position, then merge both softmax parts through their log-sum-exps
            ns = self.config.n_sink
            cf_v = [self.att_v[layer, :, :, :n_old]]
            cf_raw = [self.cf_k_raw[layer, :, :, :n_old]]
            if r:
                cf_v.append(self._load_recalled(layer, plan.blocks, r))
                cf_raw.append(self.cf_k_raw[layer, :, :, ns : ns + r])
            cf_k = Rotary.rotate(torch.cat(cf_raw, dim=2), plan.freqs_cf[: n_old + r]).float()
            q_c = Rotary.rotate(q, freqs_q).reshape(b, hkv, g * t, d).float()
            s_cf = (q_c @ cf_k.transpose(-1, -2)) * scale  # [B,Hkv,GT,n]
            bias = self._head_bias[layer] if plan.read_bias and r else None
            if bias is not None:  # rows are group-major: head (kv, g)'s T queries in a row
                s_cf[..., n_old:] += bias[:, :, None].expand(hkv, g, t).reshape(hkv, g * t, 1)
            lse_total = torch.logaddexp(lse, torch.logsumexp(s_cf, dim=-1))
            w_local = torch.exp(lse - lse_total)[..., None]
            w_cf = torch.exp(s_cf - lse_total[..., None])
            out = (out.float() * w_local + w_cf @ torch.cat(cf_v, dim=2).float()).to(q.dtype)
        out = out.reshape(b, hq, t, d)
        if self.memory is not None:  # read the memory as it was before this chunk's evictions
            out = self.memory.mix(layer, q, out)
        if not plan.dry:
            self._store(layer, k, k_p, v, plan)
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, torch.Tensor | int]:
        ns = self.n_sinks_filled
        return {
            "pos": self.pos,
            "ring_pos": self.ring_pos.clone(),
            "sink_k_raw": self.cf_k_raw[:, :, :, :ns].cpu().clone(),
            "sink_v": self.att_v[:, :, :, :ns].cpu().clone(),
            # the ring fills slots 0.. in order before it wraps: only the filled prefix is saved
            "ring_k_raw": self.ring_k_raw[:, :, :, : self.n_ring].cpu().clone(),
            "ring_v": self.att_v[:, :, :, self.ring0 : self.ring0 + self.n_ring].cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        pos = int(state["pos"])
        ring_pos = state["ring_pos"]
        assert isinstance(ring_pos, torch.Tensor)
        if ring_pos.shape != self.ring_pos.shape:
            raise ValueError(
                f"saved window has {ring_pos.shape[0]} slots, this cache has {self.ring_pos.shape[0]}"
            )
        self.pos = pos
        self.ring_pos = ring_pos.clone().long()
        sink_k, sink_v = state["sink_k_raw"], state["sink_v"]
        ring_k, ring_v = state["ring_k_raw"], state["ring_v"]
        assert isinstance(sink_k, torch.Tensor) and isinstance(sink_v, torch.Tensor)
        assert isinstance(ring_k, torch.Tensor) and isinstance(ring_v, torch.Tensor)
        ns = sink_k.shape[3]
        dev, dt = self.device, self.dtype
        self.cf_k_raw.zero_()
        self.cf_k_raw[:, :, :, :ns] = sink_k.to(dev, dt)
        n_ring = ring_k.shape[3]
        self.ring_k_raw.zero_()
        self.ring_k_raw[:, :, :, :n_ring] = ring_k.to(dev, dt)
        self.att_v.zero_()
        self.att_v[:, :, :, :ns] = sink_v.to(dev, dt)
        self.att_v[:, :, :, self.ring0 : self.ring0 + n_ring] = ring_v.to(dev, dt)
        # rebuild the rotated views from the raw keys
        valid = self.ring_pos >= 0
        ring_rot = torch.zeros_like(self.ring_k_raw)
        if bool(valid.any()):
            slots = torch.nonzero(valid).flatten()
            f = self.rotary.freqs(self.ring_pos[slots], dev)
            ring_rot[:, :, :, slots] = Rotary.rotate(self.ring_k_raw[:, :, :, slots], f)
        self.att_k[:, :, :, self.ring0 :] = ring_rot
        self.n_recalled = 0  # recalled blocks are re-selected on the next forward
        self._since_refresh = 0
        self._reselect = True  # the first decode step scores every block
        self._cf_offset = None
        if ns:
            self._rotate_cache_frame(self.pos - int(self.cache_position(self.pos)))

    def state_since(self, pos: int) -> dict[str, torch.Tensor | int] | None:
        """What the tokens since stream position ``pos`` changed: the ring slots they filled
        (raw keys are stored before RoPE, so no other slot changes) and the sinks while they
        fill. None when they filled the whole ring (save :meth:`state_dict` instead). Apply
        with :func:`merge_state`.
        """
        if not 0 <= pos <= self.pos:
            raise ValueError(f"pos={pos}: expected 0..{self.pos} (the tokens this cache holds)")
        cfg = self.config
        first = max(pos, cfg.n_sink)
        if self.pos - first >= cfg.window:
            return None
        ns = self.n_sinks_filled
        slots = (torch.arange(first, max(first, self.pos)) - cfg.n_sink) % cfg.window  # [n]
        sinks: dict[str, torch.Tensor | int] = {}
        if pos < cfg.n_sink:  # sinks still filling (afterwards they never change)
            sinks["sink_k_raw"] = self.cf_k_raw[:, :, :, :ns].cpu().clone()
            sinks["sink_v"] = self.att_v[:, :, :, :ns].cpu().clone()
        return {
            "pos": self.pos,
            **sinks,
            "slots": slots,
            "ring_pos": self.ring_pos[slots].clone(),
            "ring_k_raw": self.ring_k_raw[:, :, :, slots].cpu().clone(),  # [L,B,H,n,D]
            "ring_v": self.att_v[:, :, :, self.ring0 + slots].cpu().clone(),  # [L,B,H,n,D]
        }


def merge_state(
    state: dict[str, torch.Tensor | int], delta: dict[str, torch.Tensor | int]
) -> dict[str, torch.Tensor | int]:
    """A :meth:`StreamingCache.state_dict` with a :meth:`StreamingCache.state_since` delta
    applied (CPU tensors; the ring comes back at its full width)."""
    ring_pos = state["ring_pos"]
    ring_k, ring_v = state["ring_k_raw"], state["ring_v"]
    slots, d_pos = delta["slots"], delta["ring_pos"]
    d_k, d_v = delta["ring_k_raw"], delta["ring_v"]
    assert isinstance(ring_pos, torch.Tensor) and isinstance(slots, torch.Tensor)
    assert isinstance(ring_k, torch.Tensor) and isinstance(ring_v, torch.Tensor)
    assert isinstance(d_pos, torch.Tensor) and isinstance(d_k, torch.Tensor)
    assert isinstance(d_v, torch.Tensor)
    w = ring_pos.shape[0]
    if ring_k.shape[3] < w:  # a saved ring holds only its filled prefix
        full_k = ring_k.new_zeros((*ring_k.shape[:3], w, ring_k.shape[4]))
        full_v = ring_v.new_zeros((*ring_v.shape[:3], w, ring_v.shape[4]))
        full_k[:, :, :, : ring_k.shape[3]] = ring_k
        full_v[:, :, :, : ring_v.shape[3]] = ring_v
        ring_k, ring_v = full_k, full_v
    ring_pos = ring_pos.clone()
    ring_pos[slots] = d_pos
    ring_k[:, :, :, slots] = d_k.to(ring_k.dtype)
    ring_v[:, :, :, slots] = d_v.to(ring_v.dtype)
    return {
        "pos": delta["pos"],
        "ring_pos": ring_pos,
        "sink_k_raw": delta.get("sink_k_raw", state["sink_k_raw"]),
        "sink_v": delta.get("sink_v", state["sink_v"]),
        "ring_k_raw": ring_k,
        "ring_v": ring_v,
    }


class DecodeGroup:
    """The attention of one decode step of several sessions, each on its own cache, in one call
    of PyTorch's (on a GPU, or a CPU without agentcore's native module; :class:`DecodeRows`
    otherwise).

    Row ``j`` of the batch is ``caches[j]``'s session. Per layer the rows' keys and values
    (sinks and window: ``n_j`` slots each) are copied side by side into ``[B, H_kv, S, D]``
    (``S`` the longest), the new token's key and value put in place, and one attention runs
    over them with the slots past a row's ``n_j`` masked. The copy is what a dozen small ops per
    row and layer are traded for, so :meth:`plan` takes a step only while ``S`` is at most
    ``max_keys`` (SmolLM2, 16 rows: the copy costs more than it saves past a few hundred keys).
    The new keys and values of every layer are written to the caches once, by :meth:`commit`,
    before the caches' :meth:`~StreamingCache.end`. Rotation, stored state and result equal each
    session's own :meth:`StreamingCache.attend` up to the rounding of the attention's sums.
    Recall is not batched (its blocks are chosen and staged per session): :meth:`plan` returns
    None when a cache has it.
    """

    def __init__(self, caches: list[StreamingCache], n_keys: list[int]) -> None:
        self.caches = caches
        first = caches[0]
        self.n_max = max(n_keys)
        plans = [c._step for c in caches]
        assert all(p is not None for p in plans)
        # freqs: [B,1,1,D/2], each row's own rotation (the query's stream position)
        self.freqs = torch.cat([p.freqs_stream for p in plans if p is not None])[:, None, None]
        # mask: [B,1,1,S] additive, -inf on the slots past each row's keys
        keys = torch.tensor(n_keys)[:, None] > torch.arange(self.n_max)[None, :]
        bias = torch.zeros(keys.shape, dtype=first.dtype).masked_fill_(~keys, float("-inf"))
        self.mask = bias[:, None, None].to(first.device)
        # the ring slot each row's new token goes to (a decode step of a stream past its sinks)
        self.ring_slots = [int(p.ring_slots[0]) for p in plans if p is not None]
        self.rows = torch.arange(len(caches), device=first.device)
        self.slots = torch.tensor(
            [c.ring0 + s for c, s in zip(caches, self.ring_slots, strict=True)],
            device=first.device,
        )
        self.memory = [j for j, c in enumerate(caches) if c.memory is not None]
        self._new: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # per layer

    @classmethod
    def plan(cls, caches: Sequence[StreamingCache], max_keys: int = 256) -> DecodeGroup | None:
        """A group for caches that have all :meth:`~StreamingCache.begin` a decode step, or
        None when one cannot join (recall, a stream still in its sinks, another layout, more
        than ``max_keys`` keys in a row: each session then attends alone)."""
        caches = list(caches)
        if len(caches) < 2:
            return None
        first = caches[0]
        n_keys = []
        for c in caches:
            plan = c._step
            if (
                plan is None
                or not plan.decode
                or c.recall is not None
                or c.pos < c.config.n_sink  # its new token is a sink: the ring is empty
                or c.n_kv_heads != first.n_kv_heads
                or c.head_dim != first.head_dim
                or c.batch != 1
                or c._groups != first._groups
                or c.dtype != first.dtype
                or c.device != first.device
            ):
                return None
            n_keys.append(c.ring0 + min(c.pos + 1 - c.config.n_sink, c.config.window))
        if max(n_keys) > max_keys:
            return None
        return cls(caches, n_keys)

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Each row's :meth:`StreamingCache.attend`. ``q: [B,Hq,1,D]``, ``k,v: [B,Hkv,1,D]``."""
        q_rot = Rotary.rotate(q, self.freqs)
        k_rot = Rotary.rotate(k, self.freqs)
        n = self.n_max
        keys = torch.cat([self._keys(c.att_k[layer], n) for c in self.caches])  # [B,Hkv,S,D]
        vals = torch.cat([self._keys(c.att_v[layer], n) for c in self.caches])
        keys[self.rows, :, self.slots] = k_rot[:, :, 0]  # [B,Hkv,D] into each row's slot
        vals[self.rows, :, self.slots] = v[:, :, 0]
        self._new.append((k[:, :, 0], k_rot[:, :, 0], v[:, :, 0]))
        b, hq, _, d = q.shape
        hkv = keys.shape[1]
        qg = q_rot.view(b, hkv, hq // hkv, d)  # [B,Hkv,G,D]
        out = F.scaled_dot_product_attention(qg, keys, vals, attn_mask=self.mask)
        out = out.reshape(b, hq, 1, d)
        for j in self.memory:
            memory = self.caches[j].memory
            assert memory is not None
            out[j : j + 1] = memory.mix(layer, q[j : j + 1], out[j : j + 1])
        return out

    @staticmethod
    def _keys(buffer: torch.Tensor, n: int) -> torch.Tensor:
        """The first ``n`` slots of one layer's ``buffer: [1,Hkv,S,D]``, zero-padded where a
        smaller window holds fewer (the padding is masked)."""
        if buffer.shape[2] >= n:
            return buffer[:, :, :n]
        return F.pad(buffer, (0, 0, 0, n - buffer.shape[2]))

    def commit(self) -> None:
        """Write every layer's new key and value into each row's cache (before its ``end``)."""
        if not self._new:
            return
        k_raw, k_rot, v = (torch.stack(t) for t in zip(*self._new, strict=True))  # [L,B,Hkv,D]
        layers = len(self._new)
        for j, (c, s) in enumerate(zip(self.caches, self.ring_slots, strict=True)):
            c.ring_k_raw[:layers, 0, :, s] = k_raw[:, j]
            c.att_k[:layers, 0, :, c.ring0 + s] = k_rot[:, j]
            c.att_v[:layers, 0, :, c.ring0 + s] = v[:, j]
        self._new = []


class DecodeRows:
    """One decode step's attention of several sessions, each on its own cache, in one native call
    per layer.

    Row ``j`` of the batch is ``caches[j]``'s session. Per layer one call
    (``decode_attend_rows``) stores every row's new key and value in its own cache and runs
    every row's attention over its own keys, where :class:`DecodeGroup` copies them side by
    side; what a row's step does besides (recall's observation and refresh, compressive
    memory) stays per row, as in :meth:`StreamingCache.attend`. The caches are float32 or bf16
    (the kernel reads bf16 keys and computes in float32). Float32 steps run on the native
    decode ops from end to end: :meth:`attend` takes ``decode_qkv``'s rotated query and key,
    the kernels and the order of their sums are a row's own step's, and each row's result is
    the session's alone bit for bit with int8 weights scaled per group of inputs, as
    ``Engine.load`` holds them (with one scale per row the int8 kernel tiles batches of 8 rows
    or more, which rounds differently). Elsewhere (bf16) the model's PyTorch layers rotate with
    :meth:`rotation` and the rows' attention equals the session's alone (the same kernel);
    the batch's projections round as a matrix product of more rows does.

    Each row's new key and value go where the session alone puts them
    (:meth:`StreamingCache._decode_target`: its ring slot, or, while the stream is in its first
    ``n_sink`` tokens, its sink's slot in the cache frame).
    """

    def __init__(self, caches: list[StreamingCache]) -> None:
        self.caches = caches
        plans = [c._step for c in caches]
        self.plans: list[_StepPlan] = [p for p in plans if p is not None]
        ops = native.decode_ops()
        assert ops is not None, "DecodeRows.plan checks for the native module"
        self.ops: Any = ops
        empty = torch.empty(0)
        self.att_ks = [c.att_k for c in caches]
        self.att_vs = [c.att_v for c in caches]
        # float32 once per step (a bf16 cache's mask would be widened in every layer's call)
        self.masks = [empty if p.key_mask is None else p.key_mask.float() for p in self.plans]
        # each row's rotation (the query's stream position), complex: [B, D/2]
        self._rotation = torch.cat([p.freqs_stream for p in self.plans])
        self.raws: list[torch.Tensor] = []
        slots = []
        for c, p in zip(caches, self.plans, strict=True):
            raw, raw_slot, att_slot = c._decode_target(p)
            self.raws.append(raw)
            lo = c.config.n_sink  # the recalled keys, which a row's chosen heads weigh up
            slots.append([raw_slot, att_slot, p.n_keys, lo, lo + p.n_recall])
        # [B, 5]: raw slot, attention slot, keys, first and end recalled key
        self.slots = torch.tensor(slots, dtype=torch.long)
        # rows whose recall acts at a layer: every layer of a row that re-selects its blocks
        # this step, only the store's probe layers (where it notes the query) of the others;
        # a row and layer with nothing to do costs no call (16 rows x 30 layers a step)
        self.recall_at: dict[int, list[int]] = {}
        for j, c in enumerate(caches):
            if c.recall is not None:
                acts = range(c.n_layers) if self.plans[j].refresh else c.recall.probes
                for layer in acts:
                    self.recall_at.setdefault(layer, []).append(j)
        self.memory = [j for j, c in enumerate(caches) if c.memory is not None]
        self.biased = [j for j, p in enumerate(self.plans) if p.read_bias]

    @classmethod
    def plan(cls, caches: Sequence[StreamingCache]) -> DecodeRows | None:
        """Rows for caches that have all :meth:`~StreamingCache.begin` a decode step the native
        attention takes (float32 or bf16 on the CPU), or None when one cannot join (no native
        module, a cache of several rows, another dtype or layout): the sessions then step
        another way."""
        caches = list(caches)
        if len(caches) < 2 or native.decode_ops() is None:
            return None
        first = caches[0]
        for c in caches:
            plan = c._step
            if (
                plan is None
                or not plan.decode
                or c.dtype not in NATIVE_ATTENTION_DTYPES
                or c.device.type != "cpu"
                or not c._native_shapes
                or c.batch != 1
                or c.dtype != first.dtype
                or c.n_kv_heads != first.n_kv_heads
                or c.head_dim != first.head_dim
            ):
                return None
        return cls(caches)

    def rotation(self) -> torch.Tensor:
        """Each row's rotation for :meth:`~agentcore.core.rope.Rotary.rotate`: ``[B,1,1,D/2]``
        (complex; the query's stream position)."""
        return self._rotation[:, None, None]

    def freqs(self) -> torch.Tensor:
        """Each row's rotation as ``(cos, sin)`` pairs: ``[B, D/2, 2]`` (``decode_qkv``'s)."""
        return torch.view_as_real(self._rotation)

    def attend(
        self,
        layer: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        rotated: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Each row's :meth:`StreamingCache.attend`: ``q: [B,Hq,1,D]``, ``k, v: [B,Hkv,1,D]``
        and ``rotated``, the rotated query and key (``decode_qkv``'s), or None: rotated here
        by :meth:`rotation`."""
        if rotated is None:
            f = self.rotation()
            q_rot, k_rot = Rotary.rotate(q, f), Rotary.rotate(k, f)
        else:
            q_rot, k_rot = rotated
        for j in self.recall_at.get(layer, ()):
            self.caches[j]._decode_recall(layer, q[j : j + 1], self.plans[j])
        biases: list[torch.Tensor] = []  # rows whose chosen heads weigh recalled text up
        if self.biased:
            none = torch.empty(0)
            biases = [none] * len(self.caches)
            for j in self.biased:
                bias = self.caches[j]._head_bias[layer]
                biases[j] = none if bias is None else bias
        out = native.call(
            "decode_attend_rows", self.ops.decode_attend_rows, q_rot, k, k_rot, v, self.raws,
            self.att_ks, self.att_vs, self.masks, self.slots, layer, biases,
        )  # fmt: skip
        for j in self.memory:
            memory = self.caches[j].memory
            assert memory is not None
            out[j : j + 1] = memory.mix(layer, q[j : j + 1], out[j : j + 1])
        return out


def decode_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    n_keys: int | None = None,
) -> torch.Tensor:
    """One decode step's attention: ``q: [B,H,G,D]`` against the first ``n_keys`` (None: all)
    of ``k, v: [B,H,S,D]``; ``mask``: additive, ``[1, >= n_keys]``.

    The step is bound by reading K and V. agentcore's native kernel does it in one pass where
    it runs (float32 or bf16 on an AVX2 CPU, :func:`_native_attention`; bf16, SmolLM2's 30
    layers at 2048 keys: 3.1 against 6.9 ms for the matmuls below). Otherwise: over a full window
    (``k`` one contiguous buffer) two matmuls with a float32 softmax between them read it
    faster on a CPU than the fused kernel (5.5 vs 8.4 ms per token for SmolLM2's 30 layers at
    2048 keys); over a partly filled window ``k`` is a strided slice that the matmuls would
    copy, and the fused kernel is faster there.
    """
    n = k.shape[2] if n_keys is None else n_keys
    ops = _native_attention(q, k, v, mask, n)
    if ops is not None:
        return native.call("decode_attention", ops.decode_attention, q, k, v, mask, n)
    if n != k.shape[2]:
        k, v = k[:, :, :n], v[:, :, :n]
    if mask is not None and mask.shape[-1] != n:
        mask = mask[..., :n]
    if q.device.type != "cpu" or not (k.is_contiguous() and v.is_contiguous()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return _softmax_values(torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2)), mask, v)


def _native_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, n: int
) -> Any | None:
    """agentcore's native decode ops where they take this attention over ``n`` keys (float32
    or bf16 on the CPU, query, keys and values of one dtype, a contiguous query, keys and
    values laid out alike with contiguous rows, head size a multiple of 8, a contiguous mask of
    at least ``n`` values), else None. One pass over the keys with a float32 softmax, see
    :mod:`agentcore.core.native`."""
    if (
        q.dtype not in NATIVE_ATTENTION_DTYPES
        or k.dtype != q.dtype
        or v.dtype != q.dtype
        or q.device.type != "cpu"
        or not q.is_contiguous()
        or q.shape[-1] % 8
        or q.shape[-1] > 256
        or k.stride() != v.stride()
        or k.stride(-1) != 1
        or (
            mask is not None
            and (
                mask.dtype not in NATIVE_ATTENTION_DTYPES
                or mask.numel() < n
                or not mask.is_contiguous()
            )
        )
    ):
        return None
    return native.decode_ops()


def _softmax_values(
    scores: torch.Tensor, mask: torch.Tensor | None, v: torch.Tensor
) -> torch.Tensor:
    """``softmax(scores + mask) @ v``, the softmax in float32."""
    if mask is not None:
        scores = scores + mask
    return torch.matmul(torch.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype), v)


def attention_with_lse(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention that also returns the log-sum-exp of each query's scores.

    ``q: [B,H,M,D]``, ``k, v: [B,H,S,D]``, ``bias: [M,S]`` additive (0 / -inf) ->
    ``out: [B,H,M,D]``, ``lse: [B,H,M]`` float32. Uses PyTorch's fused CPU flash kernel when
    available, else plain matmuls (GPU: cheap enough for chunked prefill).
    """
    if q.device.type == "cpu" and _CPU_FLASH is not None:
        out, lse = _CPU_FLASH(q, k, v, attn_mask=bias, scale=scale)
        return out, lse.float()
    s = (q.float() @ k.float().transpose(-1, -2)) * scale + bias.float()
    lse = torch.logsumexp(s, dim=-1)
    out = torch.exp(s - lse[..., None]) @ v.float()
    return out.to(q.dtype), lse


_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


@dataclasses.dataclass
class _StepPlan:
    positions: torch.Tensor
    decode: bool = False
    freqs_stream: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    freqs_cache: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    n_old_sinks: int = 0
    n_recall: int = 0
    # a chunk: the first layer that reads the recalled blocks (RecallConfig.read_from), and
    # the rotation its queries get in the layers below it, which read sinks + window alone
    read_from: int = 0
    freqs_window: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    blocks: list[int] = dataclasses.field(default_factory=list)  # recalled blocks (all layers)
    dry: bool = False  # a probe: attend, let recall observe the queries, store nothing
    observed: bool = False  # recall already saw this chunk's queries (in its probe)
    refresh: bool = False
    cf_offset: int = 0
    freqs_refresh: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    freqs_cf: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    bias: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    read_bias: float = 0.0  # RecallConfig.read_bias while this step reads recalled tokens
    sink_idx: torch.Tensor = dataclasses.field(
        default_factory=lambda: torch.empty(0, dtype=torch.long)
    )
    ring_src: torch.Tensor = dataclasses.field(
        default_factory=lambda: torch.empty(0, dtype=torch.long)
    )
    ring_slots: torch.Tensor = dataclasses.field(
        default_factory=lambda: torch.empty(0, dtype=torch.long)
    )
    ring_one: tuple[int, int] | None = None  # (slot, source) when one token goes to the ring
    # a decode step: the keys its query reads (the first n_keys of att_k) and their mask
    n_keys: int = 0
    key_mask: torch.Tensor | None = None
    native: Any = None  # a decode step: the native decode ops, where this cache can use them
    n_fill: int = 0  # a chunk: the ring slots filled before it (all of them once it wrapped)
    evicted_mask: torch.Tensor = dataclasses.field(
        default_factory=lambda: torch.empty(0, dtype=torch.bool)
    )
    evicted_pos: torch.Tensor = dataclasses.field(
        default_factory=lambda: torch.empty(0, dtype=torch.long)
    )
