"""The local backend: the long-memory core in this process (CPU, or CUDA when present).

Owns named persistent sessions on one :class:`~agentcore.core.engine.Engine` (saved atomically
after every turn when a folder is given), the translation of OpenAI-style messages and tools
into the model's chat template (after tool results, a line that asks for the answer in words:
``LocalBackend.answer_cue``), and constrained decoding: with tools, the answer is decoded
under the action grammar built from the permitted tools (text or valid calls: one, or one per
clause of the request that asks for a tool, never the same call twice, argument values steered
toward those the conversation states: ``LocalBackend.call_steering``); with a JSON Schema as
well, JSON valid under it or calls; with a JSON Schema alone, under that schema. Never decides
which tools are allowed: the caller passes them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from agentcore.backends._call_decoding import (
    ArgumentBias,
    CallSteering,
    DistinctCalls,
    StepBias,
    copying,
    distinct,
    token_pieces,
)
from agentcore.backends._continuation import Ledger, continuation
from agentcore.backends._limits import (
    DEFAULT_MAX_RESIDENT,
    SessionLimitError,
    ToolDeclarationError,
)
from agentcore.backends._protocol import (
    ChatRequest,
    Completion,
    Message,
    ModelBackend,
    ToolCallOut,
    ToolChoice,
    Usage,
)
from agentcore.backends._session_locks import SessionLocks
from agentcore.backends._tool_dialect import ToolDialect, tool_dialect
from agentcore.core.codec import Codec
from agentcore.core.constraint import COMPACT_JSON, GrammarConstraint, GrammarError
from agentcore.core.engine import Engine
from agentcore.core.sampling import recording
from agentcore.core.session import GenerationResult, Session, SessionConfig
from agentcore.core.state import session_files
from agentcore.paths import validate_name
from agentcore.tools import (
    HERMES,
    CallFormat,
    JsonSchemaArguments,
    Tool,
    ToolArgumentError,
    ToolCallParseError,
    ToolError,
    arguments_grammar_schema,
    build_action_grammar,
    format_tool_call,
    format_tool_result,
    format_tool_result_body,
    parse_calls,
    render_tools_prompt,
    resolve_action_space,
)
from agentcore.tools._decision import ToolSelector

__all__ = [
    "LocalBackend",
    "normalize_messages",
    "tools_from_openai",
]

log = logging.getLogger("agentcore.backends")

_SCHEMA_CHECKS_KEPT = 256  # tool schemas whose grammar warnings a backend remembers
_LEADING_SPACE = re.compile(r"\s*")


def tools_from_openai(entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    """OpenAI ``tools`` entries -> :class:`tools.Tool` objects (declared here, run by the caller).

    Raises :class:`ToolDeclarationError` naming the entry (``tools[i]`` and its name)."""

    out = []
    for i, entry in enumerate(entries):
        fn = entry.get("function") if entry.get("type", "function") == "function" else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise ToolDeclarationError(
                i,
                None,
                f"expected {{'type': 'function', 'function': {{'name': ..., "
                f"'parameters': {{...}}}}}}, got {dict(entry)!r}",
            )
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        name = fn["name"]

        def declared(_args: Any, _name: str = name) -> Any:
            raise RuntimeError(f"tool {_name!r} is declared by the caller, who runs it")

        try:
            tool = Tool(
                name=name,
                description=str(fn.get("description") or ""),
                arguments=JsonSchemaArguments(params),
                invoke=declared,
                source="declared",
            )
        except (ToolError, ValueError, TypeError) as exc:
            raise ToolDeclarationError(i, name, str(exc), ".function.parameters") from None
        out.append(tool)
    return out


_ANSWER_CUE = "Answer my request in a short sentence, using the tool's result."


def normalize_messages(
    messages: Sequence[Message],
    *,
    native: bool = False,
    call_names: Mapping[str, str] | None = None,
    cue: str | None = None,
) -> list[Message]:
    """OpenAI messages -> plain role/content messages in the Hermes tool-call format, or, for
    a chat template that renders tools itself (``native``), messages whose past calls stay
    structured (``tool_calls`` with object arguments) and whose tool results are the escaped
    body the template wraps in its own tags.

    A tool result is shown under the name of the call it answers: the message's ``name``, else
    the call with its ``tool_call_id`` among ``messages`` or ``call_names`` (calls made before
    them, e.g. by the session the messages continue).

    ``cue``: a user message added after each run of tool results (the same wherever the run
    stands, so a stateless request renders what a session holds; see
    :attr:`LocalBackend.answer_cue`)."""

    out: list[Message] = []
    names: dict[str, str] = dict(call_names or {})
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("system", "user", "assistant", "tool", "developer"):
            raise ValueError(
                f"messages[{i}].role: got {role!r}; expected system, user, assistant or tool"
            )
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        if content is not None and not isinstance(content, str):
            raise ValueError(
                f"messages[{i}].content: got {type(content).__name__}; expected a string"
            )
        if role == "developer":
            role = "system"
        if role == "assistant" and m.get("tool_calls"):
            parts = [content] if content else []
            structured: list[dict[str, Any]] = []
            for call in m["tool_calls"]:
                fn = call.get("function", {})
                args = fn.get("arguments", {})
                if isinstance(args, str):
                    try:
                        args = json.loads(args) if args.strip() else {}
                    except json.JSONDecodeError as exc:
                        raise ValueError(
                            f"messages[{i}].tool_calls: arguments of {fn.get('name')!r} are not JSON: {exc}"
                        ) from None
                names[str(call.get("id"))] = str(fn.get("name"))
                parts.append(format_tool_call(str(fn.get("name")), args))
                structured.append(
                    {
                        "type": "function",
                        "function": {"name": str(fn.get("name")), "arguments": args},
                    }
                )
            if native:
                out.append(
                    {"role": "assistant", "content": content or "", "tool_calls": structured}
                )
            else:
                out.append({"role": "assistant", "content": "\n".join(parts)})
        elif role == "tool":
            name = str(m.get("name") or names.get(str(m.get("tool_call_id")), "tool"))
            render = format_tool_result_body if native else format_tool_result
            out.append({"role": "tool", "content": render(name, content or "")})
            last = i + 1 == len(messages) or messages[i + 1].get("role") != "tool"
            if cue and last:
                out.append({"role": "user", "content": cue})
        else:
            out.append({"role": role, "content": content or ""})
    return out


class LocalBackend(ModelBackend):
    """In-process model sessions; persistent when ``sessions_dir`` is given.

    A persistent backend keeps at most ``max_resident`` sessions in memory (each holds its
    window's keys and values: ~68 MiB for SmolLM2-135M's default 2K window): opening one more
    saves the least recently used idle ones to their files and lets them go; they are
    restored from there when next named. Without ``sessions_dir`` every session stays
    resident (there is nowhere to put it); ``max_resident=None`` lifts the cap.
    ``max_sessions`` caps the sessions a persistent backend holds (on disk or in memory): a
    request naming one more gets :class:`SessionLimitError` (None: no cap).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        sessions_dir: str | Path | None = None,
        session_config: SessionConfig | None = None,
        max_resident: int | None = DEFAULT_MAX_RESIDENT,
        max_sessions: int | None = None,
    ) -> None:
        if max_resident is not None and max_resident < 1:
            raise ValueError(f"max_resident must be >= 1 or None, got {max_resident}")
        if max_sessions is not None and max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1 or None, got {max_sessions}")
        self.max_sessions = max_sessions
        self._saved: set[str] | None = None  # names with files (listed once, then kept up)
        self.engine = engine
        self.sessions_dir = Path(sessions_dir) if sessions_dir is not None else None
        self.session_config = session_config
        self.max_resident = max_resident
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._clean: set[str] = set()  # resident sessions unchanged since save() wrote them
        self._locks = SessionLocks()  # one per session in use, dropped when released
        self._guard = threading.Lock()  # guards _sessions, _clean and _schema_warnings
        self._schema_warnings: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        # how call arguments are steered while decoded (copying stated values): a
        # CallSteering; CallSteering(copy_bonus=0) leaves them to the grammar and the model
        self.call_steering = CallSteering()
        # a user line after each run of tool results (None: no line). Without it the answer
        # copied the result back: Qwen2.5-Coder-0.5B in a ```json fence in 12 of 12 stateless
        # cases of bench/after_result.py (with results shown as its template shows them, a
        # fenced copy of its own call); with it 9 of 12 answer in words, 1 repeats a
        # plain-text result, none copies (SmolLM2-135M: 2 copies -> 0, words 6 -> 6 stateless,
        # 4 -> 7 in a session); see docs/benchmarks/after_result.md
        self.answer_cue: str | None = _ANSWER_CUE

    @classmethod
    def load(cls, model: str | None = None, **kwargs: Any) -> LocalBackend:
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        weights = kwargs.pop("weights", None)
        return cls(Engine.load(model, device=device, dtype=dtype, weights=weights), **kwargs)

    @property
    def name(self) -> str:
        return self.engine.name

    @functools.cached_property
    def dialect(self) -> ToolDialect:
        """How this model is shown tools and writes calls (from its chat template)."""
        return tool_dialect(self.engine.codec)

    @functools.cached_property
    def tool_selector(self) -> ToolSelector | None:
        """The call-or-answer decision and tool retrieval for ``tool_choice="auto"`` (and for
        ``"required"`` over many tools), on the offline embedder; assign ``None`` to leave the
        choice to the model alone (see :mod:`agentcore.tools._decision`)."""
        from agentcore.memory import embed_texts

        return ToolSelector(lambda texts: embed_texts(list(texts), device="cpu"))

    def _tools_prompt(
        self, entries: Sequence[Mapping[str, Any]], declared: Sequence[Any], tool_choice: ToolChoice
    ) -> str:
        """The tools part of the system prompt: the model's own template text for the tools this
        turn permits when its template renders tools, else the project's prompt."""

        permitted = {t.name for t in resolve_action_space(declared, tool_choice).tools}
        if not permitted:
            return ""
        native = self.dialect.tools_section(
            [e for e, t in zip(entries, declared, strict=True) if t.name in permitted]
        )
        if native is not None:
            return native
        return render_tools_prompt(declared, tool_choice, call_format=self.dialect.call_format)

    def _grammar_constraint(self, grammar: str) -> GrammarConstraint:
        """A decoding constraint for ``grammar`` on this engine's tokenizer (one per decode:
        it holds the parse state)."""

        codec = self.engine.codec
        return GrammarConstraint.from_grammar(
            codec.hf,
            grammar,
            vocab_size=self.engine.core.dims.vocab,
            eos_token_ids=sorted(codec.stop_ids),
        )

    def _argument_bias(
        self,
        declared: Sequence[Any],
        messages: Sequence[Message],
        steps: Sequence[tuple[str, str]] = (),
    ) -> Any:
        """The sampler wrapper that steers call arguments toward what ``messages`` state (the
        user's words and tool results), or None (no tools, or :attr:`call_steering` off).
        ``steps``: (tool, clause) per call of an answer of several calls, one per clause of
        the request: each call is steered by its own clause (:class:`StepBias`)."""
        steering = self.call_steering
        if not declared or not (steering.copy_bonus or steering.optional_support):
            return None
        said = [m for m in messages if isinstance(m.get("content"), str)]
        # in the conversation's order: a number key reads the latest message that states one
        sources = [str(m["content"]) for m in said if m.get("role") in ("user", "tool")]
        results = [str(m["content"]) for m in said if m.get("role") == "tool"]
        asked = [str(m["content"]) for m in said if m.get("role") == "user"]
        codec = self.engine.codec
        pieces = token_pieces(codec.hf, sorted(codec.stop_ids))

        def bias(
            stated: Sequence[str], requests: Sequence[str], how: CallSteering = steering
        ) -> ArgumentBias:
            return ArgumentBias(
                None,
                stated,
                pieces,
                how,
                arguments_key=self.dialect.call_format.arguments_key,
                schemas={t.name: t.parameters for t in declared},
                words=re.findall(r"\w+", " ".join(requests)),
                descriptions={t.name: t.description for t in declared},
            )

        if len(steps) > 1:
            # from a value's first token, as strongly as a shaped value: a span of its own
            # clause (left to choose, SmolLM2-135M gave both calls the latest clause's title;
            # with the usual bonus from the first token it invented one)
            own = dataclasses.replace(
                steering, copy_from_start=True, copy_bonus=steering.shape_bonus
            )
            return StepBias([bias([*results, clause], [clause], own) for _, clause in steps])
        return bias(sources, asked)

    def _call_constraint(self, grammar: str, max_calls: int) -> Any:
        """The constraint of an answer that may call tools: the action grammar, and when it
        allows several calls, the answer ends at the first call repeating an earlier one."""
        constraint = self._grammar_constraint(grammar)
        return DistinctCalls(constraint) if max_calls > 1 else constraint

    def _with_tools_prompt(
        self,
        s: Session,
        msgs: list[Message],
        entries: Sequence[Mapping[str, Any]],
        declared: Sequence[Any],
        tool_choice: ToolChoice,
    ) -> list[Message]:
        """``msgs`` with the tools section added to their system message, unless the session
        holds that section already (a session shows it once, then only when it changes)."""
        prompt = self._tools_prompt(entries, declared, tool_choice)
        if not prompt or s.meta.get("tools_prompt") == prompt:
            return msgs
        first = s.n_tokens == 0  # the template's default system line, if it has one
        s.meta["tools_prompt"] = prompt
        return _with_system(msgs, prompt, self.dialect.default_system if first else "")

    @property
    def codec(self) -> Codec:
        """The tokenizer of the engine's model (names the tokens of ``logprobs``)."""
        return self.engine.codec

    def model_details(self) -> dict[str, Any]:
        """Device, dtype and sizes of the running model (the server's model card)."""
        info = self.engine.info()
        return {
            "device": info.device,
            "dtype": info.dtype,
            "layers": info.n_layers,
            "vocab": info.vocab,
            "cache_tokens": self.engine.default_streaming().budget,
        }

    # ------------------------------------------------------------------ sessions
    def _path(self, sid: str) -> Path | None:
        return self.sessions_dir / f"{validate_name(sid)}.session" if self.sessions_dir else None

    def lock(self, sid: str) -> AbstractContextManager[None]:
        """Hold the lock that serialises requests to one session (``with backend.lock(sid):``)."""
        return self._locks.hold(sid)

    def get_session(self, sid: str | None) -> Session:
        """The named session (restored from disk or created), or a fresh stateless one."""
        if sid is None:
            return self.engine.new_session(self.session_config)
        validate_name(sid)
        with self._guard:
            self._clean.discard(sid)  # the caller may change it
            existing = self._sessions.get(sid)
            if existing is not None:
                self._sessions.move_to_end(sid)
                return existing
        path = self._path(sid)
        if path is not None and path.exists():
            session = self.engine.restore_session(path)
        else:
            self._check_room(sid)
            session = self.engine.new_session(self.session_config)
            session.id = sid
        with self._guard:
            session = self._sessions.setdefault(sid, session)
        self._offload(keep=sid)
        return session

    def _check_room(self, sid: str) -> None:
        """Refuse a new session beyond ``max_sessions`` (counted from a listing made once)."""
        if self.max_sessions is None or self.sessions_dir is None:
            return
        with self._guard:
            if self._saved is None:
                self._saved = {
                    p.name[: -len(".session")] for p in self.sessions_dir.glob("*.session")
                }
            held = len(self._saved | set(self._sessions) - {sid})
        if held >= self.max_sessions:
            raise SessionLimitError(self.max_sessions, held)

    def _note_saved(self, sid: str, saved: bool) -> None:
        with self._guard:
            if self._saved is not None:
                if saved:
                    self._saved.add(sid)
                else:
                    self._saved.discard(sid)

    def resident_sessions(self) -> list[str]:
        """Sessions held in memory now, least recently used first."""
        with self._guard:
            return list(self._sessions)

    def _offload(self, keep: str) -> None:
        """Save and let go of the least recently used idle sessions beyond ``max_resident``.

        Runs with ``keep``'s lock held; a session whose lock another request holds is in use
        and stays (the next session opened tries again), so no lock is ever waited for here.
        """
        if self.sessions_dir is None or self.max_resident is None:
            return
        with self._guard:
            excess = len(self._sessions) - self.max_resident
            oldest = [sid for sid in self._sessions if sid != keep]
        for sid in oldest:
            if excess <= 0:
                return
            with self._locks.hold_if_free(sid) as free:
                if free and self._offload_one(sid):
                    excess -= 1

    def _offload_one(self, sid: str) -> bool:
        """Save one idle session (its lock held) and let it go; False when it is gone already."""
        with self._guard:
            session = self._sessions.get(sid)
            clean = sid in self._clean
        if session is None:  # deleted meanwhile
            return False
        path = self._path(sid)
        assert path is not None
        if not clean:
            session.save(path)  # atomic: a kill here leaves the previous file whole
            self._note_saved(sid, True)
        with self._guard:
            del self._sessions[sid]
            self._clean.discard(sid)
        session.close()
        return True

    def list_sessions(self) -> list[str]:
        with self._guard:
            names = set(self._sessions)
        if self.sessions_dir is not None and self.sessions_dir.exists():
            names |= {p.name[: -len(".session")] for p in self.sessions_dir.glob("*.session")}
        return sorted(names)

    def session_info(self, session: str) -> dict[str, Any] | None:
        path = self._path(session)
        with self._guard:
            resident = session in self._sessions
        if not resident and not (path is not None and path.exists()):
            return None
        with self.lock(session):
            return self.get_session(session).stats()

    def delete_session(self, session: str) -> bool:
        with self.lock(session):
            with self._guard:
                resident = self._sessions.pop(session, None)
                self._clean.discard(session)
            found = resident is not None
            if resident is not None:
                resident.close()
            path = self._path(session)
            if path is not None and path.exists():
                for part in session_files(path):  # the base first: no half session remains
                    part.unlink(missing_ok=True)
                self._note_saved(session, False)
                found = True
                recall = path.parent / f"{path.name}.recall"
                if recall.is_dir():
                    import shutil

                    shutil.rmtree(recall, ignore_errors=True)
            return found

    def save(self, sid: str) -> None:
        path = self._path(sid)
        with self._guard:
            session = self._sessions.get(sid)
        if path is not None and session is not None:
            session.save(path)
            self._note_saved(sid, True)
            with self._guard:
                self._clean.add(sid)

    # ------------------------------------------------------------------ generation
    def complete(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """One assistant turn (see :class:`ModelBackend`). ``request.logprobs=k`` (this backend
        is a :class:`Scorer`) records each generated token's log-probability and its ``k`` best
        alternatives."""
        turn = _Turn(request, on_token, should_stop)
        session = request.session
        if session is None:
            with self.get_session(None) as s:  # stateless: its recall folder goes with it
                return self._chat(s, None, turn)
        with self.lock(session):
            s = self.get_session(session)
            result = self._chat(s, session, turn)
            self.save(session)
            return result

    def _chat(self, s: Session, sid: str | None, turn: _Turn) -> Completion:
        request = turn.request
        messages = request.messages
        tools, tool_choice, json_schema = request.tools, request.tool_choice, request.json_schema
        ledger = _ledger(s)
        fresh = (
            continuation(ledger, messages, session=sid, history=lambda: _raw_history(s))
            if sid is not None
            else [dict(m) for m in messages]
        )
        # what the decision and the argument steering read: the conversation so far. A session
        # continued with only the new messages (the Agent sends a tool result alone) still has
        # the request those messages answer in its ledger's recent messages.
        context = [*ledger.tail, *fresh] if sid is not None else list(messages)
        dialect = self.dialect
        msgs = normalize_messages(
            fresh,
            native=dialect.native,
            call_names=_call_names(messages, ledger),
            cue=self.answer_cue,
        )
        constraint = None
        grammar: str | None = None  # the action grammar, when a call may be decoded
        declared: list[Any] = []
        codec = self.engine.codec
        hf_tok = codec.hf
        vocab = self.engine.core.dims.vocab
        # the tools the system prompt shows, under the request's own tool_choice: the same for
        # every turn of a conversation, so a stateless request renders what a session holds
        shown, shown_choice = tools, tool_choice
        decides = tools and json_schema is None and tool_choice in ("auto", "required")
        selector = self.tool_selector if decides else None
        max_calls = 1  # calls one answer may hold: one per clause of the request that asks
        steps: tuple[tuple[str, str], ...] = ()  # (tool, clause) per call, when several
        if selector is not None and tools:  # the decision: a call among a few tools, or text
            if hf_tok is None:
                raise ValueError("constrained tool calls need a Hugging Face tokenizer")
            self._check_tool_schemas(tools, tools_from_openai(tools))  # every tool, offered or not
            tools, tool_choice, decision = selector.narrow(context, tools, tool_choice)
            if decision is not None:
                log.debug("tool decision: %s", decision.reason)
                if request.parallel_tool_calls:  # else one call, the model's pick
                    max_calls = max(1, decision.calls)
                    steps = decision.steps
            if shown and len(shown) > selector.config.many:  # many: the few retrieved ones
                shown = tools if tool_choice != "none" else None
        # after a tool result the reply opens with words: small models copy the result back
        after_result = bool(messages) and messages[-1].get("role") == "tool"
        if tools and tool_choice != "none":
            declared = tools_from_openai(tools)
            if hf_tok is None:
                raise ValueError("constrained tool calls need a Hugging Face tokenizer")
            self._check_tool_schemas(tools, declared)
            dialect_args: dict[str, Any] = {
                "call_format": dialect.call_format,
                # several calls only where the request asks for several things: left free,
                # small models repeat a call (DistinctCalls ends the answer at a repeat)
                "parallel": max_calls > 1,
                "max_calls": max_calls,
                "marker_tokens": dialect.marker_tokens,
                "after_result": after_result,
                # one call per clause that asks for one, each of its clause's tool
                "sequence": tuple(tool for tool, _ in steps),
            }
            if json_schema is not None and tool_choice == "auto":
                # response_format shapes the text alternative: a reply is JSON or a call
                grammar = _with_json_text(
                    build_action_grammar(declared, "required", **dialect_args), json_schema
                )
            else:  # a forced call leaves no text for response_format to shape
                grammar = build_action_grammar(declared, tool_choice, **dialect_args)
            constraint = self._call_constraint(grammar, max_calls)
        elif json_schema is not None:
            if hf_tok is None:
                raise ValueError("JSON Schema output needs a Hugging Face tokenizer")
            constraint = GrammarConstraint.from_json_schema(
                hf_tok, dict(json_schema), vocab_size=vocab, eos_token_ids=sorted(codec.stop_ids)
            )
        elif hf_tok is not None and (after_result or shown or s.meta.get("tools_prompt")):
            # a text answer: it never starts a call and opens with words (the prompt may list
            # tools, as a session's does after its first call; also under tool_choice "none":
            # the Agent's answers to questions, where Qwen2.5-0.5B wrote call-shaped JSON as
            # its reply)
            text_only = build_action_grammar(
                [],
                "none",
                call_format=dialect.call_format,
                after_result=after_result,
                words_first=True,
            )
            constraint = self._grammar_constraint(text_only)
        if shown and shown_choice != "none":
            msgs = self._with_tools_prompt(s, msgs, shown, tools_from_openai(shown), shown_choice)
        before = s.n_tokens
        s.append_messages(msgs, add_generation_prompt=True)
        call_format = dialect.call_format if declared else None
        # the grammar let a call take its alternate shapes only beside free text
        shapes = dialect.call_format
        if tool_choice != "auto" or json_schema is not None:
            shapes = dataclasses.replace(shapes, alternates=())
        result, records = _generate(
            s, turn, constraint, call_format, self._argument_bias(declared, context, steps)
        )
        text, found, finish = _read_calls(result, declared, shapes)
        generated = len(result.token_ids)
        invalid = _invalid_call(found, declared)
        retries = 0
        if invalid is not None and grammar is not None:
            # one retry: the validation error goes back to the model as the call's result
            name, error = invalid
            log.info("tool call %r has invalid arguments; asking the model once more", name)
            note = normalize_messages(
                [{"role": "tool", "name": name, "content": error}], native=dialect.native
            )
            s.append_messages(note, add_generation_prompt=True)
            again = self._call_constraint(grammar, max_calls)  # a fresh parse state
            result, records = _generate(
                s, turn, again, call_format, self._argument_bias(declared, context, steps)
            )
            text, found, finish = _read_calls(result, declared, shapes)
            generated += len(result.token_ids)
            retries = 1
        prompt_tokens = s.n_tokens - before - generated
        calls: tuple[ToolCallOut, ...] = ()
        if found:
            # session calls get ids from their stream position (reproducible transcripts)
            calls = tuple(
                ToolCallOut(
                    f"call_{s.n_tokens:x}" + (f"_{i}" if i else "")
                    if sid
                    else f"call_{uuid.uuid4().hex[:16]}",
                    call.name,
                    dict(call.arguments),
                )
                for i, call in enumerate(found)
            )
        completion = Completion(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=Usage(prompt_tokens, generated, s.n_tokens if sid else 0),
            session=sid,
            logprobs=tuple(lp for lp, _ in records),
            token_ids=result.token_ids,
            top_logprobs=tuple(tuple(top) for _, top in records),
            argument_retries=retries,
        )
        turn_messages = [*fresh, completion.message()]
        ledger.add(turn_messages)
        s.meta["ledger"] = ledger.to_json()
        if sid is not None:
            s.record("raw", turn_messages)
        return completion

    def _check_tool_schemas(
        self, entries: Sequence[Mapping[str, Any]], declared: Sequence[Any]
    ) -> None:
        """What the grammar cannot enforce of each tool's parameters (keywords it ignores,
        unknown formats): refused for a tool declared ``"strict": true`` (as OpenAI refuses
        such schemas), logged (once per schema) for the others, whose calls the decoder then
        only approximates.
        """
        for i, (entry, tool) in enumerate(zip(entries, declared, strict=True)):
            warnings, fresh = self._grammar_warnings(i, tool)
            if not warnings:
                continue
            what = "; ".join(warnings)
            if entry.get("function", {}).get("strict") is True:
                raise ToolDeclarationError(
                    i,
                    tool.name,
                    f"the tool is strict, but its parameters use JSON Schema that constrained "
                    f"decoding cannot enforce ({what}); remove those keywords or set strict to "
                    "false",
                    ".function.parameters",
                )
            if fresh:
                log.warning(
                    "tool %r: decoding ignores part of its parameters' schema: %s", tool.name, what
                )

    def _grammar_warnings(self, index: int, tool: Any) -> tuple[tuple[str, ...], bool]:
        """llguidance's warnings for one tool's argument schema, and whether they are new
        (they are remembered per schema)."""

        schema = arguments_grammar_schema(tool)
        key = json.dumps(schema, sort_keys=True)
        with self._guard:
            if key in self._schema_warnings:
                self._schema_warnings.move_to_end(key)
                return self._schema_warnings[key], False
        codec = self.engine.codec
        try:
            c = GrammarConstraint.from_json_schema(
                codec.hf,
                schema,
                vocab_size=self.engine.core.dims.vocab,
                eos_token_ids=sorted(codec.stop_ids),
            )
        except GrammarError as exc:
            raise ToolDeclarationError(
                index, tool.name, f"its parameters cannot be decoded: {exc}", ".function.parameters"
            ) from None
        warnings = tuple(c.grammar_warnings)
        with self._guard:
            self._schema_warnings[key] = warnings
            while len(self._schema_warnings) > _SCHEMA_CHECKS_KEPT:
                self._schema_warnings.popitem(last=False)
        return warnings, True


def _ledger(s: Session) -> Ledger:
    """The session's :class:`Ledger` (built once from the whole list sessions saved before
    kept in their meta, which then moves to the history)."""
    saved = s.meta.get("ledger")
    if saved is not None:
        return Ledger.from_json(saved)
    ledger = Ledger()
    legacy = s.meta.pop("raw_messages", None)
    if legacy:
        ledger.add(legacy)
        s.record("raw", legacy)
    return ledger


def _read_calls(
    result: GenerationResult, declared: Sequence[Any], shapes: CallFormat
) -> tuple[str, list[Any], str]:
    """(reply text, calls, finish reason) of a reply decoded under the action grammar of
    ``declared`` tools (no tools: the text as generated)."""
    text, finish = result.text, result.finish_reason
    if not declared:
        return text, [], finish

    try:
        found = parse_calls(text, shapes)
    except ToolCallParseError:
        if finish not in ("length", "cancelled"):
            raise  # the grammar makes a finished call parse: this is a bug, not input
        found = []
    if finish in ("length", "cancelled") and not _outside_tool_call(text, shapes):
        # a call cut off by max_tokens: its markup is never shown (the grammar lets nothing
        # but calls into this answer, so no text remains); the calls completed before it stay
        return "", distinct(_completed(text, shapes)), finish
    if found:
        return "", distinct(found), "tool_calls"
    return text, [], finish


def _completed(text: str, shapes: CallFormat) -> list[Any]:
    """The calls of an answer cut off by ``max_tokens`` that were complete before the cut."""
    close = shapes.call_close.strip()
    end = text.rfind(close) if close else -1
    if end < 0:
        return []
    try:
        return parse_calls(text[: end + len(close)], shapes)
    except ToolCallParseError:
        return []


def _invalid_call(found: Sequence[Any], declared: Sequence[Any]) -> tuple[str, str] | None:
    """(tool name, the validation error the model reads) of the first call whose arguments its
    tool's schema refuses (rules the grammar cannot enforce: formats, ``uniqueItems``, ``not``,
    look-around patterns), or None."""

    by_name = {t.name: t for t in declared}
    for call in found:
        tool = by_name.get(call.name)
        if tool is None:
            continue
        try:
            tool.validate(dict(call.arguments))
        except ToolArgumentError as exc:
            return call.name, str(exc)
    return None


def _call_names(messages: Sequence[Message], ledger: Ledger) -> dict[str, str]:
    """Tool call id -> tool name, for the calls of the request's messages and of the recent
    turns the session holds (a tool result that continues a session names only the id)."""
    names: dict[str, str] = {}
    for m in [*ledger.tail, *messages]:
        if m.get("role") != "assistant":
            continue
        for call in m.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping) and call.get("id") is not None:
                names[str(call["id"])] = str(fn.get("name"))
    return names


def _raw_history(s: Session) -> Iterator[Message]:
    """Every request message and reply of the session, oldest first (reads its history)."""
    for batch in s.history("raw"):
        yield from batch


def _generate(
    s: Session,
    turn: _Turn,
    constraint: Any,
    call_format: CallFormat | None,
    bias: ArgumentBias | None = None,
) -> tuple[GenerationResult, list[tuple[float, list[tuple[int, float]]]]]:
    """Decode the reply; with ``turn.logprobs``, also (log-probability, best alternatives) per
    generated token (of the model's own logits, before ``bias``). Penalties never apply inside
    a tool call (of ``call_format``, when tools are offered)."""
    on_token = turn.on_token
    with copying(s, bias), recording(s, turn.request.logprobs) as records:
        result = s.generate(
            turn.request.params,
            constraint=constraint,
            on_token=(lambda ev: on_token(ev.text)) if on_token else None,
            should_stop=turn.should_stop,
            penalize=(
                functools.partial(_outside_tool_call, call_format=call_format)
                if call_format is not None
                else None
            ),
        )
    return result, records


@dataclasses.dataclass(frozen=True)
class _Turn:
    """One request and the callbacks of the call that generates it."""

    request: ChatRequest
    on_token: Callable[[str], None] | None
    should_stop: Callable[[], bool] | None


def _outside_tool_call(text: str, call_format: CallFormat = HERMES) -> bool:
    """Whether a reply under the action grammar is free text so far (the repetition penalty
    applies) rather than a tool call, or the start of one, whose JSON must repeat quotes and
    digits freely. Reads only the reply's head (called at every token: O(1) in its length)."""
    trigger = call_format.trigger
    start = _LEADING_SPACE.match(text).end()  # type: ignore[union-attr]
    head = text[start : start + len(trigger) + 1]
    return not (trigger.startswith(head) or head.startswith(trigger))


def _with_json_text(calls_grammar: str, schema: Mapping[str, Any]) -> str:
    """An action grammar with only call alternatives (``start: call_0 | ...``), plus a text
    alternative that is one JSON value valid under ``schema`` (laid out compactly)."""

    head, _, rules = calls_grammar.partition("\n")
    if not head.startswith("start: "):
        raise RuntimeError(f"unexpected action grammar start rule: {head!r}")
    layout = {**COMPACT_JSON, **schema.get("x-guidance", {})}
    body = json.dumps({**schema, "x-guidance": layout}, ensure_ascii=False)
    return f"start: json_text | {head[len('start: ') :]}\njson_text: %json {body}\n{rules}"


def _with_system(msgs: list[Message], text: str, default_system: str = "") -> list[Message]:
    """``text`` added to the turn's system message (a new one, after ``default_system``, when
    the turn has none)."""
    if msgs and msgs[0]["role"] == "system":
        return [{"role": "system", "content": f"{msgs[0]['content']}\n\n{text}"}, *msgs[1:]]
    content = f"{default_system}\n\n{text}" if default_system else text
    return [{"role": "system", "content": content}, *msgs]
