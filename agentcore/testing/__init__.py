"""Test helpers for agentcore and for the agents built on it: fakes at every boundary.

What a test needs so that it never loads real weights, never waits on a real model and never
reaches the network:

- :class:`FakeBackend` (with :class:`Reply`, :class:`FakeRequest`,
  :class:`ScriptExhaustedError`): a scripted model backend, re-exported from
  :mod:`agentcore.backends`; an agent runs on it exactly as on a real model.
- :func:`tiny_engine` / :func:`tiny_llama` (:data:`TINY_LLAMA_CONFIG`): a tiny random-weight
  Llama, so the model core, sessions and the local backend run in milliseconds.
- :func:`serve_in_thread`: a backend or an ASGI app behind a real uvicorn server on a free
  loopback port, for code that talks HTTP (``HttpBackend``, ``agentcore.client``, the
  ``openai`` package).
- :func:`forbid_model_loads` / :func:`allow_model_loads`: the switch that makes a real model
  load an error (:class:`ModelLoadForbiddenError`).
- :func:`block_network`: any connection beyond this machine raises
  :class:`NetworkBlockedError`.

``docs/testing.md`` shows them in a user's test suite. Nothing in the library imports this
package: it sits above the server and the backends (it uses both) and only tests, benchmarks
and users import it. Importing it loads neither torch nor FastAPI; the tiny model and the
switch load torch when called, serving a backend loads FastAPI.
"""

from __future__ import annotations

from agentcore.backends import FakeBackend, FakeRequest, Reply, ScriptExhaustedError
from agentcore.testing._loads import (
    ModelLoadForbiddenError,
    allow_model_loads,
    forbid_model_loads,
    model_loads_allowed,
)
from agentcore.testing._network import NetworkBlockedError, block_network
from agentcore.testing._serve import ASGIApp, serve_in_thread
from agentcore.testing._tiny import TINY_LLAMA_CONFIG, tiny_engine, tiny_llama

__all__ = [
    "TINY_LLAMA_CONFIG",
    "ASGIApp",
    "FakeBackend",
    "FakeRequest",
    "ModelLoadForbiddenError",
    "NetworkBlockedError",
    "Reply",
    "ScriptExhaustedError",
    "allow_model_loads",
    "block_network",
    "forbid_model_loads",
    "model_loads_allowed",
    "serve_in_thread",
    "tiny_engine",
    "tiny_llama",
]
