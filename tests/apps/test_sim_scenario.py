"""Scenario files: validation errors name the file line, the field and what was expected;
the example scenarios are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.apps.sim import ScenarioError, load_scenario, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "scenarios"

GOOD = """\
name: ok
ticks: 3
world:
  locations: [a, b]
agents:
  - name: x
    persona: p
    location: a
  - name: y
    persona: q
events:
  - {tick: 1, kind: message, to: [x], text: hi}
metrics:
  - {name: m, kind: heard, pattern: hi}
"""


def _problem(text: str) -> tuple[int, int, str, str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml")
    p = info.value.problems[0]
    return p.line, p.column, p.field, p.message


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_good_scenario_parses() -> None:
    s = parse_scenario(GOOD)
    assert [a.name for a in s.agents] == ["x", "y"]
    assert s.agents[0].tools == ("speak", "move", "wait")


@pytest.mark.parametrize("name", ["town", "market", "debate"])
def test_examples_are_valid(name: str) -> None:
    scenario = load_scenario(EXAMPLES / f"{name}.yaml")
    assert scenario.name == name and scenario.metrics


def test_wrong_type_points_at_the_value() -> None:
    text = GOOD.replace("ticks: 3", "ticks: many")
    line, col, field, msg = _problem(text)
    assert (line, col, field) == (2, 8, "ticks")
    assert "integer" in msg and "'many'" in msg


def test_unknown_tool_points_at_the_list_item() -> None:
    text = GOOD.replace("    location: a\n", "    location: a\n    tools: [speak, fly]\n")
    line, _, field, msg = _problem(text)
    assert line == _line_of(text, "tools: [speak, fly]")
    assert field == "agents[0].tools"
    assert "unknown tool 'fly'" in msg and "speak" in msg


def test_unknown_field_points_at_the_key() -> None:
    text = GOOD.replace("    persona: q\n", "    persona: q\n    mood: happy\n")
    line, col, field, msg = _problem(text)
    assert (line, col) == (_line_of(text, "mood: happy"), 5)
    assert field == "agents[1].mood" and "unknown field" in msg


def test_missing_field_points_at_its_mapping() -> None:
    text = GOOD.replace("    persona: q\n", "")
    line, _, field, msg = _problem(text)
    assert line == _line_of(text, "- name: y")
    assert field == "agents[1].persona" and msg == "required field is missing"


def test_cross_reference_errors_name_the_field() -> None:
    text = GOOD.replace("to: [x]", "to: [zed]")
    line, _, field, msg = _problem(text)
    assert line == _line_of(text, "to: [zed]")
    assert field == "events[0].to" and "unknown agent 'zed'" in msg

    text = GOOD.replace("tick: 1,", "tick: 7,")
    line, _, field, msg = _problem(text)
    assert field == "events[0].tick" and "never reached" in msg
    assert line == _line_of(text, "tick: 7")


def test_metric_needs_its_fields_and_a_valid_regex() -> None:
    text = GOOD.replace("pattern: hi", "pattern: '(('")
    _, _, field, msg = _problem(text)
    assert field == "metrics[0].pattern" and "regular expression" in msg
    text = GOOD.replace("kind: heard, pattern: hi", "kind: at")
    _, _, field, msg = _problem(text)
    assert field == "metrics[0]" and "needs 'location'" in msg


def test_several_problems_are_all_reported_in_line_order() -> None:
    text = GOOD.replace("ticks: 3", "ticks: 0").replace("persona: q", "persona: ''")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml")
    problems = info.value.problems
    assert [p.field for p in problems] == ["ticks", "agents[1].persona"]
    assert "s.yaml:2:8: ticks:" in str(info.value)


def test_yaml_syntax_error_has_a_position() -> None:
    line, _, field, msg = _problem("name: x\nagents: [\n")
    assert line >= 2 and field == "" and msg.startswith("YAML syntax")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    (tmp_path / "s.toml").write_text("x = 1")
    with pytest.raises(ScenarioError, match=r"\.yaml"):
        load_scenario(tmp_path / "s.toml")
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(ScenarioError, match="empty"):
        load_scenario(tmp_path / "e.yaml")
