"""Tools that run commands and Python code, always in the sandbox.

Owns :func:`process_tools`: ``run_command`` (a ``/bin/sh`` command line) and ``run_python`` (a
Python snippet on this interpreter, isolated mode) in a :class:`Workspace`, through
:func:`agentcore.tools.run_sandboxed`: resource limits, a clean environment, the workspace as
working folder and only writable place, protected paths hidden, no network. Both declare
``executes`` (so a default policy asks a human first). Never runs anything outside the
sandbox and never decides whether a command may run.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

from pydantic import Field

from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._sandbox import run_sandboxed
from agentcore.tools._sandbox_rules import SandboxLimits
from agentcore.tools._tool import Tool
from agentcore.tools.builtin._workspace import Workspace

__all__ = ["process_tools"]

MAX_CODE_CHARS = 20_000
MAX_STDIN_CHARS = 100_000

Stdin = Annotated[
    str, Field(max_length=MAX_STDIN_CHARS, description="Text given to the program's stdin.")
]


def process_tools(
    workspace: Workspace | str | os.PathLike[str],
    *,
    limits: SandboxLimits | None = None,
    shell: bool = True,
    python: bool = True,
) -> list[Tool]:
    """``run_command`` (unless ``shell=False``) and ``run_python`` (unless ``python=False``),
    both side effect ``executes``, sandboxed in ``workspace`` under ``limits`` (the policy of
    an agent can only tighten them)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    chosen = limits or SandboxLimits()
    # the tool's own timeout leaves the sandbox time to kill the tree and report
    tool_limits = ToolLimits(timeout_s=chosen.wall_s + 5.0, max_result_chars=8_000)

    def run_command(
        command: Annotated[
            str, Field(min_length=1, max_length=MAX_CODE_CHARS, description="A sh command line.")
        ],
        stdin: Stdin = "",
    ) -> str:
        """Run a shell command in the workspace (sandboxed: no network, files only in the
        workspace, limited time and memory) and return its exit code and output."""
        result = run_sandboxed(
            ["/bin/sh", "-c", command], workspace=ws.root, limits=chosen, stdin=stdin or None
        )
        return result.render()

    def run_python(
        code: Annotated[
            str, Field(min_length=1, max_length=MAX_CODE_CHARS, description="Python source.")
        ],
        stdin: Stdin = "",
    ) -> str:
        """Run a Python program in the workspace (sandboxed: no network, files only in the
        workspace, limited time and memory) and return its exit code and printed output."""
        result = run_sandboxed(
            [sys.executable, "-I", "-c", code],
            workspace=ws.root,
            limits=chosen,
            stdin=stdin or None,
        )
        return result.render()

    effects = {SideEffect.EXECUTES}
    tools = []
    if shell:
        tools.append(
            Tool.from_function(run_command, side_effects=effects, limits=tool_limits, tags={"exec"})
        )
    if python:
        tools.append(
            Tool.from_function(run_python, side_effects=effects, limits=tool_limits, tags={"exec"})
        )
    return tools
