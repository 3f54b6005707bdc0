"""MemoryRecord validation and the record <-> chromadb metadata mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcore.memory import InvalidMemoryError, MemoryKind, MemoryRecord, TrustLevel
from agentcore.memory._records import record_from_metadata, record_to_metadata, validate_record


def _fields(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"kind": "fact", "text": "Alice's cat is Miso", "agent": "a1"}
    base.update(overrides)
    return base


def test_defaults_fill_id_time_and_trust() -> None:
    record = validate_record(_fields())
    assert len(record.id) == 32
    assert record.time.tzinfo is not None
    assert record.kind is MemoryKind.FACT
    assert record.trust is TrustLevel.AGENT
    assert 0.0 <= record.importance <= 1.0


@pytest.mark.parametrize(
    ("overrides", "field", "shown"),
    [
        ({"text": "   "}, "text", "'   '"),
        ({"importance": 1.5}, "importance", "1.5"),
        ({"importance": -0.1}, "importance", "-0.1"),
        ({"importance": float("nan")}, "importance", "nan"),
        ({"kind": "dream"}, "kind", "'dream'"),
        ({"trust": "root"}, "trust", "'root'"),
        ({"id": "has space"}, "id", "'has space'"),
        ({"agent": ""}, "agent", "''"),
        ({"time": datetime(2024, 1, 1)}, "time", "datetime.datetime(2024, 1, 1, 0, 0)"),
        ({"attributes": {"Bad-Key": 1}}, "attributes", "'Bad-Key'"),
        ({"evidence": ("ok", "not ok")}, "evidence", "'not ok'"),
        ({"colour": "red"}, "colour", "'red'"),
    ],
)
def test_bad_fields_are_named_with_value(
    overrides: dict[str, object], field: str, shown: str
) -> None:
    with pytest.raises(InvalidMemoryError) as info:
        validate_record(_fields(**overrides))
    message = str(info.value)
    assert f"MemoryRecord.{field}" in message
    assert shown in message


def test_several_errors_reported_together() -> None:
    with pytest.raises(InvalidMemoryError) as info:
        validate_record(_fields(text="", importance=3))
    assert "MemoryRecord.text" in str(info.value)
    assert "MemoryRecord.importance" in str(info.value)


def test_non_mapping_rejected() -> None:
    with pytest.raises(InvalidMemoryError, match="expected a MemoryRecord or a dict"):
        validate_record(["fact", "text"])


def test_time_is_normalised_to_utc() -> None:
    tz = timezone(timedelta(hours=5))
    record = validate_record(_fields(time=datetime(2024, 1, 1, 12, tzinfo=tz)))
    assert record.time == datetime(2024, 1, 1, 7, tzinfo=UTC)
    assert record.time.utcoffset() == timedelta(0)


def test_records_are_frozen() -> None:
    record = validate_record(_fields())
    with pytest.raises(ValueError, match="frozen"):
        record.text = "changed"  # type: ignore[misc]


def test_trust_ranks_are_ordered() -> None:
    ranks = [level.rank for level in TrustLevel]
    assert ranks == sorted(ranks, reverse=True)
    assert TrustLevel.SYSTEM.rank > TrustLevel.EXTERNAL.rank


_text = st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != "")
_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ ", min_size=1, max_size=30).filter(
    lambda s: s.strip() != ""
)


@given(
    kind=st.sampled_from(list(MemoryKind)),
    text=_text,
    agent=_name,
    source=_name,
    importance=st.floats(min_value=0, max_value=1),
    trust=st.sampled_from(list(TrustLevel)),
    seconds=st.integers(min_value=0, max_value=4_000_000_000),
    attributes=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.one_of(st.booleans(), st.integers(-(2**31), 2**31), _name),
        max_size=4,
    ),
    evidence=st.lists(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), max_size=3),
)
def test_metadata_round_trip(
    kind: MemoryKind,
    text: str,
    agent: str,
    source: str,
    importance: float,
    trust: TrustLevel,
    seconds: int,
    attributes: dict[str, str | int | float | bool],
    evidence: list[str],
) -> None:
    record = MemoryRecord(
        kind=kind,
        text=text,
        agent=agent,
        source=source,
        importance=importance,
        trust=trust,
        time=datetime.fromtimestamp(seconds, UTC),
        attributes=attributes,
        evidence=tuple(evidence),
    )
    back = record_from_metadata(record.id, record.text, record_to_metadata(record))
    assert back == record


def test_malformed_stored_row_is_rejected_clearly() -> None:
    record = validate_record(_fields())
    meta = record_to_metadata(record)
    meta["importance"] = 7.0
    with pytest.raises(InvalidMemoryError, match=r"stored memory .*importance=7\.0"):
        record_from_metadata(record.id, record.text, meta)
    del meta["time"]
    with pytest.raises(InvalidMemoryError, match="malformed metadata"):
        record_from_metadata(record.id, record.text, meta)
    with pytest.raises(InvalidMemoryError, match="no metadata or no text"):
        record_from_metadata(record.id, None, record_to_metadata(record))
