"""Redaction of secrets in text the agent shows or hands on.

Owns :class:`Redactor`: API-key and token patterns (OpenAI/Anthropic ``sk-``, GitHub, AWS,
Slack, Google, JWTs, bearer tokens, ``password=...`` assignments, PEM private keys) plus the
exact secret values a policy configures, all replaced by ``[REDACTED]``; and
:class:`StreamRedactor`, which redacts streamed text while holding back whatever a secret could
still reach into. Configured secrets are also matched in their JSON-escaped forms.
Never decides whether an action may run (the safety filter uses :meth:`Redactor.find`).
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Callable, Iterable

__all__ = ["DEFAULT_SECRET_PATTERNS", "REDACTED", "Redactor", "StreamRedactor", "log_redacted"]

REDACTED = "[REDACTED]"

DEFAULT_SECRET_PATTERNS: tuple[str, ...] = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
    # NAME = value assignments, whatever the name's prefix (GITHUB_TOKEN=, "password": ...,
    # JSON-escaped quotes too): only the value is a secret (group "value")
    r"(?i)(?<![A-Za-z0-9])(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token"
    r"|token|password|passwd|pwd|credentials?|private[_-]?key)(?:[_-][A-Za-z0-9_]*)?"
    r"(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?(?P<value>[^\s\"',;\\]{6,})",
    # the same with a quoted value that may contain spaces
    r"(?i)(?<![A-Za-z0-9])(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token"
    r"|token|password|passwd|pwd|credentials?|private[_-]?key)(?:[_-][A-Za-z0-9_]*)?"
    r"(?:\\?[\"'])?\s*[:=]\s*\\?[\"'](?P<value>[^\"'\n\\]{6,200})",
)


class Redactor:
    """Finds and replaces secrets: ``patterns`` (regular expressions; a named group ``value``
    limits the replacement to that group) and ``secrets`` (exact strings, at least 4
    characters, e.g. the values of environment variables the agent must never reveal)."""

    def __init__(
        self, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS, secrets: Iterable[str] = ()
    ) -> None:
        self.patterns = [re.compile(p) for p in patterns]
        given = {s for s in secrets if s}
        for value in given:
            if len(value) < 4:
                raise ValueError(
                    f"secret of {len(value)} characters: expected at least 4 (shorter values "
                    "would redact ordinary text)"
                )
        # every rendering of a value: as written, JSON-escaped, ASCII-escaped
        forms = set(given)
        for value in given:
            forms.add(json.dumps(value)[1:-1])
            forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        self.secrets = sorted(forms, key=len, reverse=True)
        self.longest = max((len(v) for v in self.secrets), default=0)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The merged ``(start, end)`` spans of every secret in ``text``."""
        return self._spans(text)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for value in self.secrets:
            start = text.find(value)
            while start >= 0:
                spans.append((start, start + len(value)))
                start = text.find(value, start + 1)
        for pattern in self.patterns:
            for match in pattern.finditer(text):
                if "value" in pattern.groupindex and match.group("value") is not None:
                    spans.append(match.span("value"))
                else:
                    spans.append(match.span())
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def find(self, text: str) -> list[str]:
        """The secret substrings found in ``text`` (for a verdict's reason, never shown)."""
        return [text[a:b] for a, b in self._spans(text)]

    def redact(self, text: str) -> tuple[str, int]:
        """``text`` with every secret replaced, and how many were replaced."""
        spans = self._spans(text)
        if not spans:
            return text, 0
        out: list[str] = []
        last = 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(REDACTED)
            last = end
        out.append(text[last:])
        return "".join(out), len(spans)

    def redact_value(self, value: object) -> object:
        """Redact every string inside a JSON-like value (dicts, lists, strings)."""
        if isinstance(value, str):
            return self.redact(value)[0]
        if isinstance(value, dict):
            return {
                (self.redact(k)[0] if isinstance(k, str) else k): self.redact_value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value


class StreamRedactor:
    """Redacts text that arrives in pieces (streamed tokens).

    Emits only text that no secret can still reach into: the held tail is at least as long
    as the longest configured secret (spaces and all), a cut never falls inside a found
    secret, never after an unfinished PEM block, and always on whitespace (pattern secrets
    hold no whitespace). :meth:`flush` redacts and returns whatever is held at the end.
    """

    def __init__(self, redactor: Redactor, hold_chars: int = 512) -> None:
        self.redactor = redactor
        self.hold_chars = max(hold_chars, redactor.longest + 1)
        self._buffer = ""

    def feed(self, piece: str) -> str:
        self._buffer += piece
        buffer = self._buffer
        limit = len(buffer) - self.redactor.longest  # text before this cannot start a secret
        spans = self.redactor.spans(buffer)
        begin = buffer.rfind("-----BEGIN")
        finished = any(start <= begin < end for start, end in spans)
        if begin >= 0 and not finished and len(buffer) - begin < 16_384:
            limit = min(limit, begin)  # a key block is open until its END line has arrived
        cut = -1
        for sep in (" ", "\n", "\t"):
            cut = max(cut, buffer.rfind(sep, 0, max(0, limit)))
        if cut < 0 and len(buffer) >= 4 * self.hold_chars:
            cut = limit - 1  # no whitespace at all for a long time: emit anyway
        for start, end in spans:  # never cut inside a secret
            if start <= cut < end:
                cut = start - 1
        if cut < 0:
            return ""
        ready, self._buffer = buffer[: cut + 1], buffer[cut + 1 :]
        return self.redactor.redact(ready)[0]

    def flush(self) -> str:
        ready, self._buffer = self._buffer, ""
        return self.redactor.redact(ready)[0] if ready else ""


def log_redacted(
    logger: logging.Logger,
    level: int,
    message: str,
    error: BaseException,
    redact: Callable[[str], str],
) -> None:
    """Log ``message`` with ``error``'s traceback, both redacted: the log is one more rendering
    of what a tool or the model produced, and an exception's text can quote a secret (a tool
    that raises with the token it was given, a model reply in a parse error). The traceback is
    formatted here, as text, instead of handing ``exc_info`` to the handlers, which would print
    it raw."""
    if not logger.isEnabledFor(level):
        return
    text = "".join(traceback.format_exception(error)).rstrip()
    logger.log(level, "%s\n%s", redact(message), redact(text))
