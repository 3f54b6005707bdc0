"""The long-memory core on the real default model (SmolLM2-135M-Instruct, from local files)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.loader import ModelNotFoundError, load_model, resolve_model
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import SessionConfig

pytestmark = pytest.mark.slow


def test_answers_the_capital_of_france(real_engine: Any) -> None:
    s = real_engine.new_session()
    r = s.chat("What is the capital of France? Answer in one word.", SamplingParams(max_tokens=20))
    assert "Paris" in r.text
    assert r.finish_reason == "stop"


@pytest.fixture(scope="module")
def float_engine() -> Any:
    return Engine.load(dtype="float32", weights="float")


def test_logits_match_transformers(float_engine: Any) -> None:
    loaded = load_model(dtype="float32")
    ids = torch.tensor(
        [float_engine.codec.encode("The quick brown fox jumps over the lazy dog. " * 20)]
    )
    with torch.no_grad():
        ref = loaded.hf_model(ids).logits
    ours = float_engine.core.prefill(
        ids, float_engine.core.new_cache(StreamingConfig(chunk_size=64)), logits="all"
    )
    assert torch.allclose(ours, ref, atol=1e-4), (ours - ref).abs().max()


def test_default_weights_track_float32(real_engine: Any, float_engine: Any) -> None:
    """The CPU default (bf16 activations, int8 weights where supported) stays near float32."""
    text = (
        "It was a bright cold day in April, and the clocks were striking thirteen. Winston "
        "Smith, his chin nuzzled into his breast in an effort to escape the vile wind, slipped "
        "quickly through the glass doors of Victory Mansions. "
    ) * 6
    ids = torch.tensor([float_engine.codec.encode(text)])
    cfg = StreamingConfig(chunk_size=64)
    ref = float_engine.core.score(ids, float_engine.core.new_cache(cfg))[1:]
    ours = real_engine.core.score(ids, real_engine.core.new_cache(cfg))[1:]
    ppl_ref, ppl_ours = float(torch.exp(-ref.mean())), float(torch.exp(-ours.mean()))
    assert abs(ppl_ours / ppl_ref - 1) < 0.03, (ppl_ours, ppl_ref)


def test_chat_stream_equals_full_conversation_tokens(real_engine: Any) -> None:
    s = real_engine.new_session()
    codec = real_engine.codec
    for q in ["Name a fruit.", "Name a color.", "Name an animal."]:
        s.chat(q, SamplingParams(max_tokens=16))
        s.append_messages([], add_generation_prompt=False)  # nothing new: the stream is unchanged
    s.append_messages([{"role": "user", "content": "Thanks!"}], add_generation_prompt=True)
    full = codec.encode(codec.render_chat(s.messages, add_generation_prompt=True))
    assert s.tokens.tolist() == full


def test_save_kill_restore_identical_logits(real_engine: Any, tmp_path: Path) -> None:
    path = tmp_path / "fact.session"
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from agentcore.core.engine import Engine
        from agentcore.core.sampling import SamplingParams
        from agentcore.core.session import SessionConfig
        from agentcore.core.cache import StreamingConfig
        e = Engine.load()
        s = e.new_session(SessionConfig(streaming=StreamingConfig(n_sink=4, window=252, chunk_size=128)))
        s.chat("My locker code is 4711. " + "Filler sentence about the weather. " * 60, SamplingParams(max_tokens=8))
        s.save({str(path)!r})
        torch.save(s.next_logits, {str(path)!r} + ".logits")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    before = torch.load(str(path) + ".logits")
    restored = real_engine.restore_session(path)
    assert restored.n_tokens > 256  # the window wrapped before the save
    assert torch.equal(restored.next_logits, before)
    # and the stream continues like an uninterrupted one would
    twin = real_engine.new_session(
        SessionConfig(streaming=StreamingConfig(n_sink=4, window=252, chunk_size=128))
    )
    twin.chat(
        "My locker code is 4711. " + "Filler sentence about the weather. " * 60,
        SamplingParams(max_tokens=8),
    )
    a = restored.chat("What is my locker code?", SamplingParams(max_tokens=10))
    b = twin.chat("What is my locker code?", SamplingParams(max_tokens=10))
    assert a.token_ids == b.token_ids


def test_missing_model_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))
    empty = tmp_path / "emptydir"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        resolve_model(str(empty))
