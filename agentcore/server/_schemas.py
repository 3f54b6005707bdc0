"""The request bodies the server accepts, as pydantic models (OpenAI wire format).

Owns the shape and the value ranges of ``POST /v1/chat/completions``, ``POST /v1/completions``
and ``POST /v1/sessions`` bodies. Fields the server reads are strict (a string is not a number),
so a malformed value fails here with the field, the value and what was expected. Fields it does
not know (``store``, ``metadata``, ``service_tier``, ``cache_control`` on a content part, ...)
are ignored at any depth and logged once per name, as OpenAI-compatible servers do; an explicit
``null`` on an optional field means its default. Fields OpenAI defines that this server cannot
honour are accepted only at their neutral value (``n=1``, no ``logit_bias``) and refused
otherwise, never ignored; a refusal raised across fields names its parameter
(:class:`ParamError`). A body is a ``...Body`` (:class:`ChatCompletionBody`,
:class:`CompletionBody`); what the server then asks of the backend is a
:class:`~agentcore.backends.ChatRequest`. Never runs a model and never builds responses.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from agentcore.paths import validate_name

__all__ = [
    "ChatCompletionBody",
    "ChatMessage",
    "CompletionBody",
    "FunctionDef",
    "JsonSchemaFormat",
    "NamedToolChoice",
    "ParamError",
    "SessionCreate",
    "StreamOptions",
    "ToolDef",
]

log = logging.getLogger("agentcore.server")

_CONFIG = ConfigDict(extra="allow", strict=True, populate_by_name=True)
_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # OpenAI's rule for function names
_SEED_MIN, _SEED_MAX = -(2**63), 2**63 - 1  # OpenAI: any 64-bit integer
_PENALTY = Field(ge=-2, le=2)  # OpenAI's range for presence/frequency penalties


class ParamError(ValueError):
    """A request value refused by a check across fields; ``param`` is the field to blame."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class _UnknownFields:
    """The unknown field names already logged (each is logged once per process)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def note(self, where: str, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            log.warning("ignoring the unknown request field %r (in %s)", name, where)


UNKNOWN_FIELDS = _UnknownFields()


def _check_session(value: str | None) -> str | None:
    if value is not None:
        validate_name(value)
    return value


class _Strict(BaseModel):
    """Known fields strict; unknown ones dropped (logged); null on an optional one: default."""

    model_config = _CONFIG

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong type
        fields = dict(cls.model_fields)
        fields.update({f.alias: f for f in cls.model_fields.values() if f.alias})
        return {
            key: value
            for key, value in data.items()
            if value is not None or key not in fields or fields[key].is_required()
        }

    @model_validator(mode="after")
    def _drop_unknown(self) -> Any:
        # logged only once the object is valid: a union branch tried and refused says nothing
        extra = self.__pydantic_extra__
        if extra:
            for name in extra:
                UNKNOWN_FIELDS.note(type(self).__name__, str(name))
            extra.clear()
        return self


class TextPart(_Strict):
    """One content part; only text parts are understood by a text model."""

    type: Literal["text"]
    text: str


class FunctionCallIn(_Strict):
    name: str
    arguments: str | dict[str, Any] = "{}"


class ToolCallIn(_Strict):
    """A tool call of an earlier assistant turn, as clients send it back."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    # what the openai client echoes back when a response message object is resent
    refusal: str | None = None
    annotations: list[Any] | None = None
    audio: dict[str, Any] | None = None
    reasoning_content: str | None = None
    function_call: FunctionCallIn | None = None  # legacy form of one tool call

    @model_validator(mode="after")
    def _fields_fit_role(self) -> ChatMessage:
        if self.function_call is not None and not self.tool_calls and self.role == "assistant":
            call = ToolCallIn(id=f"call_{self.function_call.name}", function=self.function_call)
            self.tool_calls = [call]
        if self.role == "function":  # legacy: a function's result, named by the function
            self.role = "tool"
        if self.tool_calls and self.role != "assistant":
            raise ParamError(
                "tool_calls", f"tool_calls are only allowed on assistant messages, not {self.role}"
            )
        if self.role == "tool" and self.content is None:
            raise ParamError("content", "a tool message needs content (the tool's result)")
        return self

    def wire(self) -> dict[str, Any]:
        """The message as the backends read it, in the shape backends record their own replies
        (tool-call arguments as objects, no content beside tool calls), so a client resending
        the conversation is recognised as continuing the session."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if isinstance(self.content, list):
            out["content"] = "".join(p.text for p in self.content)
        if self.tool_calls and not out["content"]:
            out["content"] = None
        if self.name is not None:
            out["name"] = self.name
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": _arguments(c.function)},
                }
                for c in self.tool_calls
            ]
        return out


def _arguments(fn: FunctionCallIn) -> str | dict[str, Any]:
    if isinstance(fn.arguments, dict):
        return fn.arguments
    try:
        value = json.loads(fn.arguments) if fn.arguments.strip() else {}
    except json.JSONDecodeError:
        return fn.arguments  # the backend reports the bad JSON with the message's position
    return value if isinstance(value, dict) else fn.arguments


class FunctionDef(_Strict):
    name: Annotated[str, Field(pattern=_NAME_PATTERN)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(_Strict):
    type: Literal["function"] = "function"
    function: FunctionDef


class FunctionName(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"] = "function"
    function: FunctionName


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaSpec(_Strict):
    name: Annotated[str, Field(pattern=_NAME_PATTERN)] = "output"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class StreamOptions(_Strict):
    include_usage: bool = False


class _Sampling(_Strict):
    """Fields both endpoints share."""

    model: str | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None  # 0: greedy
    top_k: Annotated[int, Field(ge=0)] | None = None  # vLLM-style extra
    repetition_penalty: Annotated[float, Field(gt=0, le=10)] | None = None  # vLLM-style extra
    repetition_scope: Literal["context", "reply"] | None = None  # agentcore extra
    penalize_digits: bool | None = None  # agentcore extra: False keeps digits out of penalties
    stop: str | list[str] | None = None
    seed: Annotated[int, Field(ge=_SEED_MIN, le=_SEED_MAX)] | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: Annotated[float, _PENALTY] | None = None
    frequency_penalty: Annotated[float, _PENALTY] | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    ignore_eos: bool = False  # vLLM-style extra: generate exactly max_tokens
    stop_token_ids: list[Annotated[int, Field(ge=0)]] | None = None  # vLLM-style extra
    session: str | None = None  # agentcore extra: append to this persistent session
    session_reset: bool = False  # agentcore extra: start the session over before this request

    @field_validator("session")
    @classmethod
    def _valid_session(cls, value: str | None) -> str | None:
        return _check_session(value)

    @model_validator(mode="after")
    def _reset_names_a_session(self) -> _Sampling:
        if self.session_reset and self.session is None:
            raise ParamError(
                "session_reset", 'session_reset needs a session to start over (add "session")'
            )
        return self

    @model_validator(mode="after")
    def _neutral_only(self) -> _Sampling:
        unsupported = {
            "n": (self.n, 1, "send one request per choice"),
            "logit_bias": (self.logit_bias or None, None, "leave it out"),
        }
        for name, (value, neutral, hint) in unsupported.items():
            if value is not None and value != neutral:
                raise ParamError(
                    name,
                    f"{name}={value!r} is not supported by this server (only {neutral!r}); {hint}",
                )
        return self

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        for i, s in enumerate(stops):
            if not s:
                raise ValueError(f"stop[{i}] is an empty string; stop strings must be non-empty")
        return stops


class ChatCompletionBody(_Sampling):
    """``POST /v1/chat/completions``.

    The legacy ``functions`` / ``function_call`` fields are read as ``tools`` / ``tool_choice``
    when those are not given (and the reply then speaks the legacy shape: ``function_call``).
    """

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    functions: list[FunctionDef] | None = None
    function_call: Literal["auto", "none"] | FunctionName | None = None
    _legacy: bool = PrivateAttr(default=False)  # the tools came as legacy functions

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionBody:
        self._read_legacy_functions()
        if self.top_logprobs and not self.logprobs:
            raise ParamError(
                "top_logprobs", f"top_logprobs={self.top_logprobs} needs logprobs=true"
            )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ParamError(
                "max_tokens", f"max_tokens={self.max_tokens}: a chat reply needs max_tokens >= 1"
            )
        if self.tool_choice is not None and self.tool_choice != "none" and not self.tools:
            raise ParamError(
                "tool_choice", f"tool_choice={self._choice_text()} needs a non-empty tools list"
            )
        if isinstance(self.tool_choice, NamedToolChoice) and self.tools:
            names = [t.function.name for t in self.tools]
            if self.tool_choice.function.name not in names:
                raise ParamError(
                    "tool_choice",
                    f"tool_choice names {self.tool_choice.function.name!r}, which is not one of "
                    f"the tools given ({', '.join(names)})",
                )
        if self.tools:
            seen: set[str] = set()
            for i, t in enumerate(self.tools):
                if t.function.name in seen:
                    raise ParamError(
                        f"tools[{i}].function.name", f"the name {t.function.name!r} appears twice"
                    )
                seen.add(t.function.name)
        return self

    def _read_legacy_functions(self) -> None:
        if self.functions is not None and self.tools is None:
            self.tools = [ToolDef(function=f) for f in self.functions]
            self._legacy = True
        fc = self.function_call
        if fc is not None and self.tool_choice is None:
            self.tool_choice = (
                fc if isinstance(fc, str) else NamedToolChoice(function=FunctionName(name=fc.name))
            )

    def _choice_text(self) -> str:
        c = self.tool_choice
        return repr(c) if isinstance(c, str) else f"{{'function': {{'name': {c.function.name!r}}}}}"  # type: ignore[union-attr]

    def requested_max_tokens(self) -> int | None:
        return (
            self.max_completion_tokens
            if self.max_completion_tokens is not None
            else self.max_tokens
        )

    @property
    def legacy_functions(self) -> bool:
        """Whether the reply should speak the legacy ``function_call`` shape."""
        return self._legacy

    def logprobs_wanted(self) -> int | None:
        """None: no log-probabilities; k: each token's and its k best alternatives."""
        return (self.top_logprobs or 0) if self.logprobs else None

    def tool_choice_value(self) -> Any:
        c = self.tool_choice
        if c is None:
            return "auto"
        if isinstance(c, NamedToolChoice):
            return {"type": "function", "function": {"name": c.function.name}}
        return c

    def json_schema(self) -> dict[str, Any] | None:
        fmt = self.response_format
        if isinstance(fmt, JsonObjectFormat):
            return {"type": "object"}
        if isinstance(fmt, JsonSchemaFormat):
            return dict(fmt.json_schema.schema_ or {"type": "object"})
        return None


class CompletionBody(_Sampling):
    """``POST /v1/completions`` (text in, text out; ``echo`` + ``logprobs`` score text)."""

    prompt: str | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | list[str]
    echo: bool = False
    logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    suffix: str | None = None
    best_of: int | None = None

    @model_validator(mode="after")
    def _supported(self) -> CompletionBody:
        if self.suffix:
            raise ParamError(
                "suffix", "suffix (fill-in-the-middle) is not supported by this server"
            )
        if self.best_of not in (None, 1):
            raise ParamError(
                "best_of", f"best_of={self.best_of!r} is not supported by this server (only 1)"
            )
        if self.stream and self.logprobs is not None:
            raise ParamError(
                "logprobs", "logprobs are returned only without stream; set stream=false"
            )
        return self

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        if isinstance(value, list) and value and isinstance(value[0], str):
            if len(value) != 1:
                raise ValueError(
                    f"got {len(value)} prompts; this server completes one prompt per request"
                )
            return value[0]
        return value


class SessionCreate(_Strict):
    """``POST /v1/sessions``: create an empty session (``id`` generated when absent)."""

    id: str | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return _check_session(value)
