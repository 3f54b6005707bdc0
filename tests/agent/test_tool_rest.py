"""A tool whose own service keeps failing rests (a circuit breaker), learned across runs.

What the learning layer's tool record does besides the prompt line: after
``AgentConfig.rest_tool_after`` outages in a row (a connection error, a timeout, a server
error) the tool is not offered for ``rest_tool_s`` seconds, so the model picks a tool that
works; failures the call itself caused (a missing file, a bad value) never count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agentcore.agent import Agent, AgentConfig
from agentcore.agent._execution import is_outage
from agentcore.agent._learning import Learner
from agentcore.backends import FakeBackend, FakeRequest, Reply
from agentcore.memory import LongTermMemory
from agentcore.tools import tool


def _status(exc: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://weather.invalid/now")
    return httpx.HTTPStatusError(
        "failed", request=request, response=httpx.Response(exc, request=request)
    )


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (ConnectionError("refused"), True),
        (TimeoutError("slow"), True),
        (httpx.ConnectError("no route"), True),
        (httpx.ReadTimeout("slow"), True),
        (_status(503), True),
        (_status(404), False),
        (FileNotFoundError("report.txt"), False),
        (ValueError("bad date"), False),
        (None, False),
    ],
)
def test_only_a_failing_service_is_an_outage(exc: BaseException | None, outage: bool) -> None:
    assert is_outage(exc) is outage


def test_outages_in_a_row_rest_a_tool_until_the_time_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    learner = Learner(None, agent="a", summarize=None)
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    for _ in range(2):
        learner.record_tool("station", False, outage=True)
    assert learner.resting(["station", "service"], 3, 600) == []
    learner.record_tool("station", False, outage=False)  # the call's fault: no change
    assert learner.resting(["station"], 3, 600) == []
    learner.record_tool("station", False, outage=True)
    assert learner.resting(["station", "service"], 3, 600) == ["station"]
    assert learner.resting(["station"], 0, 600) == []  # 0: never rest
    assert learner.stats_text(["station"]) == "Tool record: station 0/4 ok"
    clock[0] += 599
    assert learner.resting(["station"], 3, 600) == ["station"]
    clock[0] += 2  # the rest is over: offered once more
    assert learner.resting(["station"], 3, 600) == []
    learner.record_tool("station", False, outage=True)  # failed again: rests again
    assert learner.resting(["station"], 3, 600) == ["station"]
    learner.record_tool("station", True)  # a success ends the streak
    assert learner.resting(["station"], 3, 600) == []


def test_a_record_saved_before_streaks_were_kept_still_loads() -> None:
    learner = Learner(None, agent="a", summarize=None)
    learner.tool_stats = {"calculate": [4, 1]}
    assert learner.resting(["calculate"], 3, 600) == []
    assert learner.stats_text(["calculate"]) == "Tool record: calculate 4/5 ok"
    learner.record_tool("calculate", False, outage=True)
    assert learner.tool_stats["calculate"][:3] == [4, 2, 1]


def _weather_tools(calls: list[str]) -> list[object]:
    @tool(side_effects=("reads", "network"))
    def weather_station(city: str) -> str:
        """Current weather for a city, from the station network."""
        calls.append("station")
        raise ConnectionError("station network unreachable")

    @tool(side_effects=("reads", "network"))
    def weather_service(city: str) -> str:
        """Current weather for a city, from the weather service."""
        calls.append("service")
        return f"{city}: 18 C"

    @tool
    def read_note(name: str) -> str:
        """Read a note by name."""
        raise FileNotFoundError(name)

    return [weather_station, weather_service, read_note]


def _first_offered(request: FakeRequest) -> Reply:
    """Plays a model that calls the first weather tool it is offered."""
    name = next(t for t in request.tools if t.startswith("weather"))
    return Reply.call(name, city="Oslo")


def test_a_tool_that_keeps_failing_is_not_offered_to_later_runs(
    make_agent: Callable[..., Agent], tmp_path: Path, store: LongTermMemory
) -> None:
    calls: list[str] = []
    fake = FakeBackend()
    agent = make_agent(
        fake,
        tools=_weather_tools(calls),
        approve=lambda request: "once",
        config=AgentConfig(rest_tool_after=2, rest_tool_s=600, distill_lessons=False),
    )
    for _ in range(2):
        fake.add(_first_offered, "sorry")
        agent.run("Weather in Oslo?")
    assert calls == ["station", "station"]
    # three missing notes in a row are the calls' fault: read_note stays on offer
    for _ in range(3):
        fake.add(Reply.call("read_note", name="x"), "no such note")
        agent.run("Read my note x")
    assert "read_note" in fake.requests[-1].tools
    agent.close()

    # the record is saved: a reloaded agent rests the station and calls the service
    def reload(rest_after: int, memory: str) -> Agent:
        return Agent.load(
            "tester",
            model=fake,
            home=tmp_path / "home",
            memory=LongTermMemory(tmp_path / memory),
            planner="off",
            tools=_weather_tools(calls),
            approve=lambda request: "once",
            config=AgentConfig(rest_tool_after=rest_after, rest_tool_s=600, distill_lessons=False),
        )

    again = reload(2, "memory2")
    fake.add(_first_offered, "18 C in Oslo")
    result = again.run("Weather in Oslo?")
    assert calls[-1] == "service" and result.answer == "18 C in Oslo"
    assert "weather_station" not in fake.requests[-2].tools
    assert any(
        e.type == "status" and "not offering weather_station" in e.detail for e in result.events
    )
    # with the rest turned off the station is offered again
    plain = reload(0, "memory3")
    fake.add(_first_offered, "sorry")
    plain.run("Weather in Oslo?")
    assert calls[-1] == "station"


@pytest.mark.parametrize(
    ("field", "value"), [("rest_tool_after", -1), ("rest_tool_s", -5.0), ("rest_tool_s", "x")]
)
def test_rest_settings_are_checked(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"AgentConfig.{field}="):
        AgentConfig(**{field: value})  # type: ignore[arg-type]
