"""planners: goals into task graphs on networkx; scheduling, replanning, reusable plans.

A ``TaskGraph`` holds typed ``Task`` nodes and dependency edges (cycles rejected). Planners
(``LLMPlanner`` on a ``JsonGenerator``, ``RuleBasedPlanner`` on goal patterns, ``SkillPlanner``
on stored skills) turn a goal into a graph and refine a task into a subgraph. A ``Scheduler``
hands out ready tasks and applies retry budgets; ``replan`` rewrites only the failed part.
``utterances`` tells the statements, questions, requests and small talk of a message apart:
planners turn only requests into tasks, a statement is context.

This package never executes tools and never imports the model core or ``memory/``.
"""

from agentcore.planners._diff import GraphDiff, diff_graphs
from agentcore.planners._errors import (
    CycleError,
    InvalidTransitionError,
    PlanError,
    PlanLimitError,
    PlanValidationError,
    UnknownTaskError,
)
from agentcore.planners._graph import GRAPH_FORMAT, TaskGraph
from agentcore.planners._limits import PlannerLimits
from agentcore.planners._llm import (
    DEFAULT_SYSTEM_PROMPT,
    JsonGenerator,
    LLMPlanner,
    build_messages,
)
from agentcore.planners._plan_schema import (
    AGENT_PREFIX,
    assignee_names,
    graph_from_plan,
    plan_model,
    plan_schema,
)
from agentcore.planners._planner import DecomposingPlanner, PlanContext, Planner
from agentcore.planners._render import render_mermaid, render_text
from agentcore.planners._replan import ReplanResult, replan
from agentcore.planners._rules import RuleBasedPlanner, RuleTemplate
from agentcore.planners._scheduler import FailureOutcome, RetryPolicy, RunReport, Scheduler
from agentcore.planners._scripted import GeneratorCall, ScriptedJsonGenerator
from agentcore.planners._skills import InMemorySkillStore, SkillPlanner, SkillStore, goal_similarity
from agentcore.planners._task import TASK_ID_PATTERN, Assignee, Task, TaskStatus
from agentcore.planners._template import PlanTemplate, TemplateStep
from agentcore.planners._utterance import (
    Utterance,
    UtteranceKind,
    is_passage,
    is_personal_fact,
    is_personal_question,
    statements,
    task_text,
    told_facts,
    utterances,
)
from agentcore.planners._view import GraphView

__all__ = [
    "AGENT_PREFIX",
    "DEFAULT_SYSTEM_PROMPT",
    "GRAPH_FORMAT",
    "TASK_ID_PATTERN",
    "Assignee",
    "CycleError",
    "DecomposingPlanner",
    "FailureOutcome",
    "GeneratorCall",
    "GraphDiff",
    "GraphView",
    "InMemorySkillStore",
    "InvalidTransitionError",
    "JsonGenerator",
    "LLMPlanner",
    "PlanContext",
    "PlanError",
    "PlanLimitError",
    "PlanTemplate",
    "PlanValidationError",
    "Planner",
    "PlannerLimits",
    "ReplanResult",
    "RetryPolicy",
    "RuleBasedPlanner",
    "RuleTemplate",
    "RunReport",
    "Scheduler",
    "ScriptedJsonGenerator",
    "SkillPlanner",
    "SkillStore",
    "Task",
    "TaskGraph",
    "TaskStatus",
    "TemplateStep",
    "UnknownTaskError",
    "Utterance",
    "UtteranceKind",
    "assignee_names",
    "build_messages",
    "diff_graphs",
    "goal_similarity",
    "graph_from_plan",
    "is_passage",
    "is_personal_fact",
    "is_personal_question",
    "plan_model",
    "plan_schema",
    "render_mermaid",
    "render_text",
    "replan",
    "statements",
    "task_text",
    "told_facts",
    "utterances",
]
