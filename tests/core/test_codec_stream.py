"""Incremental detokenization: a reply of N tokens costs O(N) decoding, and the pieces join to
the text decoding all tokens at once gives (unfinished characters held back)."""

from __future__ import annotations

from collections.abc import Sequence

from agentcore.core.codec import ByteCodec, _RedecodingStream


class CountingBytes(ByteCodec):
    """ByteCodec counting the ids it decodes."""

    def __init__(self) -> None:
        self.decoded = 0

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        self.decoded += len(ids)
        return super().decode(ids, skip_special)


class Words(ByteCodec):
    """One token per word; a word is preceded by a space unless it is punctuation or first:
    text that depends on the token before, as with SentencePiece's leading spaces."""

    WORDS = ("hello", "world", ",", "again", ".", "so", "long")

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        out = ""
        for t in ids:
            w = self.WORDS[t]
            out += w if (not out or w in ",.") else " " + w
        return out


def test_a_long_reply_decodes_in_linear_time_and_exactly() -> None:
    codec = CountingBytes()
    text = "Grüße, 世界! 🙂 " * 500
    ids = codec.encode(text)
    stream = _RedecodingStream(codec, skip_special=False)
    pieces = [stream.step(t) for t in ids]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)  # unfinished characters were held back
    assert codec.decoded < 12 * len(ids)  # a window per token, not the whole reply


def test_context_dependent_text_comes_out_as_a_whole_decode() -> None:
    codec = Words()
    ids = [0, 1, 2, 3, 4, 5, 6, 6, 2, 0]
    stream = _RedecodingStream(codec, skip_special=False)
    assert "".join(stream.step(t) for t in ids) == codec.decode(ids)
