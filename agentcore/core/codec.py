"""Text <-> token ids for the model core: a thin adapter over Hugging Face tokenizers.

Owns encoding, incremental decoding (:class:`StreamDecoder`: the text each new token completes,
the bytes of an unfinished character held back; the tokenizer's own ``DecodeStream`` where it
has one), the chat template and the set of end-of-turn tokens.
Never touches tensors of the model. A :class:`ByteCodec` (one token per byte, a tiny
ChatML-like template) lets tests drive sessions on random-weight models without files.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

__all__ = ["ByteCodec", "Codec", "HFCodec", "Message", "StreamDecoder"]

Message = dict[str, Any]


class StreamDecoder(Protocol):
    """Generated token ids in, one at a time; out, the text each one completes.

    Bytes of a character not finished yet are held back (``step`` returns "") until the
    token that completes it; a stream that ends there never shows them (no U+FFFD)."""

    def step(self, token_id: int) -> str: ...


class Codec(Protocol):
    """What a session needs from a tokenizer."""

    @property
    def hf(self) -> Any | None:
        """The underlying Hugging Face tokenizer, when there is one (grammar masks need it)."""
        ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def stop_ids(self) -> frozenset[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str: ...

    def render_chat(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str: ...

    def begin_stream(self) -> list[int]:
        """Tokens that open a raw-text stream (BOS when the model expects one)."""
        ...

    def stream_decoder(self, skip_special: bool = False) -> StreamDecoder:
        """A fresh incremental decoder for the tokens of one generation."""
        ...


class HFCodec:
    """A transformers tokenizer seen as a :class:`Codec`."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        stops: set[int] = set()
        for attr in ("eos_token_id",):
            val = getattr(tokenizer, attr, None)
            if isinstance(val, int):
                stops.add(val)
        for name in (
            "<|im_end|>",
            "<|eot_id|>",
            "<|end_of_text|>",
            "<end_of_turn>",
            "<|endoftext|>",
        ):
            tid = tokenizer.convert_tokens_to_ids(name)
            if (
                isinstance(tid, int)
                and tid != getattr(tokenizer, "unk_token_id", None)
                and tid >= 0
            ):
                stops.add(tid)
        self._stops = frozenset(stops)

    @property
    def hf(self) -> Any:
        return self._tok

    @property
    def vocab_size(self) -> int:
        return len(self._tok)

    @property
    def stop_ids(self) -> frozenset[int]:
        return self._stops

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special))

    def render_chat(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        if getattr(self._tok, "chat_template", None) is None:
            return _chatml(messages, add_generation_prompt)
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
        if tools:
            kwargs["tools"] = list(tools)
        return str(self._tok.apply_chat_template(list(messages), **kwargs))

    def begin_stream(self) -> list[int]:
        bos = getattr(self._tok, "bos_token_id", None)
        if isinstance(bos, int) and getattr(self._tok, "add_bos_token", False):
            return [bos]
        return []

    def stream_decoder(self, skip_special: bool = False) -> StreamDecoder:
        """The tokenizer's ``DecodeStream`` (a fast tokenizer), else decoding a short window
        at each token, holding back a trailing U+FFFD."""
        backend = getattr(self._tok, "backend_tokenizer", None)
        if backend is not None:
            return _TokenizersStream(backend, skip_special)
        return _RedecodingStream(self, skip_special)


def _chatml(messages: Sequence[Message], add_generation_prompt: bool) -> str:
    parts = [f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


class ByteCodec:
    """One token per UTF-8 byte plus two specials; ChatML-style template. For tests."""

    IM_START = 256
    IM_END = 257
    _SPECIAL: ClassVar[dict[str, int]] = {"<|im_start|>": IM_START, "<|im_end|>": IM_END}

    @property
    def hf(self) -> None:
        return None

    @property
    def vocab_size(self) -> int:
        return 258

    @property
    def stop_ids(self) -> frozenset[int]:
        return frozenset({self.IM_END})

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(text):
            for name, tid in self._SPECIAL.items():
                if text.startswith(name, i):
                    out.append(tid)
                    i += len(name)
                    break
            else:
                out.extend(text[i].encode("utf-8"))
                i += 1
        return out

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        chunks: list[str] = []
        buf = bytearray()
        names = {v: k for k, v in self._SPECIAL.items()}
        for t in ids:
            if t in names:
                chunks.append(buf.decode("utf-8", errors="replace"))
                buf.clear()
                if not skip_special:
                    chunks.append(names[t])
            else:
                buf.append(int(t) % 256)
        chunks.append(buf.decode("utf-8", errors="replace"))
        return "".join(chunks)

    def render_chat(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        return _chatml(messages, add_generation_prompt)

    def begin_stream(self) -> list[int]:
        return []

    def stream_decoder(self, skip_special: bool = False) -> StreamDecoder:
        return _ByteStream(skip_special)


class _TokenizersStream:
    """:class:`StreamDecoder` over the ``tokenizers`` library's ``DecodeStream``."""

    def __init__(self, tokenizer: Any, skip_special: bool) -> None:
        from tokenizers.decoders import DecodeStream

        self._tokenizer = tokenizer
        self._stream = DecodeStream(skip_special_tokens=skip_special)

    def step(self, token_id: int) -> str:
        return str(self._stream.step(self._tokenizer, token_id) or "")


class _RedecodingStream:
    """:class:`StreamDecoder` for any codec: decode a short window, the tokens since the last
    piece shown with the tokens of that piece as context (for tokenizers whose text depends on
    the token before), and emit what it adds (as text-generation-inference does). A trailing
    U+FFFD is an unfinished character: held back. O(1) per token in the reply's length."""

    def __init__(self, codec: Codec, skip_special: bool) -> None:
        self._codec, self._skip = codec, skip_special
        self._ids: list[int] = []
        self._prefix = 0  # the window starts here: the last piece's tokens, as context
        self._read = 0  # tokens shown so far

    def step(self, token_id: int) -> str:
        self._ids.append(token_id)
        shown = self._codec.decode(self._ids[self._prefix : self._read], skip_special=self._skip)
        text = self._codec.decode(self._ids[self._prefix :], skip_special=self._skip)
        if len(text) <= len(shown) or text.endswith("\ufffd"):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return text[len(shown) :]


class _ByteStream:
    """:class:`StreamDecoder` of :class:`ByteCodec`: an incremental UTF-8 decoder."""

    def __init__(self, skip_special: bool) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._skip = skip_special
        self._names = {v: k for k, v in ByteCodec._SPECIAL.items()}

    def step(self, token_id: int) -> str:
        name = self._names.get(token_id)
        if name is None:
            return self._utf8.decode(bytes([token_id % 256]))
        flushed = self._utf8.decode(b"", final=True)  # a special ends any unfinished character
        self._utf8.reset()
        return flushed + ("" if self._skip else name)
