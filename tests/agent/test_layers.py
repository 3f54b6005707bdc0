"""Unit tests of the small layers: perception, redaction, audit log, policy, budgets,
working memory and retrieval, grounding, the clause planner, the call-text filter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentcore.agent import (
    REDACTED,
    AgentConfig,
    AuditLog,
    BudgetMeter,
    Budgets,
    EventAdapter,
    MemoryLayer,
    ObservationEvent,
    Perception,
    Policy,
    Recall,
    Redactor,
    Retrieved,
    StreamRedactor,
    TextDelta,
    TokenEvent,
    TrustLevel,
    trust_ceiling,
)
from agentcore.agent._action import _CallTextFilter, hinted_tool
from agentcore.agent._clauses import ClausePlanner, match_tool, split_clauses
from agentcore.agent._grounding import candidates, ground_tool
from agentcore.agent._state import AgentState, load_state, save_state
from agentcore.memory import LongTermMemory, MemoryKind, MemoryRecord, WorkingMemoryConfig
from agentcore.memory import TrustLevel as MemoryTrust
from agentcore.planners import PlanContext
from agentcore.tools.builtin import calculator_tool, default_tools

# -- perception -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "ceiling"),
    [
        ("user", "user"),
        ("system", "system"),
        ("agent:bob", "agent"),
        ("tool:read_file", "tool"),
        ("web", "web"),
        ("environment", "environment"),
        ("somewhere", "environment"),
    ],
)
def test_trust_is_capped_by_the_source(source: str, ceiling: str) -> None:
    assert trust_ceiling(source) == ceiling
    obs = Perception().perceive("hello", source=source, trust="system")
    assert obs.trust == ceiling


def test_perception_lowers_but_never_raises_trust() -> None:
    p = Perception()
    assert p.perceive("x", source="user", trust="environment").trust == "environment"
    assert p.perceive("x", source="tool:t", trust="user").untrusted
    assert not p.perceive("x", source="user").untrusted


def test_one_trust_vocabulary_for_records_and_observations() -> None:
    assert TrustLevel is MemoryTrust  # the agent's name is memory's StrEnum
    obs = Perception().perceive("x", source="web:example.org", trust="user")
    assert obs.trust is TrustLevel.WEB and obs.untrusted
    assert Perception().perceive("x", source="user", trust=TrustLevel.AGENT).trust == "agent"
    with pytest.raises(ValueError, match="trust='friend': expected one of system, user"):
        Perception().perceive("x", source="user", trust="friend")
    event = ObservationEvent(
        agent="a", run_id="r", seq=0, source="user", trust="user", salience=0.5, content="x"
    )
    assert event.trust is TrustLevel.USER and '"trust":"user"' in event.model_dump_json()


def test_text_delta_is_the_agent_event_once_called_token_event() -> None:
    assert TokenEvent is TextDelta  # the deprecated name still imports
    delta = TextDelta(agent="a", run_id="r", seq=0, text="hi")
    back = EventAdapter.validate_json(delta.model_dump_json())
    assert isinstance(back, TextDelta) and back.type == "token" and back == delta


def test_salience_rewards_memorable_user_text_not_untrusted_pleas() -> None:
    p = Perception()
    plain = p.perceive("the sky", source="user").salience
    remember = p.perceive("Remember: my name is Ada", source="user").salience
    tool_plea = p.perceive("IMPORTANT remember this", source="tool:x").salience
    error = p.perceive("Error: file not found", source="tool:x").salience
    assert remember > plain and remember >= 0.9
    assert tool_plea == p.perceive("ordinary", source="tool:x").salience
    assert error > tool_plea
    assert p.perceive("a" * 5000, source="user").content.endswith("[...]")


# -- redaction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "sk-abcdefghijklmnopqrstuvwxyz123456",
        "sk-ant-api03-abcdefghijklmnopqrstuv",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAABCDEFGHIJKLMNOP",
        "xoxb-123456789012-abcdefghij",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
        "Bearer abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_known_key_patterns_are_redacted(secret: str) -> None:
    text, n = Redactor().redact(f"config: {secret} end")
    assert secret not in text and REDACTED in text and n == 1
    assert text.startswith("config: ") and text.endswith(" end")


def test_assignments_keep_the_name_and_configured_secrets() -> None:
    r = Redactor(secrets=["hunter2-very-secret"])
    text, n = r.redact('password = "correcthorse" and token: abcdef123 and hunter2-very-secret')
    assert "correcthorse" not in text and "abcdef123" not in text
    assert "hunter2-very-secret" not in text and "password" in text and n == 3
    assert r.redact("nothing to hide here")[1] == 0
    assert r.redact_value({"a": ["sk-abcdefghijklmnopqrstuvwx", 3]}) == {"a": [REDACTED, 3]}
    with pytest.raises(ValueError, match="at least 4"):
        Redactor(secrets=["ab"])


def test_pem_private_keys_are_redacted_whole() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\ndef\n-----END RSA PRIVATE KEY-----"
    assert Redactor().redact(f"key:\n{pem}\nok")[0] == f"key:\n{REDACTED}\nok"


def test_stream_redactor_never_leaks_a_split_secret() -> None:
    secret = "sk-abcdefghijklmnopqrstuvwxyz123456"
    text = f"my key is {secret} ok bye"
    stream = StreamRedactor(Redactor())
    out = "".join(stream.feed(text[i : i + 3]) for i in range(0, len(text), 3)) + stream.flush()
    assert secret not in out and out == f"my key is {REDACTED} ok bye"


# -- audit log ---------------------------------------------------------------------------------


def test_audit_log_appends_durable_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    log.append({"decision": "deny", "rule": "deny_tools"})
    log.append({"decision": "allow", "rule": "policy"})
    with open(log.path, "ab") as handle:
        handle.write(b'{"torn": ')  # a crash mid-line
    records = log.records()
    assert [r["decision"] for r in records] == ["deny", "allow"]
    assert all("time" in r for r in records)
    assert oct(os.stat(log.path).st_mode & 0o777) == "0o600"


# -- policy and budgets ---------------------------------------------------------------------------


def test_policy_presets_and_validation(tmp_path: Path) -> None:
    default = Policy.default(tmp_path)
    assert default.workspace == tmp_path and "writes" in default.approval_side_effects
    assert "writes" not in Policy.permissive().approval_side_effects
    assert "writes" in Policy.strict().deny_side_effects
    with pytest.raises(ValueError, match="unknown side effects"):
        Policy(approval_side_effects=frozenset({"teleports"}))
    with pytest.raises(ValueError, match="not a regular expression"):
        Policy.model_validate({"argument_rules": [{"argument": "x", "deny_pattern": "("}]})
    changed = default.with_changes(deny_tools=frozenset({"calculate"}))
    assert "calculate" in changed.deny_tools and "calculate" not in default.deny_tools
    with pytest.raises(ValueError):
        default.deny_tools = frozenset()


def test_budget_meter_reports_the_first_exhausted_budget() -> None:
    now = [0.0]
    policy = Policy(budgets=Budgets(steps=2, tokens=100, time_s=10, tool_calls=1))
    meter = BudgetMeter(policy, clock=lambda: now[0])
    assert meter.exhausted() is None and meter.tool_calls_left() == 1
    meter.tool_calls = 1
    assert meter.tool_calls_left() == 0
    meter.tokens = 100
    assert meter.exhausted() == "budget.tokens"
    meter.steps = 2
    assert meter.exhausted() == "budget.steps"
    meter2 = BudgetMeter(policy, clock=lambda: now[0])
    now[0] = 11
    assert meter2.exhausted() == "budget.time" and meter2.time_left() == 0
    unlimited = BudgetMeter(Policy(budgets=Budgets.unlimited()))
    assert unlimited.exhausted() is None and unlimited.tool_calls_left() is None


# -- working memory and retrieval ------------------------------------------------------------------


def test_retrieval_filters_by_agent_kind_and_similarity(store: LongTermMemory) -> None:
    store.add_many(
        [
            MemoryRecord(kind=MemoryKind.FACT, text="my favourite color is teal", agent="a"),
            MemoryRecord(kind=MemoryKind.FACT, text="my favourite color is red", agent="b"),
            MemoryRecord(kind=MemoryKind.LESSON, text="color questions: check memory", agent="a"),
        ]
    )
    layer = MemoryLayer(store, agent="a", config=WorkingMemoryConfig.small(), min_similarity=-1)
    found = layer.retrieve("what is my favourite color")
    assert [h.record.text for h in found.memories] == ["my favourite color is teal"]
    assert [h.record.text for h in found.lessons] == ["color questions: check memory"]
    text = layer.context(found, ["Tool record: calculate 1/1 ok"])
    assert "Lessons from earlier runs" in text and "teal" in text and "red" not in text
    assert text.endswith("Tool record: calculate 1/1 ok")
    strict = MemoryLayer(store, agent="a", config=WorkingMemoryConfig.small(), min_similarity=0.99)
    assert strict.retrieve("something unrelated entirely").memories == ()


def test_the_rendered_context_names_the_first_untrusted_source(store: LongTermMemory) -> None:
    layer = MemoryLayer(store, agent="a", config=WorkingMemoryConfig.small(), min_similarity=-1)
    assert layer.render(layer.retrieve("anything")).untrusted is None
    layer.working.observe("the page says hello", 0.4, "web:example.org, untrusted")
    context = layer.render(layer.retrieve("anything"))
    assert context.untrusted == "web:example.org" and "the page says hello" in context.text
    assert layer.render(Retrieved()).untrusted is None  # shown once: nothing new is untrusted


def test_the_old_retrieval_names_still_work() -> None:
    assert Recall is Retrieved
    with pytest.warns(DeprecationWarning, match="memory_k"):
        layer = MemoryLayer(None, agent="a", config=WorkingMemoryConfig.small(), recall_k=1)
    assert layer.memory_k == 1


def test_the_old_agent_config_names_still_work() -> None:
    with pytest.warns(DeprecationWarning, match="use memory_k"):
        config = AgentConfig(recall_k=1)  # type: ignore[call-arg]
    with pytest.warns(DeprecationWarning, match="use min_memory_similarity"):
        config = AgentConfig(memory_k=1, min_recall_similarity=-1)  # type: ignore[call-arg]
    assert (config.memory_k, config.min_memory_similarity) == (1, -1)
    with pytest.warns(DeprecationWarning, match="use memory_k"):
        assert config.recall_k == 1
    with pytest.warns(DeprecationWarning, match="use min_memory_similarity"):
        assert config.min_recall_similarity == -1
    with pytest.raises(TypeError, match="pass memory_k= only"):
        AgentConfig(recall_k=1, memory_k=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"AgentConfig\.memory_k=-1"):
        AgentConfig(memory_k=-1)


def test_working_memory_round_trips_through_state(tmp_path: Path) -> None:
    layer = MemoryLayer(None, agent="a", config=WorkingMemoryConfig.small())
    layer.working.add_goal("finish the report")
    layer.working.observe("it rained", 0.4, "environment")
    state = AgentState(name="a", session_id="s", working=layer.dump())
    save_state(state, tmp_path / "agent.json")
    back = load_state(tmp_path / "agent.json")
    other = MemoryLayer(None, agent="a", config=WorkingMemoryConfig.small())
    other.restore(back.working)
    assert [i.text for i in other.working.items()] == ["finish the report", "it rained"]
    assert not list(tmp_path.glob(".agent.json.*"))  # no temp file left behind
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a saved agent state"):
        load_state(tmp_path / "bad.json")


# -- grounding and decoding hints ------------------------------------------------------------------


def test_candidates_come_from_the_step_and_results() -> None:
    assert candidates("expression", "Compute 17*23 then add 2 + 3", []) == ["17*23", "2 + 3"]
    assert candidates("expression", "Calculate (4+5)*3", []) == ["(4+5)*3"]
    assert candidates("path", "write it to out/result.txt and notes.md", []) == [
        "out/result.txt",
        "notes.md",
    ]
    assert candidates("content", 'write "hello world" to a.txt', ["391"]) == ["hello world", "391"]
    assert candidates("content", "write it down", []) == []
    assert candidates("query", "anything 1+1", ["x"]) == []


def test_ground_tool_narrows_only_string_arguments_with_candidates() -> None:
    entry = calculator_tool().openai_tool()
    grounded = ground_tool(entry, "Compute 17*23", [])
    schema = grounded["function"]["parameters"]["properties"]["expression"]
    assert schema["enum"] == ["17*23"]
    assert "enum" not in entry["function"]["parameters"]["properties"]["expression"]
    free = ground_tool(entry, "no numbers here", [])
    assert "enum" not in free["function"]["parameters"]["properties"]["expression"]


def test_hints_narrow_never_widen() -> None:
    entry = calculator_tool().openai_tool()
    hinted = hinted_tool(entry, {"expression": {"maxLength": 10_000, "pattern": "^[0-9]+$"}})
    schema = hinted["function"]["parameters"]["properties"]["expression"]
    assert schema["maxLength"] == 500 and schema["pattern"] == "^[0-9]+$"
    assert hinted_tool(entry, {}) is entry
    assert hinted_tool(entry, {"nope": {"maxLength": 1}}) == entry


def test_call_text_filter_hides_tool_call_text() -> None:
    f = _CallTextFilter()
    assert [f.feed(p) for p in ["<tool", "_call>\n{", '"name"']] == ["", "", ""]
    g = _CallTextFilter()
    assert g.feed("<") == "" and g.feed("b>hello") == "<b>hello" and g.feed(" x") == " x"
    h = _CallTextFilter()
    assert h.feed("Hi") == "Hi"


# -- clause planner ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goal", "clauses"),
    [
        ("Compute 17*23 and write the result to result.txt", 2),
        ("List the files, then read notes.txt", 2),
        ("1. read a.txt\n2. count the words\n3. write the count to b.txt", 3),
        ("first do this; then that; finally the last thing", 3),
        ("Tom and Jerry are friends", 1),
        ("What is the capital of France?", 1),
    ],
)
def test_split_clauses(goal: str, clauses: int) -> None:
    assert len(split_clauses(goal)) == clauses


def test_clause_planner_chains_steps_and_assigns_tools(tmp_path: Path) -> None:
    tools = default_tools(workspace=tmp_path)
    assert match_tool("Compute 17*23", tools, tools.names()) == "calculate"
    assert match_tool("save it in a.txt", tools, tools.names()) == "write_file"
    assert match_tool("tell me a joke", tools, tools.names()) is None
    graph = ClausePlanner(tools).plan(
        "Compute 2+2 and then write the result to r.txt", PlanContext(tools=tuple(tools.names()))
    )
    order = graph.topological_order()
    assert [graph.task(t).assignee.name for t in order] == ["calculate", "write_file"]  # type: ignore[union-attr]
    assert graph.dependencies(order[1]) == [order[0]]
    # a tool that is not permitted is never assigned
    only_calc = ClausePlanner(tools).plan(
        "Compute 2+2 and write it to r.txt", PlanContext(tools=("calculate",))
    )
    assert only_calc.task(only_calc.topological_order()[1]).assignee is None


def test_state_file_is_json(tmp_path: Path) -> None:
    save_state(AgentState(name="n", session_id="s"), tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text())["format"] == "agentcore.agent/1"


def test_context_trims_observations_before_memories_and_keeps_extra(
    store: LongTermMemory,
) -> None:
    store.add(MemoryRecord(kind=MemoryKind.FACT, text="the cat is called Miso", agent="a"))
    layer = MemoryLayer(
        store, agent="a", config=WorkingMemoryConfig(budget_tokens=40), min_similarity=-1
    )
    for n in range(10):
        layer.working.observe(f"observation number {n} about the weather", 0.5, "environment")
    found = layer.retrieve("what is the cat called")
    text = layer.context(found, ["Tool record: x 1/1 ok"])
    assert "Miso" in text and text.endswith("Tool record: x 1/1 ok")
    assert "observation number 9" in text and "observation number 0" not in text
    assert layer.working.count_tokens(text) <= 40
    assert layer.context(found).count("observation") == 0  # shown once


@pytest.mark.parametrize(
    ("goal", "planned"),
    [
        ("Read report.txt and summarise it", True),
        ("What is 17*23?", True),
        ("Calculate 3*4", True),
        ("List the files", True),
        ("hello there", False),
        ("Tell me a joke", False),
        ("What is my favourite colour?", False),
    ],
)
def test_auto_plans_commands_a_tool_fits_not_chat(goal: str, planned: bool, tmp_path: Path) -> None:
    from agentcore.agent._clauses import is_tool_step

    tools = default_tools(workspace=tmp_path)
    assert is_tool_step(goal, tools, tools.names()) is planned


def test_a_path_argument_offers_its_default_when_nothing_is_mentioned(tmp_path: Path) -> None:
    tools = default_tools(workspace=tmp_path)
    listing = ground_tool(tools.get("list_files").openai_tool(), "List the files", [])
    assert listing["function"]["parameters"]["properties"]["path"]["enum"] == ["."]
    both = ground_tool(tools.get("list_files").openai_tool(), "List docs/a.md", [])
    assert both["function"]["parameters"]["properties"]["path"]["enum"] == ["docs/a.md", "."]
    reading = ground_tool(tools.get("read_file").openai_tool(), "Read the file", [])
    assert "enum" not in reading["function"]["parameters"]["properties"]["path"]


def test_file_names_do_not_steer_the_tool_choice(tmp_path: Path) -> None:
    tools = default_tools(workspace=tmp_path)
    assert match_tool("write the result to sum.txt", tools, tools.names()) == "write_file"
    assert match_tool("read calculate.md", tools, tools.names()) == "read_file"
