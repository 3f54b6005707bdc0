"""Memory records: the one typed shape of everything long-term memory stores.

Owns ``MemoryRecord`` (id, kind, text, agent, time, importance, source, trust, evidence,
attributes), the ``MemoryKind`` and ``TrustLevel`` vocabularies, ``InvalidMemoryError`` and
the lossless mapping between a record and chromadb's flat metadata. Never touches a store,
never embeds text.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "MAX_ATTRIBUTE_CHARS",
    "InvalidMemoryError",
    "MemoryKind",
    "MemoryRecord",
    "TrustLevel",
    "record_from_metadata",
    "record_to_metadata",
    "to_timestamp",
    "validate_record",
]

MAX_TEXT_CHARS = 32_000
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# the longest string a record's attribute may hold
MAX_ATTRIBUTE_CHARS = 2000
_ATTR_PREFIX = "attr_"


class MemoryKind(StrEnum):
    """Which long-term collection a record belongs to."""

    EPISODIC = "episodic"  # something that happened: an observation, an action, an outcome
    FACT = "fact"  # semantic knowledge: "Alice's cat is called Miso"
    LESSON = "lesson"  # a reflection: a higher-level insight drawn from other memories
    SKILL = "skill"  # a reusable procedure or plan that worked


class TrustLevel(StrEnum):
    """Who vouches for a record or an observation, most trusted first. ``rank`` orders them
    for filtering. The one trust vocabulary of the project: the agent's perception and events
    use it too (``web`` and ``environment`` are where its observations come from)."""

    SYSTEM = "system"  # written by the operator or the framework itself
    USER = "user"  # said by the user the agent serves
    AGENT = "agent"  # the agent's own conclusions (reflections, plans)
    TOOL = "tool"  # a tool's output
    EXTERNAL = "external"  # anything else from outside: web pages, other agents, files
    WEB = "web"  # fetched from the web (an agent's observation)
    ENVIRONMENT = "environment"  # from the world an agent acts in (an agent's observation)

    @property
    def rank(self) -> int:
        return _TRUST_RANK[self]


_TRUST_RANK = {
    TrustLevel.SYSTEM: 4,
    TrustLevel.USER: 3,
    TrustLevel.AGENT: 2,
    TrustLevel.TOOL: 1,
    TrustLevel.EXTERNAL: 0,
    TrustLevel.WEB: 0,
    TrustLevel.ENVIRONMENT: 0,
}


class InvalidMemoryError(ValueError):
    """A record (or a stored row claiming to be one) failed validation.

    The message names every bad field, the value given and what was expected.
    """


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


AttributeValue = str | int | float | bool


class MemoryRecord(BaseModel):
    """One long-term memory. Immutable; build a new one to change it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    id: str = Field(default_factory=_new_id)
    kind: MemoryKind
    text: str
    agent: str
    time: datetime = Field(default_factory=_now)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    source: str = "agent"
    trust: TrustLevel = TrustLevel.AGENT
    evidence: tuple[str, ...] = ()  # ids of the memories this one was derived from
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_PATTERN.match(value):
            raise ValueError(
                "expected 1-128 characters from [A-Za-z0-9._:-] starting with a letter or digit"
            )
        return value

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected non-empty text")
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"expected at most {MAX_TEXT_CHARS} characters, got {len(value)}")
        return value

    @field_validator("agent", "source")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value.strip() or len(value) > 200:
            raise ValueError("expected a non-empty name of at most 200 characters")
        return value

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("expected a timezone-aware datetime (e.g. datetime.now(UTC))")
        return value.astimezone(UTC)

    @field_validator("evidence")
    @classmethod
    def _check_evidence(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _ID_PATTERN.match(item):
                raise ValueError(f"expected memory ids, got {item!r}")
        return value

    @field_validator("attributes")
    @classmethod
    def _check_attributes(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        for key, item in value.items():
            if not _ATTRIBUTE_KEY.match(key):
                raise ValueError(f"expected attribute keys matching [a-z][a-z0-9_]*, got {key!r}")
            if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_CHARS:
                raise ValueError(
                    f"expected attribute {key!r} of at most {MAX_ATTRIBUTE_CHARS} characters"
                )
        return value


def _describe(error: ValidationError, where: str) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "<record>"
        value = item.get("input")
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{where}.{field}={shown}: {item['msg']}")
    return "; ".join(parts)


def validate_record(value: Any) -> MemoryRecord:
    """Return ``value`` as a ``MemoryRecord`` or raise ``InvalidMemoryError`` saying why."""
    if isinstance(value, MemoryRecord):
        return value
    if not isinstance(value, dict):
        raise InvalidMemoryError(
            f"expected a MemoryRecord or a dict of its fields, got {type(value).__name__}"
        )
    try:
        return MemoryRecord.model_validate(value)
    except ValidationError as exc:
        raise InvalidMemoryError(_describe(exc, "MemoryRecord")) from None


def to_timestamp(value: datetime) -> float:
    """Seconds since the epoch for an aware datetime (naive ones are rejected)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidMemoryError(
            f"time={value!r}: expected a timezone-aware datetime (e.g. datetime.now(UTC))"
        )
    return value.timestamp()


def record_to_metadata(record: MemoryRecord) -> dict[str, str | int | float | bool]:
    """Flatten a record into chromadb metadata (the text goes in as the document)."""
    meta: dict[str, str | int | float | bool] = {
        "kind": record.kind.value,
        "agent": record.agent,
        "time": record.time.timestamp(),
        "importance": float(record.importance),
        "source": record.source,
        "trust": record.trust.value,
        "trust_rank": record.trust.rank,
        "evidence": json.dumps(list(record.evidence)),
    }
    for key, value in record.attributes.items():
        meta[_ATTR_PREFIX + key] = value
    return meta


def record_from_metadata(
    record_id: str, document: str | None, metadata: dict[str, Any] | None
) -> MemoryRecord:
    """Rebuild a record read back from chromadb; a malformed row raises ``InvalidMemoryError``."""
    if metadata is None or document is None:
        raise InvalidMemoryError(f"stored memory {record_id!r} has no metadata or no text")
    try:
        evidence = json.loads(str(metadata.get("evidence", "[]")))
        fields = {
            "id": record_id,
            "kind": metadata.get("kind"),
            "text": document,
            "agent": metadata.get("agent"),
            "time": datetime.fromtimestamp(float(metadata["time"]), UTC),
            "importance": metadata.get("importance"),
            "source": metadata.get("source"),
            "trust": metadata.get("trust"),
            "evidence": tuple(evidence),
            "attributes": {
                k[len(_ATTR_PREFIX) :]: v for k, v in metadata.items() if k.startswith(_ATTR_PREFIX)
            },
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMemoryError(
            f"stored memory {record_id!r} has malformed metadata ({exc}); expected the fields "
            "written by record_to_metadata"
        ) from None
    try:
        return MemoryRecord.model_validate(fields)
    except ValidationError as exc:
        raise InvalidMemoryError(_describe(exc, f"stored memory {record_id!r}")) from None
