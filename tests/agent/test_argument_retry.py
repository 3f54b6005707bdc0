"""The Agent's tool-call path: a call whose arguments fail validation is decoded once more,
with the validation error shown to the model; never more than once. On the scripted fake
backend, with a tool whose pydantic validator checks what its JSON Schema cannot say."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, field_validator

from agentcore import Agent, Result
from agentcore.backends import FakeBackend, Reply
from agentcore.tools import Tool, tool


class Booking(BaseModel):
    """Book a table for a date."""

    date: str  # YYYY-MM-DD

    @field_validator("date")
    @classmethod
    def iso_date(cls, value: str) -> str:
        parts = value.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
            raise ValueError("must be a date written YYYY-MM-DD")
        return value


booked: list[str] = []


@tool
def book_table(booking: Booking) -> str:
    """Book a table for a date."""
    booked.append(booking.date)
    return f"booked for {booking.date}"


def _agent(make_agent: Callable[..., Agent], fake: FakeBackend) -> Agent:
    booked.clear()
    tools: list[Tool] = [book_table]
    return make_agent(fake, tools=tools)


def test_a_refused_call_is_retried_once_with_the_error(make_agent: Callable[..., Agent]) -> None:
    fake = FakeBackend(
        [
            Reply.call("book_table", booking={"date": "May 3rd"}),
            Reply.call("book_table", booking={"date": "2025-05-03"}),
            "Booked for May 3rd.",
        ]
    )
    result = _make_and_run(make_agent, fake)
    assert result.answer == "Booked for May 3rd." and result.success
    assert booked == ["2025-05-03"]  # only the corrected call ran
    retry = fake.requests[1].messages
    assert len(retry) == 1 and retry[0]["role"] == "tool" and retry[0]["name"] == "book_table"
    error = retry[0]["content"]
    assert "Invalid arguments for tool 'book_table'" in error and "YYYY-MM-DD" in error
    refused = [e for e in result.events if e.type == "verdict" and e.decision == "deny"]
    assert [e.rule for e in refused] == ["arguments.schema"]  # the refusal is on the record
    assert refused[0].call_id == retry[0]["tool_call_id"]
    assert "date" in error  # names the field
    assert retry[0]["tool_call_id"] == "call_1"  # the result of the refused call
    assert result.tool_calls == 1 and len(fake.requests) == 3


def test_a_call_refused_twice_is_not_retried_again(make_agent: Callable[..., Agent]) -> None:
    fake = FakeBackend(
        [
            Reply.call("book_table", booking={"date": "May 3rd"}),
            Reply.call("book_table", booking={"date": "the third"}),
            "I could not book it.",
        ]
    )
    result = _make_and_run(make_agent, fake)
    assert booked == []  # neither call ran
    # one retry inside the turn; the second refusal goes to the safety filter as before
    assert fake.requests[1].messages[0]["content"].startswith("Invalid arguments")
    later = [m for r in fake.requests[2:] for m in r.messages]
    assert any("arguments.schema" in str(m.get("content")) for m in later)
    assert result.answer == "I could not book it."


def test_a_valid_call_is_not_retried(make_agent: Callable[..., Agent]) -> None:
    fake = FakeBackend([Reply.call("book_table", booking={"date": "2025-05-03"}), "Done."])
    result = _make_and_run(make_agent, fake)
    assert booked == ["2025-05-03"] and len(fake.requests) == 2 and result.answer == "Done."


def _make_and_run(make_agent: Callable[..., Agent], fake: FakeBackend) -> Result:
    return _agent(make_agent, fake).run("Book a table for May 3rd 2025.")
