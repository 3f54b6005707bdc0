"""The ``POST /v1/responses`` request body (OpenAI's Responses API), as pydantic models.

Owns the shape and value ranges of a Responses request: ``input`` as a string or a list of
input items (``message`` with ``input_text`` / ``output_text`` parts, ``function_call``,
``function_call_output``), ``instructions``, ``previous_response_id``, ``store``, function
``tools`` in the Responses shape (``{"type": "function", "name", "description",
"parameters", "strict"}``), ``tool_choice``, ``text.format`` and the sampling fields. Every
refusal names the field as the client wrote it (``input[2].call_id``, ``tools[0].name``), and
the item kinds and tool types this text-only server cannot serve (images, files, built-in
tools, reasoning items) are refused by name, never ignored. Unknown fields are dropped and
logged like everywhere in the server (:mod:`~agentcore.server._schemas`). Never runs a model,
never reads the response store and never builds chat messages: ``_responses_api`` does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from agentcore.server._errors import describe_validation_errors
from agentcore.server._schemas import ParamError, _Strict

__all__ = [
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputItem",
    "MessageItem",
    "ResponsesBody",
]

_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # OpenAI's rule for function names
_ITEM_TYPES = "message, function_call, function_call_output"


class ContentPart(_Strict):
    """A text part of a message item (``input_text``; ``output_text`` in resent replies)."""

    type: Literal["input_text", "output_text"]
    text: str


class MessageItem(_Strict):
    """``{"role", "content"}``: a string or a list of text parts (``type`` may be left out)."""

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[dict[str, Any]]
    _parts: list[ContentPart] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _text_parts(self) -> MessageItem:
        if isinstance(self.content, list):
            parts = []
            for j, raw in enumerate(self.content):
                kind = raw.get("type") if isinstance(raw, dict) else None
                if kind not in ("input_text", "output_text"):
                    raise ParamError(
                        f"content[{j}].type",
                        f"a {kind!r} part; this server reads text only (input_text, or "
                        "output_text in a resent reply)",
                    )
                parts.append(_validated(ContentPart, raw, f"content[{j}]"))
            self._parts = parts
        return self

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self._parts or ())


class FunctionCallItem(_Strict):
    """A call the model made earlier, resent as input (what a stateless client does)."""

    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(pattern=_NAME_PATTERN)]
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Strict):
    """The result of a function call, for the call named by ``call_id``."""

    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[dict[str, Any]]
    id: str | None = None
    status: str | None = None

    @model_validator(mode="after")
    def _text_output(self) -> FunctionCallOutputItem:
        if isinstance(self.output, list):
            texts = []
            for j, raw in enumerate(self.output):
                kind = raw.get("type") if isinstance(raw, dict) else None
                if kind != "input_text":
                    raise ParamError(
                        f"output[{j}].type",
                        f"a {kind!r} part; this server reads text only (a string, or "
                        "input_text parts)",
                    )
                texts.append(_validated(ContentPart, raw, f"output[{j}]").text)
            self.output = "".join(texts)
        return self


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem
_ITEM_MODELS: dict[str, type[_Strict]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
}


class FunctionTool(_Strict):
    """A function tool in the Responses shape (flat: no ``function`` wrapper)."""

    type: Literal["function"]
    name: Annotated[str, Field(pattern=_NAME_PATTERN)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def wire(self) -> dict[str, Any]:
        """The tool as the Responses API echoes it back."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters or {"type": "object", "properties": {}},
            "strict": self.strict if self.strict is not None else True,
        }


class FunctionChoice(_Strict):
    type: Literal["function"]
    name: str


class TextFormat(_Strict):
    """``text.format``: plain text, any JSON object, or JSON valid under a schema."""

    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[str, Field(pattern=_NAME_PATTERN)] = "output"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Strict):
    format: TextFormat | None = None


class ResponsesBody(_Strict):
    """``POST /v1/responses``."""

    model: str | None = None
    input: str | Annotated[list[dict[str, Any]], Field(min_length=1)]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    # OpenAI fields this server cannot honour: refused when set, never ignored
    conversation: Any = None
    background: bool = False
    prompt: Any = None
    _items: list[InputItem] = PrivateAttr(default_factory=list)
    _tools: list[FunctionTool] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _supported(self) -> ResponsesBody:
        refused = {
            "conversation": (
                self.conversation is not None,
                "conversations are not served here; chain responses with previous_response_id",
            ),
            "background": (self.background, "background responses are not served here"),
            "prompt": (
                self.prompt is not None,
                "stored prompt templates are not served here; send instructions and input",
            ),
        }
        for name, (set_, why) in refused.items():
            if set_:
                raise ParamError(name, f"{name}: {why}")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> ResponsesBody:
        if isinstance(self.input, str):
            if not self.input:
                raise ParamError("input", "input is an empty string; send the user's text")
            self._items = [MessageItem(role="user", content=self.input)]
        else:
            self._items = [_input_item(i, raw) for i, raw in enumerate(self.input)]
        self._tools = [_tool(i, raw) for i, raw in enumerate(self.tools or ())]
        names = [t.name for t in self._tools]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ParamError(f"tools[{i}].name", f"the name {name!r} appears twice")
        choice = self.tool_choice
        if choice is not None and choice != "none" and not self._tools:
            shown = choice if isinstance(choice, str) else f"function {choice.name!r}"
            raise ParamError("tool_choice", f"tool_choice={shown!r} needs a non-empty tools list")
        if isinstance(choice, FunctionChoice) and choice.name not in names:
            raise ParamError(
                "tool_choice",
                f"tool_choice names {choice.name!r}, which is not one of the tools given "
                f"({', '.join(names)})",
            )
        if self.previous_response_id is not None and not self.store:
            raise ParamError(
                "store",
                "store=false cannot continue a chain: continuing appends to the session that "
                "holds the chain, which keeps it. Send store=true (the default), or send the "
                "whole conversation as input without previous_response_id",
            )
        return self

    @property
    def items(self) -> list[InputItem]:
        """``input`` as typed items (a string input is one user message)."""
        return self._items

    @property
    def function_tools(self) -> list[FunctionTool]:
        return self._tools


def _refusal(path: str, reason: str) -> ParamError:
    """A refusal of the field at ``path`` whose message names it: ``"call_id of input[2]:
    ..."`` (the message opens with the field's own name, so it is not prefixed again)."""
    head, _, last = path.rpartition(".")
    return ParamError(path, f"{last} of {head}: {reason}" if head else f"{path}: {reason}")


def _validated(model: type[Any], raw: Any, where: str) -> Any:
    """``model`` read from ``raw``; a refusal names ``where`` + the field inside it."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        message, param = describe_validation_errors(exc.errors())
        if param is None:
            raise _refusal(where, message) from None
        raise _refusal(f"{where}.{param}", message.removeprefix(f"{param}: ")) from None


def _input_item(i: int, raw: dict[str, Any]) -> InputItem:
    kind = raw.get("type", "message")
    model = _ITEM_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise _refusal(
            f"input[{i}].type", f"a {kind!r} item; this server reads {_ITEM_TYPES} items"
        )
    item: InputItem = _validated(model, raw, f"input[{i}]")
    return item


def _tool(i: int, raw: dict[str, Any]) -> FunctionTool:
    kind = raw.get("type")
    if kind != "function":
        raise _refusal(
            f"tools[{i}].type",
            f"a {kind!r} tool; this server runs function tools only "
            '({"type": "function", "name", "description", "parameters"})',
        )
    if "function" in raw and "name" not in raw:
        raise _refusal(
            f"tools[{i}].name",
            "missing: the tool is in the chat shape ({'function': {...}}); the Responses API "
            'takes it flat: {"type": "function", "name", "description", "parameters"}',
        )
    tool: FunctionTool = _validated(FunctionTool, raw, f"tools[{i}]")
    return tool
