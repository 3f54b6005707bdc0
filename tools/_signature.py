"""Turn a typed Python function signature into a pydantic arguments model, and back into a call.

Owns :class:`FunctionArguments`: one pydantic field per parameter (annotation -> type, default
-> default, docstring -> description), unknown keys rejected, and the bridge that calls the
function with the validated values. Never reads the function body and never runs it except in
:meth:`FunctionArguments.call`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from agentcore.tools._errors import ToolDefinitionError

__all__ = ["FunctionArguments"]


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Tool"


def _has_description(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return any(
            isinstance(meta, FieldInfo) and meta.description for meta in annotation.__metadata__
        )
    return False


def _shadows_model(name: str) -> bool:
    return name.startswith(("_", "model_")) or hasattr(BaseModel, name)


class FunctionArguments:
    """The arguments model of a function, and how to call the function with a validated model.

    ``model`` has one field per parameter; parameter names that would clash with pydantic
    internals (``json``, ``schema``, ``model_x``, ``_x``) are stored under a private field name
    with the parameter name as alias, so the exported schema still shows the real name.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        model_name: str,
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        descriptions = descriptions or {}
        qualname = getattr(fn, "__qualname__", repr(fn))
        try:
            signature = inspect.signature(fn)
            hints = typing.get_type_hints(fn, include_extras=True)
        except NameError as exc:
            raise ToolDefinitionError(
                f"{qualname}: cannot resolve its type annotations ({exc}); types used in a tool "
                "signature must be importable from the function's module (string annotations "
                "cannot see names local to another function)"
            ) from exc
        except (TypeError, ValueError) as exc:
            raise ToolDefinitionError(f"{qualname}: cannot read its signature ({exc})") from exc
        fields: dict[str, Any] = {}
        self._field_to_param: dict[str, str] = {}
        self._positional: list[str] = []
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolDefinitionError(
                    f"{qualname}: parameter {param.name!r} is *args/**kwargs; a tool needs named "
                    "parameters so that its schema can list them"
                )
            if param.name not in hints:
                raise ToolDefinitionError(
                    f"{qualname}: parameter {param.name!r} has no type annotation; add one "
                    "(for example `x: int`) so the tool schema can describe it"
                )
            annotation = hints[param.name]
            default = ... if param.default is inspect.Parameter.empty else param.default
            field_name = (
                f"arg_{param.name.lstrip('_')}_" if _shadows_model(param.name) else param.name
            )
            alias = param.name if field_name != param.name else None
            described = _has_description(annotation) or (
                isinstance(default, FieldInfo) and bool(default.description)
            )
            extra: dict[str, Any] = {}
            if not described and descriptions.get(param.name):
                extra["description"] = descriptions[param.name]
            if alias:
                extra["alias"] = alias
            if extra:  # pydantic merges Annotated metadata with the default's FieldInfo
                annotation = Annotated[annotation, Field(**extra)]
            info = default if isinstance(default, FieldInfo) else Field(default)
            fields[field_name] = (annotation, info)
            self._field_to_param[field_name] = param.name
            if param.kind is param.POSITIONAL_ONLY:
                self._positional.append(field_name)
        try:
            self.model: type[BaseModel] = create_model(
                model_name or _camel(getattr(fn, "__name__", "tool")) + "Arguments",
                __config__=ConfigDict(extra="forbid", populate_by_name=False),
                **fields,
            )
            self.model.model_json_schema()
        except Exception as exc:
            raise ToolDefinitionError(
                f"{qualname}: its parameters cannot be described as JSON Schema ({exc})"
            ) from exc
        self._fn = fn

    def call(self, values: BaseModel) -> Any:
        """Call the function with the fields of a validated model (sync or coroutine result)."""
        positional = [getattr(values, name) for name in self._positional]
        keywords = {
            self._field_to_param[name]: getattr(values, name)
            for name in self._field_to_param
            if name not in self._positional
        }
        return self._fn(*positional, **keywords)
