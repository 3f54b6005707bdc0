"""The switch that forbids real model loads, so a test runs on a fake or a tiny model unless it
says otherwise (pydantic-ai's ``ALLOW_MODEL_REQUESTS``, for weights).

Owns :func:`forbid_model_loads`, :func:`allow_model_loads`, :func:`model_loads_allowed` and
:class:`ModelLoadForbiddenError`. The switch guards the library's two loaders:
:meth:`Engine.load <agentcore.core.engine.Engine.load>` (which ``LocalBackend.load``, the
``--model`` flags and the simulation's engines go through) and
:func:`agentcore.core.loader.load_model`. It wraps them the first time it is set, in this
process only (a subprocess loads freely); until then nothing changes. The library never reads
the switch nor imports this module. Never blocks an in-memory model (:func:`tiny_engine
<agentcore.testing.tiny_engine>`, ``Engine.from_hf``), a saved session, or the network.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import agentcore.core as core

__all__ = [
    "ModelLoadForbiddenError",
    "allow_model_loads",
    "forbid_model_loads",
    "model_loads_allowed",
]


class ModelLoadForbiddenError(RuntimeError):
    """A model was about to be loaded while :func:`forbid_model_loads` is on."""


class _Switch:
    """Whether loads are allowed, and whether the loaders are wrapped yet."""

    def __init__(self) -> None:
        self.allowed = True
        self.hint = ""
        self.installed = False
        self.lock = threading.Lock()


_switch = _Switch()


def model_loads_allowed() -> bool:
    """False while :func:`forbid_model_loads` is on (outside :func:`allow_model_loads`)."""
    return _switch.allowed


def forbid_model_loads(forbid: bool = True, *, hint: str = "") -> None:
    """From now on, in this process, refuse to load a model: ``Engine.load`` and ``load_model``
    raise :class:`ModelLoadForbiddenError` (``forbid=False`` lets them load again).

    ``hint``: what to do instead, added to the error (a suite can say which marker allows it).
    """
    _install()
    _switch.allowed, _switch.hint = not forbid, hint


@contextlib.contextmanager
def allow_model_loads(allow: bool = True) -> Iterator[None]:
    """Inside the block, loads are allowed (``allow=False``: refused); the setting before the
    block comes back after it."""
    _install()
    before = _switch.allowed
    _switch.allowed = allow
    try:
        yield
    finally:
        _switch.allowed = before


def _refuse(loader: str, model: object) -> None:
    if _switch.allowed:
        return
    what = "the default model" if model is None else repr(str(model))
    hint = f" {_switch.hint}" if _switch.hint else ""
    raise ModelLoadForbiddenError(
        f"{loader} was asked to load {what} while model loads are forbidden "
        "(agentcore.testing.forbid_model_loads): test on agentcore.testing.tiny_engine() or "
        "FakeBackend, or load the real model inside `with agentcore.testing.allow_model_loads():`."
        + hint
    )


def _guard(loader: str, load: Callable[..., Any], *, bound: bool) -> Callable[..., Any]:
    """``load`` behind the switch; ``bound``: its first argument is the class."""

    @functools.wraps(load)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        given = args[1:] if bound else args
        _refuse(loader, given[0] if given else kwargs.get("model", kwargs.get("ref")))
        return load(*args, **kwargs)

    return guarded


def _install() -> None:
    """Wrap ``Engine.load`` and ``load_model`` once (they consult the switch on every call)."""
    with _switch.lock:
        if _switch.installed:
            return
        from agentcore.core import engine, loader

        load = engine.Engine.__dict__["load"].__func__
        guarded_load = classmethod(_guard("Engine.load", load, bound=True))
        engine.Engine.load = guarded_load  # type: ignore[method-assign,assignment]
        guarded = _guard("load_model", loader.load_model, bound=False)
        loader.load_model = guarded
        if "load_model" in vars(core):  # the package has handed out the original already
            core.load_model = guarded
        _switch.installed = True
