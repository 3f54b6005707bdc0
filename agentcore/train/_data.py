"""Training documents for the compressive memory: long book text and synthetic recall tasks.

Owns the generation of token sequences for ``agentcore train memory``: slices of the shared
public-domain books (language modelling across segments) and synthetic documents whose answer
sits beyond the local window, so only the memory can supply it (a passkey, or key-value pairs
asked back). Each document carries a loss mask: text documents score their later segments,
recall documents score only the answer tokens. Never touches the model.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path

from agentcore.core.codec import Codec

__all__ = ["Document", "DocumentMaker", "passkey_prompt"]

_TASK = (
    "There is an important info hidden inside a lot of irrelevant text. "
    "Find it and memorize it. I will quiz you about the important information there."
)


def passkey_prompt(key: str) -> tuple[str, str, str]:
    """The standard passkey template pieces: (task line, needle sentence, question)."""
    needle = f" The pass key is {key}. Remember it. {key} is the pass key. "
    return _TASK, needle, " What is the pass key? The pass key is"


@dataclasses.dataclass(frozen=True)
class Document:
    """Token ids and a same-length 0/1 loss mask (1: predict this token)."""

    ids: list[int]
    mask: list[int]
    kind: str


class DocumentMaker:
    """Draws training documents of exactly ``length`` tokens from books and templates."""

    def __init__(
        self,
        codec: Codec,
        books: Sequence[Path],
        *,
        length: int,
        score_from: int,
        seed: int = 0,
    ) -> None:
        if not books:
            raise ValueError("DocumentMaker needs at least one book file (see ../shared/data)")
        self.codec = codec
        self.length = length
        self.score_from = score_from  # text documents are scored from this token on
        self.rng = random.Random(seed)
        self.books: list[list[int]] = []
        for path in books:
            text = path.read_text(encoding="utf-8", errors="replace")
            ids = codec.encode(text)
            if len(ids) < 2 * length:
                raise ValueError(f"book {path} has {len(ids)} tokens, need >= {2 * length}")
            self.books.append(ids)

    def _filler(self, n: int) -> list[int]:
        book = self.rng.choice(self.books)
        start = self.rng.randrange(0, len(book) - n)
        return book[start : start + n]

    def _check(self, budget: int, what: str) -> None:
        if budget < 0:
            raise ValueError(
                f"documents of {self.length} tokens are too short for the {what} template "
                f"(it needs {self.length - budget} tokens)"
            )

    def text(self) -> Document:
        ids = self._filler(self.length)
        mask = [0] * self.score_from + [1] * (self.length - self.score_from)
        return Document(ids, mask, "text")

    def passkey(self, needle_before: int) -> Document:
        """A needle within the first ``needle_before`` tokens, the question at the very end."""
        key = str(self.rng.randrange(10_000, 100_000))
        task, needle, question = passkey_prompt(key)
        enc = self.codec.encode
        head, nd, q, ans = enc(task), enc(needle), enc(question), enc(" " + key + ".")
        budget = self.length - len(head) - len(nd) - len(q) - len(ans)
        self._check(budget, "passkey")
        at = self.rng.randrange(0, max(1, min(budget, needle_before - len(head) - len(nd))))
        ids = head + self._filler(at) + nd + self._filler(budget - at) + q + ans
        mask = [0] * (len(ids) - len(ans)) + [1] * len(ans)
        return Document(ids, mask, "passkey")

    def key_values(self, pairs: int, needle_before: int) -> Document:
        """Several ``name: number`` facts early on; one of them asked at the end."""
        names = ["apple", "river", "violet", "harbor", "copper", "meadow", "falcon", "lantern"]
        chosen = self.rng.sample(names, k=min(pairs, len(names)))
        values = {n: str(self.rng.randrange(100, 1000)) for n in chosen}
        enc = self.codec.encode
        facts = enc(" ".join(f"The code for {n} is {v}." for n, v in values.items()) + " ")
        asked = self.rng.choice(chosen)
        q, ans = (
            enc(f" What is the code for {asked}? The code for {asked} is"),
            enc(f" {values[asked]}."),
        )
        budget = self.length - len(facts) - len(q) - len(ans)
        self._check(budget, "key-value")
        at = self.rng.randrange(0, max(1, min(budget, needle_before - len(facts))))
        ids = self._filler(at) + facts + self._filler(budget - at) + q + ans
        mask = [0] * (len(ids) - len(ans)) + [1] * len(ans)
        return Document(ids, mask, "key_values")

    def draw(self, recall_fraction: float, needle_before: int) -> Document:
        roll = self.rng.random()
        if roll < recall_fraction / 2:
            return self.passkey(needle_before)
        if roll < recall_fraction:
            return self.key_values(4, needle_before)
        return self.text()
