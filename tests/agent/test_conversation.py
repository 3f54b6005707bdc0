"""A conversation as a user has it, on the scripted fake backend: statements are context and
facts (never tasks), questions about them are answered from the facts put into the prompt, an
outcome is ``succeeded`` only on evidence, and only a multi-step tool procedure is a skill."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from agentcore.agent import Agent, AgentConfig
from agentcore.agent._clauses import ClausePlanner
from agentcore.agent._learning import Episode, is_procedure
from agentcore.agent._planning import PlanLayer
from agentcore.backends import FakeBackend, Reply
from agentcore.memory import LongTermMemory
from agentcore.planners import (
    PlanContext,
    PlanError,
    RuleBasedPlanner,
    Task,
    TaskGraph,
    is_passage,
    is_personal_fact,
    is_personal_question,
    task_text,
    told_facts,
    utterances,
)
from agentcore.tools.builtin import default_tools

SISTER = "My sister lives in Lyon. Suggest a gift for her."

# a chat turn as a reader sends it: a novel's passage pasted in (dialogue with questions and
# orders in quotes, narration in the past tense), then a fact of the user's own
NARRATION = (
    "The fog had not lifted by the time the inspector reached the river. He stood on the "
    "embankment for a long while. The lamps were yellow and dim. A boat went past without a "
    "light. Then he turned away from the water. And the clocks struck eleven across the city. "
    "He was tired, and the cold was in his bones."
)
PASSAGE = (
    "Here is the next part:\n\n"
    + NARRATION
    + "\n\n\u201cWhy do you stand there?\u201d asked the sergeant. \u201cCome inside and "
    "write your report at once.\u201d\n\n"
    + '"Look at the water," said the inspector. "Tell me what you see."\n\n'
    + "The sergeant was silent.\n\n"
    + "By the way, something I want you to remember: my locker at the gym is number 317."
)


def _approve(request: object) -> str:
    return "once"


def _user_prompts(fake: FakeBackend) -> list[str]:
    return [
        str(m.get("content"))
        for r in fake.requests
        for m in r.messages
        if m.get("role") == "user" and m.get("content")
    ]


class TestUtterances:
    @pytest.mark.parametrize(
        ("message", "kinds"),
        [
            (SISTER, ["statement", "request"]),
            ("Where does my sister live?", ["question"]),
            ("I am allergic to peanuts.", ["statement"]),
            ("The wifi password is orange42.", ["statement"]),
            ("Hi there! Thanks.", ["small_talk", "small_talk"]),
            ("How are you?", ["small_talk"]),
            ("Compute 17*23 and write the result to result.txt", ["request"]),
            ("Can you read notes.txt?", ["request"]),
            ("What is 17*23?", ["question"]),
            ("I work as a nurse at St. Mary hospital.", ["statement"]),
            ("Good morning! I just moved to Berlin.", ["small_talk", "statement"]),
            ("Do the dishes.", ["request"]),
            ("Do you remember where my sister lives?", ["question"]),
            ("I need 120+80 worked out and the answer put in total.txt", ["request"]),
            ("I want the report sent to Ann today.", ["request"]),
            ("I need a new phone.", ["statement"]),
            ("I want to visit Lisbon next year.", ["statement"]),
            ("Then he turned away from the water.", ["statement"]),
            ("And the clocks struck eleven.", ["statement"]),
            ("First compute 3*4. Then save it in a.txt", ["request", "request"]),
            ('"Why are you here?" asked Syme. He was cold.', ["quoted", "statement"]),
            ("\u201cSend it at once,\u201d said Ann. Compute 2+2.", ["quoted", "request"]),
            ('"What is 17*23?"', ["question"]),  # all in quotes: the user's own words
            ('My boss said "send it by Friday". Remind me tomorrow.', ["statement", "request"]),
        ],
    )
    def test_kinds(self, message: str, kinds: list[str]) -> None:
        assert [u.kind for u in utterances(message)] == kinds

    def test_task_text_leaves_out_statements_and_small_talk(self) -> None:
        assert task_text(SISTER) == "Suggest a gift for her."
        assert task_text("Hello! My dog is called Biscuit.") == ""

    @pytest.mark.parametrize(
        ("sentence", "fact"),
        [
            ("My sister lives in Lyon.", True),
            ("Our meeting room is B-17.", True),
            ("Please remember: I live in Lyon.", True),
            ("That is wrong.", False),
            ("I'm stuck: this loop never ends.", False),
            ("Where does my sister live?", False),
            ("Suggest a gift for her.", False),
        ],
    )
    def test_personal_facts(self, sentence: str, fact: bool) -> None:
        assert is_personal_fact(sentence) is fact

    def test_a_pasted_passage_asks_nothing_and_tells_only_the_users_fact(self) -> None:
        said = utterances(PASSAGE)
        assert [u.text for u in said if u.kind == "quoted"] == [
            "\u201cWhy do you stand there?\u201d asked the sergeant.",
            "\u201cCome inside and write your report at once.\u201d",
            '"Look at the water," said the inspector.',
            '"Tell me what you see."',
        ]
        assert task_text(PASSAGE) == ""
        assert told_facts(PASSAGE) == [
            "By the way, something I want you to remember: my locker at the gym is number 317."
        ]

    def test_a_long_form_of_labelled_lines_is_not_prose(self) -> None:
        form = "\n".join(
            [
                "Time: 08:00 (tick 0). Location: cafe.",
                "Here: klaus, maria",
                "Places: park, town hall",
                "Goals: throw a party",
                "You have: coins=10",
                "Your move: call one tool, or say one short sentence to the people here.",
            ]
        )
        said = utterances(form)
        assert is_passage(said)
        assert said[-1].kind == "request" and said[-1].text in task_text(form)

    def test_a_short_message_tells_every_personal_fact(self) -> None:
        assert told_facts(SISTER) == ["My sister lives in Lyon."]
        assert told_facts("The lamps were yellow. The wifi password is orange42.") == [
            "The lamps were yellow.",
            "The wifi password is orange42.",
        ]
        assert told_facts("Here is the next part:") == []

    def test_personal_questions(self) -> None:
        assert is_personal_question("Where does my sister live?")
        assert not is_personal_question("What is 17*23?")
        assert not is_personal_question("What is in my notes.txt?")
        assert not is_personal_question("My sister lives in Lyon.")


class TestStatementsAreNotTasks:
    def test_clause_planner_keeps_a_statement_as_context(self, tmp_path: Path) -> None:
        tools = default_tools(workspace=tmp_path)
        planner = ClausePlanner(tools)
        context = PlanContext(tools=tuple(tools.names()))
        with pytest.raises(PlanError, match="nothing to plan"):
            planner.plan("My sister lives in Lyon.", context)
        graph = planner.plan("My favourite number is 7. Compute 3*4 then save it in a.txt", context)
        tasks = [graph.task(t) for t in graph.topological_order()]
        assert [t.goal for t in tasks] == ["Compute 3*4", "save it in a.txt"]
        assert all(t.inputs["context"] == "My favourite number is 7." for t in tasks)

    def test_rule_planner_fallback_plans_only_the_request(self) -> None:
        planner = RuleBasedPlanner([], fallback_single=True)
        with pytest.raises(PlanError, match="nothing to plan"):
            planner.plan("My sister lives in Lyon.")
        graph = planner.plan(SISTER)
        (task,) = graph.tasks()
        assert task.goal == "Suggest a gift for her."
        assert task.inputs == {"context": "My sister lives in Lyon."}

    @pytest.mark.parametrize(
        ("goal", "planned"),
        [
            (SISTER, False),
            ("My sister lives in Lyon.", False),
            ("Hi! Thanks.", False),
            ("Where does my sister live?", False),
            ("I live in Paris. What is 345+678?", True),
            ("Compute 17*23 and write the result to result.txt", True),
        ],
    )
    def test_auto_plans_requests_only(self, goal: str, planned: bool, tmp_path: Path) -> None:
        tools = default_tools(workspace=tmp_path)
        assert PlanLayer("auto", tools).wants_plan(goal, tools.names()) is planned

    def test_the_sister_message_is_one_unplanned_turn(
        self, make_agent: Callable[..., Agent]
    ) -> None:
        fake = FakeBackend(["A scarf from a shop in Lyon."])
        agent = make_agent(fake, planner="auto")
        result = agent.run(SISTER)
        assert result.answer == "A scarf from a shop in Lyon."  # answered once
        assert not [e for e in result.events if e.type == "plan"]
        assert len(fake.requests) == 1 and fake.requests[0].tool_choice == "auto"

    def test_a_pasted_passage_is_one_unplanned_reply(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        fake = FakeBackend(["A grim night by the river."])
        agent = make_agent(fake, planner="auto")
        result = agent.run(PASSAGE)
        assert not [e for e in result.events if e.type == "plan"]
        assert result.tool_calls == 0 and fake.requests[0].tool_choice == "none"
        facts = [r.text for r in store.list_records(kinds=["fact"])]
        assert facts == [
            "By the way, something I want you to remember: my locker at the gym is number 317."
        ]

    def test_a_statement_with_a_task_goes_to_each_step(
        self, make_agent: Callable[..., Agent]
    ) -> None:
        fake = FakeBackend(
            [
                Reply.call("calculate", expression="3*4"),
                Reply.call("write_file", path="a.txt", content="12"),
            ]
        )
        agent = make_agent(fake, planner="auto", approve=_approve)
        result = agent.run("My favourite number is 7. Compute 3*4 then save it in a.txt")
        assert result.success and (agent.workspace / "a.txt").read_text() == "12"
        steps = [p for p in _user_prompts(fake) if p.startswith("Step ")]
        assert len(steps) == 2
        assert all("Context (the user said): My favourite number is 7." in s for s in steps)


class TestFacts:
    def test_a_statement_is_stored_and_recalled_into_the_prompt(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        fake = FakeBackend(["Noted.", "A scarf.", "Your sister lives in Lyon."])
        agent = make_agent(fake, planner="auto")
        agent.run("My sister lives in Lyon.")
        assert fake.requests[0].tool_choice == "none"  # a statement: a reply, no tool
        agent.run("Suggest a gift for her.")
        asked = agent.run("Where does my sister live?")
        facts = [r.text for r in store.list_records(kinds=["fact"])]
        assert facts == ["My sister lives in Lyon."]
        prompt = fake.requests[-1].messages[-1]["content"]
        assert "What the user told you:\n- My sister lives in Lyon." in prompt
        assert prompt.endswith("Request: Where does my sister live?")
        # a question about what the user told is answered from it, not with a tool
        assert fake.requests[-1].tool_choice == "none"
        assert "Lyon" in asked.answer

    def test_a_fact_reaches_a_new_agent_through_long_term_memory(
        self, make_agent: Callable[..., Agent], tmp_path: Path
    ) -> None:
        first = make_agent(FakeBackend(["Noted."]))
        first.run("I am allergic to peanuts.")
        fake = FakeBackend(["Peanuts."])
        second = make_agent(fake, home=tmp_path / "restarted")  # same store, a fresh session
        second.run("What am I allergic to?")
        assert "- I am allergic to peanuts." in fake.requests[-1].messages[-1]["content"]

    def test_working_memory_holds_the_fact_without_long_term_learning(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        fake = FakeBackend(["Noted.", "Biscuit."])
        agent = make_agent(fake, config=AgentConfig.no_learning())
        agent.run("My dog is called Biscuit.")
        agent.run("What is my dog called?")
        assert store.count() == 0
        assert "- My dog is called Biscuit." in fake.requests[-1].messages[-1]["content"]
        state = agent.memory_layer.dump()
        assert any(i["text"] == "The user said: My dog is called Biscuit." for i in state)

    def test_a_fact_said_twice_is_stored_once(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        agent = make_agent(FakeBackend(["Noted.", "Noted."]))
        agent.run("My sister lives in Lyon.")
        agent.run("My sister lives in Lyon!")
        assert store.count("fact") == 1

    def test_a_question_is_not_stored_as_a_fact(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        agent = make_agent(FakeBackend(["I do not know yet."]))
        agent.run("Where does my sister live?")
        assert store.count("fact") == 0


class TestOutcomes:
    def _episodes(self, store: LongTermMemory) -> list[dict[str, object]]:
        return [{"text": r.text, **r.attributes} for r in store.list_records(kinds=["episodic"])]

    def test_a_text_answer_is_unverified(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        agent = make_agent(FakeBackend(["Paris."]))
        result = agent.run("What is the capital of France?")
        assert result.success  # the run answered...
        (episode,) = self._episodes(store)
        assert episode["outcome"] == "unverified"  # ...but nothing checked the answer
        assert "Outcome: answered, unverified" in str(episode["text"])
        assert "succeeded" not in str(episode["text"])

    def test_a_tool_result_is_evidence(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        fake = FakeBackend([Reply.call("calculate", expression="17*23"), "391"])
        agent = make_agent(fake)
        agent.run("What is 17*23?")
        (episode,) = self._episodes(store)
        assert episode["outcome"] == "succeeded"
        assert "Outcome: succeeded (tool:calculate ok)" in str(episode["text"])

    def test_statements_and_small_talk_leave_no_episode(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        agent = make_agent(FakeBackend(["Hello!", "Noted."]))
        agent.run("Hi!")
        agent.run("My dog is called Biscuit.")
        assert self._episodes(store) == [] and store.count("fact") == 1


class TestSkills:
    def test_a_single_answer_is_no_skill(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        agent = make_agent(FakeBackend(["A scarf.", "Hello."]), planner="auto")
        agent.run(SISTER)
        agent.run("Tell me a joke")
        assert store.count("skill") == 0

    def test_a_one_step_plan_is_no_skill(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        (Path(make_agent(FakeBackend([])).workspace) / "notes.txt").write_text("falcon")
        agent = make_agent(FakeBackend([Reply.call("read_file", path="notes.txt")]), planner="auto")
        assert agent.run("Read notes.txt").success
        assert store.count("skill") == 0

    def test_a_multi_step_tool_procedure_is_a_skill(
        self, make_agent: Callable[..., Agent], store: LongTermMemory
    ) -> None:
        fake = FakeBackend(
            [
                Reply.call("calculate", expression="17*23"),
                Reply.call("write_file", path="result.txt", content="391"),
            ]
        )
        agent = make_agent(fake, planner="auto", approve=_approve)
        agent.run("Compute 17*23 and write the result to result.txt")
        assert store.count("skill") == 1

    def test_a_plan_too_long_for_a_record_is_not_stored_and_learning_goes_on(
        self,
        make_agent: Callable[..., Agent],
        store: LongTermMemory,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        fake = FakeBackend(
            [
                Reply.call("calculate", expression="17*23"),
                Reply.call("write_file", path="result.txt", content="391"),
            ]
        )
        agent = make_agent(fake, planner="auto", approve=_approve)
        # the statement goes to each step as context: a template longer than a record holds
        stated = "My project notes are long, " + "with one more remark, " * 120 + "and done. "
        long_goal = stated + "Compute 17*23 and write the result to result.txt"
        with caplog.at_level(logging.INFO, logger="agentcore.agent"):
            result = agent.run(long_goal)
        assert result.success
        assert store.count("skill") == 0 and store.count("episodic") == 1
        assert "too long to store as a skill" in caplog.text
        assert "learning from run" not in caplog.text  # learning did not fail

    def test_is_procedure_needs_steps_and_tool_evidence(self) -> None:
        graph = TaskGraph("g")
        graph.add_task(Task(id="1", goal="a"))
        graph.add_task(Task(id="2", goal="b"), ["1"])
        for tid in ("1", "2"):
            graph.start(tid)
            graph.complete(tid, "ok")
        answered = Episode("r", "g", success=True)
        assert not is_procedure(answered, graph)  # both steps answered in text
        tooled = Episode("r", "g", success=True, evidence=["tool:a ok", "tool:b ok"])
        assert is_procedure(tooled, graph)
        assert not is_procedure(tooled, None)
