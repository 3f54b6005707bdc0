"""The assistant's entry point: parse the command line, run the app, return an exit status.

Owns :func:`main` (wired to ``agentcore chat``). Never holds UI or agent logic.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcore import _tracing as tracing
from agentcore.apps.assistant._app import AssistantApp
from agentcore.apps.assistant._config import parse_args

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the terminal assistant; 0 on a normal quit, 1 when it could not start."""
    config = parse_args(argv)
    if config.trace is not None:
        tracing.configure(config.trace)
    app = AssistantApp(config)
    app.run()
    return int(app.return_code or 0)
