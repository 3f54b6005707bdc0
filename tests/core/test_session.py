"""Sessions: append-only streams, chat-template consistency, sampling, stop rules, save/restore."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from array import array
from pathlib import Path
from typing import Any

import pytest
import torch

from agentcore.agent import AgentConfig
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.params import DIGIT_RUN
from agentcore.core.sampling import Sampler, SamplingParams, _draw, _nucleus
from agentcore.core.session import SessionConfig
from agentcore.core.state import SessionStateError

CFG = SessionConfig(streaming=StreamingConfig(n_sink=4, window=96, chunk_size=32))


def test_append_feeds_only_new_tokens(tiny_engine: Engine) -> None:
    s = tiny_engine.new_session(CFG)
    s.append("hello ")
    n1 = s.n_tokens
    pos1 = s.cache.pos
    s.append("world")
    assert s.n_tokens == n1 + 5
    assert s.cache.pos == pos1 + 5
    one_shot = tiny_engine.new_session(CFG)
    one_shot.append("hello world")
    assert torch.allclose(s.next_logits, one_shot.next_logits, atol=1e-5)  # type: ignore[arg-type]


class AsciiOnly:
    """A token constraint: printable ASCII bytes or the end-of-turn token (valid UTF-8 always)."""

    def __init__(self, vocab: int, end: int) -> None:
        self.mask = torch.zeros(vocab, dtype=torch.bool)
        self.mask[32:127] = True
        self.mask[end] = True
        self.seen: list[int] = []

    def allowed_tokens(self) -> torch.Tensor:
        return self.mask

    def advance(self, token_id: int) -> None:
        assert self.mask[token_id]
        self.seen.append(token_id)

    def is_finished(self) -> bool:
        return False


def test_chat_turns_hold_the_full_conversation_tokens(tiny_engine: Engine) -> None:
    s = tiny_engine.new_session(CFG)
    codec = tiny_engine.codec
    for turn in ["hi", "what is 2+2?", "and 3+3?"]:
        constraint = AsciiOnly(258, 257)
        s.chat(turn, SamplingParams(max_tokens=12, temperature=0.8, seed=1), constraint=constraint)
        assert constraint.seen  # the constraint was consulted for every token
        # close the assistant turn the way the template does, then compare the whole stream
        expected = codec.encode(codec.render_chat(s.messages, add_generation_prompt=False))
        assert s.tokens.tolist() == expected[: len(s.tokens)]
        assert len(expected) - len(s.tokens) <= 2  # at most the template's end-of-turn marker
    full = codec.encode(codec.render_chat([*s.messages, {"role": "user", "content": "x"}], True))
    s.append_messages([{"role": "user", "content": "x"}])
    assert s.tokens.tolist() == full


def test_greedy_is_deterministic_and_seeded_sampling_reproducible(tiny_engine: Engine) -> None:
    outs = []
    for _ in range(2):
        s = tiny_engine.new_session(CFG)
        s.append("abc")
        outs.append(s.generate(SamplingParams(max_tokens=10, stop_token_ids=())).token_ids)
    assert outs[0] == outs[1]
    sampled = []
    for _ in range(2):
        s = tiny_engine.new_session(CFG)
        s.append("abc")
        p = SamplingParams(
            max_tokens=10, temperature=1.0, top_p=0.9, top_k=50, seed=7, stop_token_ids=()
        )
        sampled.append(s.generate(p).token_ids)
    assert sampled[0] == sampled[1]


def test_generated_tokens_are_appended(tiny_engine: Engine) -> None:
    s = tiny_engine.new_session(CFG)
    s.append("abc")
    before = s.n_tokens
    r = s.generate(SamplingParams(max_tokens=7, stop_token_ids=()))
    assert r.finish_reason == "length"
    assert s.n_tokens == before + 7
    assert s.tokens.tolist()[-7:] == list(r.token_ids)


def test_a_token_reaches_the_caller_before_the_step_that_feeds_it(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first token comes from the prompt's logits: it is streamed before any decode step
    runs (behind a long prompt of another session, that step can wait a whole chunk)."""
    s = tiny_engine.new_session(CFG)
    s.append("abc")
    before = s.n_tokens
    steps: list[int] = []
    decode = tiny_engine.decode
    monkeypatch.setattr(tiny_engine, "decode", lambda c, t: (steps.append(t), decode(c, t))[1])
    seen: list[tuple[int, int, int]] = []  # (token, steps run, session length) at each event
    r = s.generate(
        SamplingParams(max_tokens=5, stop_token_ids=()),
        constraint=Forced(tiny_engine.codec.vocab_size, list(b"hello")),  # a piece per token
        on_token=lambda e: seen.append((e.token_id, len(steps), s.n_tokens)),
    )
    assert [t for t, _, _ in seen] == list(r.token_ids)
    assert [(n, length) for _, n, length in seen] == [(i, before + i) for i in range(5)]
    assert steps == list(r.token_ids) and s.n_tokens == before + 5


def test_a_token_is_fed_even_when_the_caller_stops_reading_at_it(tiny_engine: Engine) -> None:
    s = tiny_engine.new_session(CFG)
    s.append("abc")
    before = s.n_tokens
    gen = s.stream(SamplingParams(max_tokens=5, stop_token_ids=()))
    first = next(gen)
    gen.close()
    assert s.n_tokens == before + 1 and s.tokens.tolist()[-1] == first.token_id
    whole = tiny_engine.new_session(CFG)
    whole.append_tokens(s.tokens.tolist())
    assert torch.allclose(s.next_logits, whole.next_logits, atol=1e-5)  # type: ignore[arg-type]


def test_stop_strings_cut_the_text(tiny_engine: Engine) -> None:
    s = tiny_engine.new_session(CFG)
    s.append("abc")
    free = s.generate(SamplingParams(max_tokens=20, stop_token_ids=())).text
    assert len(free) > 3
    stop = free[2:4]
    s2 = tiny_engine.new_session(CFG)
    s2.append("abc")
    events: list[str] = []
    r = s2.generate(
        SamplingParams(max_tokens=20, stop=(stop,), stop_token_ids=()),
        on_token=lambda e: events.append(e.text),
    )
    assert r.finish_reason == "stop"
    assert r.text == free[: free.find(stop)]
    assert "".join(events) == r.text


class Forced:
    """A token constraint that allows exactly one given sequence of ids."""

    def __init__(self, vocab: int, ids: list[int]) -> None:
        self.vocab, self.ids, self.at = vocab, ids, 0

    def allowed_tokens(self) -> torch.Tensor:
        mask = torch.zeros(self.vocab, dtype=torch.bool)
        mask[self.ids[self.at]] = True
        return mask

    def advance(self, token_id: int) -> None:
        self.at += 1

    def is_finished(self) -> bool:
        return self.at >= len(self.ids)


def _forced_generation(engine: Engine, ids: list[int], n: int) -> tuple[Any, list[str]]:
    """Generate ``ids[:n]`` (forced), returning the result and the streamed pieces."""
    s = engine.new_session(CFG)
    s.append_text("x")
    pieces: list[str] = []
    out = s.generate(
        SamplingParams(max_tokens=n, stop_token_ids=()),
        constraint=Forced(engine.codec.vocab_size, ids),
        on_token=lambda ev: pieces.append(ev.text),
    )
    return out, pieces


def test_max_tokens_never_cuts_a_character_in_half(tiny_engine: Engine) -> None:
    """Bytes of a character that ``max_tokens`` cut off are held back, not shown as U+FFFD."""
    ids = list("東京東京".encode())
    for n, expected in ((4, "東"), (5, "東"), (6, "東京"), (2, "")):
        out, pieces = _forced_generation(tiny_engine, ids, n)
        assert out.finish_reason == "length" and out.token_ids == tuple(ids[:n])
        assert out.text == "".join(pieces) == expected


def test_sampler_filters() -> None:
    logits = torch.tensor([0.0, 5.0, 4.9, -1.0])
    sampler = Sampler(seed=0)
    picks = {sampler.pick(logits, SamplingParams(temperature=1.0, top_k=2)) for _ in range(200)}
    assert picks == {1, 2}
    picks = {sampler.pick(logits, SamplingParams(temperature=1.0, top_p=0.3)) for _ in range(100)}
    assert picks == {1}
    allowed = torch.tensor([True, False, False, True])
    assert sampler.pick(logits, SamplingParams(), allowed=allowed) == 0
    # repetition penalty demotes recently used tokens
    assert sampler.pick(logits, SamplingParams(repetition_penalty=2.0), recent=[1]) == 2
    # a negative logit is multiplied; ids past the vocabulary are ignored
    two = torch.tensor([-1.0, -1.2])
    assert sampler.pick(two, SamplingParams(repetition_penalty=2.0), recent=[0, 0, 99]) == 1


def test_sampled_tokens_follow_the_distribution_and_top_p_keeps_the_nucleus() -> None:
    """The draw (one uniform number against the cumulative sum) picks tokens as often as their
    probabilities say, and top-p keeps what a full sort keeps, also when the nucleus holds more
    tokens than its first partial top-k looks at (a flat distribution over 3,000 tokens)."""
    probs = torch.tensor([0.5, 0.0, 0.3, 0.15, 0.05])
    sampler = Sampler(seed=3)
    draws = torch.tensor([_draw(probs, sampler.generator) for _ in range(4000)])
    counts = torch.bincount(draws, minlength=5).float() / 4000
    assert counts[1] == 0  # a token of probability 0 is never drawn
    torch.testing.assert_close(counts, probs, atol=0.025, rtol=0)
    gen = torch.Generator().manual_seed(4)
    cases = [
        (torch.randn(49152, generator=gen) * 4, 0.9),  # peaked: a few dozen tokens
        (torch.randn(3000, generator=gen) * 0.01, 0.95),  # flat: ~2,850 tokens
        (torch.randn(600, generator=gen) * 0.5, 0.5),  # more than 64, fewer than 512
    ]
    for x, top_p in cases:
        order = torch.sort(x, descending=True).indices
        p_sorted = torch.softmax(x, dim=-1)[order]
        want = order[(torch.cumsum(p_sorted, dim=-1) - p_sorted) <= top_p]
        kept_x, kept = _nucleus(x, top_p)
        assert kept.tolist() == want.tolist()
        assert torch.equal(kept_x, x[want])
    with pytest.raises(ValueError, match="no token can be drawn"):  # every logit masked
        sampler.pick(torch.full((5,), float("-inf")), SamplingParams(temperature=1.0))
    # sampling with top-p only ever picks nucleus tokens
    x, top_p = cases[2]
    nucleus = set(_nucleus(x, top_p)[1].tolist())
    params = SamplingParams(temperature=1.0, top_p=top_p)
    picks = {sampler.pick(x, params) for _ in range(300)}
    assert picks <= nucleus and len(picks) > len(nucleus) // 2


def test_picking_never_changes_the_callers_logits_and_greedy_takes_the_first_best() -> None:
    logits = torch.tensor([0.5, 2.0, -1.0, 2.0, 1.5])
    before = logits.clone()
    sampler = Sampler(seed=1)
    cases: list[tuple[SamplingParams, dict[str, Any]]] = [
        (SamplingParams(), {}),
        (SamplingParams(repetition_penalty=2.0), {"recent": [1]}),
        (SamplingParams(presence_penalty=1.0, frequency_penalty=0.5), {"reply": [1, 1]}),
        (SamplingParams(temperature=0.8, top_p=0.9, top_k=3), {"recent": [3]}),
        (SamplingParams(), {"allowed": torch.tensor([True, False, True, True, True])}),
    ]
    picks = [sampler.pick(logits, params, **kw) for params, kw in cases]
    assert torch.equal(logits, before)
    assert picks[0] == 1  # a tie: the first of the largest, as torch.argmax
    assert picks[1] == 3 and picks[2] == 3 and picks[4] == 3
    assert sampler.pick(torch.tensor([0.0, float("nan"), 1.0]), SamplingParams()) == 1


def test_presence_and_frequency_penalties_follow_openai() -> None:
    logits = torch.zeros(3)
    sampler = Sampler(seed=0)
    reply = [1, 1, 2]  # token 1 twice, token 2 once
    # logit[j] -= presence * (count > 0) + frequency * count
    assert sampler.pick(logits, SamplingParams(presence_penalty=0.5), reply=reply) == 0
    assert sampler.pick(logits, SamplingParams(frequency_penalty=-1.0), reply=reply) == 1
    favour_seen = SamplingParams(presence_penalty=-1.0, frequency_penalty=0.6)
    assert sampler.pick(torch.tensor([0.0, 0.0, 0.1]), favour_seen, reply=reply) == 2
    # a masked token stays masked, however much a negative penalty favours it
    allowed = torch.tensor([True, False, True])
    strong = SamplingParams(frequency_penalty=-2.0)
    assert sampler.pick(logits, strong, reply=reply, allowed=allowed) == 2
    assert sampler.pick(logits, strong) in (0, 1, 2)  # no reply yet: no penalty


def test_unseeded_samplers_differ_and_seeds_repeat() -> None:
    logits = torch.zeros(50)  # uniform: every pick is up to the random generator
    params = SamplingParams(temperature=1.0)

    def picks(sampler: Sampler) -> list[int]:
        return [sampler.pick(logits, params) for _ in range(20)]

    assert picks(Sampler()) != picks(Sampler())
    for seed in (0, -1, -(2**63), 2**63 - 1):
        assert picks(Sampler(seed)) == picks(Sampler(seed))
    assert picks(Sampler(-1)) != picks(Sampler(1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -1.0),
        ("top_p", 0.0),
        ("top_k", -3),
        ("max_tokens", -1),
        ("repetition_penalty", 0.0),
        ("repetition_scope", "both"),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -2.1),
    ],
)
def test_bad_sampling_params_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value})


def _recents(
    engine: Engine,
    params: SamplingParams,
    penalize: Any = None,
    replies: Any = None,
    text: str = "the cat sat on the mat",
) -> tuple[list[int], list[list[int]]]:
    """The prompt's tokens and the ``recent`` list the sampler saw at each generated token
    (and, into ``replies``, the ``reply`` list it saw)."""
    s = engine.new_session(CFG)
    s.append(text)
    seen: list[list[int]] = []
    pick = s.sampler.pick

    def spy(
        logits: torch.Tensor,
        p: SamplingParams,
        recent: Any = (),
        allowed: Any = None,
        reply: Any = (),
    ) -> int:
        seen.append(list(recent))
        if replies is not None:
            replies.append(list(reply))
        return pick(logits, p, recent, allowed, reply)

    s.sampler.pick = spy  # type: ignore[method-assign]
    prompt = s.tokens.tolist()
    s.generate(params, penalize=penalize)
    return prompt, seen


def test_repetition_scope_decides_what_is_penalised(tiny_engine: Engine) -> None:
    base = dict(max_tokens=4, repetition_penalty=1.3, stop_token_ids=())
    prompt, seen = _recents(tiny_engine, SamplingParams(**base))  # type: ignore[arg-type]
    assert seen[0] == prompt  # "context": the prompt's tokens count, as in transformers
    assert seen[3][: len(prompt)] == prompt and len(seen[3]) == len(prompt) + 3
    _, seen = _recents(tiny_engine, SamplingParams(**base, repetition_scope="reply"))  # type: ignore[arg-type]
    assert [len(r) for r in seen] == [0, 1, 2, 3]  # only what this reply generated
    # the gate switches the penalty off (e.g. inside a tool call's JSON)
    _, seen = _recents(tiny_engine, SamplingParams(**base), penalize=lambda text: False)  # type: ignore[arg-type]
    assert seen == [[], [], [], []]
    replies: list[list[int]] = []
    _recents(tiny_engine, SamplingParams(**base), replies=replies)  # type: ignore[arg-type]
    assert [len(r) for r in replies] == [0, 1, 2, 3]  # presence/frequency: this reply only
    replies.clear()
    _recents(tiny_engine, SamplingParams(**base), penalize=lambda text: False, replies=replies)  # type: ignore[arg-type]
    assert replies == [[], [], [], []]


def test_digits_are_never_penalised(tiny_engine: Engine) -> None:
    """A number repeats its digits: copying a tool's result 444 under the agent's penalty gave
    "4." (SmolLM2). With ``penalize_digits=False`` (the agent's replies) digit tokens stay out
    of what every penalty counts."""

    def digits(ids: list[int]) -> set[int]:
        return {t for t in ids if tiny_engine.codec.decode([t]).strip().isdigit()}

    replies: list[list[int]] = []
    base = dict(max_tokens=6, repetition_penalty=1.3, presence_penalty=0.5, stop_token_ids=())
    params = SamplingParams(**base, penalize_digits=False)  # type: ignore[arg-type]
    prompt, seen = _recents(tiny_engine, params, replies=replies, text="result: 444 and 2025")
    assert digits(prompt)  # the prompt holds digit tokens
    assert seen[0] == [t for t in prompt if t not in digits(prompt)]  # its words count
    assert not any(digits(r) for r in seen + replies)
    # by default every token counts, as OpenAI and transformers define the penalties
    prompt, seen = _recents(tiny_engine, SamplingParams(**base), text="result: 444 and 2025")  # type: ignore[arg-type]
    assert seen[0] == prompt
    assert AgentConfig().sampling.penalize_digits is False  # the agent's replies set it


def test_digits_in_a_run_too_long_for_a_number_count_again(tiny_engine: Engine) -> None:
    """Greedy SmolLM2 answered "three tips for learning to cook" with "1. **1011111111..." when
    digits were exempt: a run of DIGIT_RUN digits is a loop, and its digits count from then on."""
    codec = tiny_engine.codec
    one = codec.encode("1")[-1]
    assert codec.decode([one]).strip() == "1"
    s = tiny_engine.new_session(CFG)
    s.append("the cat sat on the mat")
    seen: list[list[int]] = []

    def loop_of_ones(logits: torch.Tensor, p: SamplingParams, recent: Any = (), *a: Any) -> int:
        seen.append(list(recent))
        return one

    s.sampler.pick = loop_of_ones  # type: ignore[method-assign]
    params = SamplingParams.reply(DIGIT_RUN + 3, stop_token_ids=())
    s.generate(params)
    # up to the run's length no digit counts (a number repeats its digits); then all of them do
    assert seen[:DIGIT_RUN] == [[]] * DIGIT_RUN
    assert seen[DIGIT_RUN] == [one] * DIGIT_RUN
    assert seen[-1] == [one] * DIGIT_RUN  # the next run is counted when it is as long again
    assert params.penalize_digits is False


def test_save_restore_gives_identical_logits(tiny_engine: Engine, tmp_path: Path) -> None:
    s = tiny_engine.new_session(CFG)
    s.chat("tell me a long story " * 10, SamplingParams(max_tokens=30, temperature=0.7, seed=3))
    assert s.cache.pos > CFG.streaming.budget  # the window has wrapped
    path = s.save(tmp_path / "s.session")
    r = tiny_engine.restore_session(path)
    assert torch.equal(r.next_logits, s.next_logits)  # type: ignore[arg-type]
    assert r.tokens.tolist() == s.tokens.tolist()
    assert r.messages == s.messages
    # the restored stream continues exactly like the original, sampler RNG included
    p = SamplingParams(max_tokens=15, temperature=1.0, stop_token_ids=())
    a = s.generate(p)
    b = r.generate(p)
    assert a.token_ids == b.token_ids
    assert torch.allclose(r.next_logits, s.next_logits, atol=1e-6)  # type: ignore[arg-type]


def _payload(path: Path) -> tuple[bytes, dict[str, Any]]:
    """A saved session's header line and its payload."""
    header, _, body = path.read_bytes().partition(b"\n")
    return header, torch.load(io.BytesIO(body), weights_only=True)


def test_token_ids_are_saved_with_a_fixed_width(tiny_engine: Engine, tmp_path: Path) -> None:
    """Whatever the item size of the stream's id array (``array("l")`` is 4 bytes on
    Windows, 8 on Linux), the file holds int32 ids and restores the same stream."""
    s = tiny_engine.new_session(CFG)
    s.append_text("token ids of any width")
    ids = s.tokens.tolist()
    for typecode in ("i", "q"):  # 4-byte and 8-byte items
        s.tokens = array(typecode, ids)
        path = s.save(tmp_path / f"{typecode}.session")
        assert _payload(path)[1]["tokens"].dtype == torch.int32
        assert tiny_engine.restore_session(path).tokens.tolist() == ids


def test_sessions_saved_with_int64_token_ids_still_restore(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    s = tiny_engine.new_session(CFG)
    s.append_text("an older file")
    path = s.save(tmp_path / "old.session")
    header, payload = _payload(path)
    payload["tokens"] = torch.tensor(s.tokens.tolist(), dtype=torch.int64)  # the old format
    body = io.BytesIO()
    torch.save(payload, body)
    path.write_bytes(header + b"\n" + body.getvalue())
    assert tiny_engine.restore_session(path).tokens.tolist() == s.tokens.tolist()


def test_restore_rejects_other_files(tiny_engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.session"
    bad.write_bytes(b"not a session")
    with pytest.raises(SessionStateError, match="bad magic"):
        tiny_engine.restore_session(bad)
    with pytest.raises(SessionStateError, match="no saved session"):
        tiny_engine.restore_session(tmp_path / "missing.session")


def test_restore_names_a_saved_setting_it_does_not_know(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    """A file written by a newer version (a config field this one lacks) or with a rejected
    value fails with the field's name, not a TypeError from deep inside; the file is kept."""
    s = tiny_engine.new_session(CFG)
    s.append_text("a session from elsewhere")
    path = s.save(tmp_path / "new.session")
    header, payload = _payload(path)
    for change, message in (
        ({"warp": 9}, r"StreamingConfig field\(s\) \['warp'\] this agentcore does not know"),
        ({"window": -5}, r"the saved StreamingConfig is invalid: .*window"),
    ):
        edited = {**payload, "streaming": {**payload["streaming"], **change}}
        body = io.BytesIO()
        torch.save(edited, body)
        path.write_bytes(header + b"\n" + body.getvalue())
        before = path.read_bytes()
        with pytest.raises(SessionStateError, match=message):
            tiny_engine.restore_session(path)
        assert path.read_bytes() == before


def test_save_is_atomic_when_killed(tiny_engine: Engine, tmp_path: Path) -> None:
    """A process killed in the middle of saving leaves the previous state readable."""
    s = tiny_engine.new_session(CFG)
    s.append("first state")
    path = s.save(tmp_path / "a.session")
    good = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal
        import agentcore._atomic as st
        real = os.fsync
        def die(fd):
            os.kill(os.getpid(), signal.SIGKILL)
        st.os.fsync = die
        with open({str(path)!r} + ".new", "wb") as fh:
            pass
        st.atomic_write_bytes(__import__("pathlib").Path({str(path)!r}), b"half-written garbage" * 1000)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert path.read_bytes() == good
    restored = tiny_engine.restore_session(path)
    assert torch.equal(restored.next_logits, s.next_logits)  # type: ignore[arg-type]
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) <= 1  # a stale temp file may remain; the real file is intact
