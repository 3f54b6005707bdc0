"""Quickstart: an agent with the built-in tools on the default local model.

Run it with ``python examples/quickstart.py``. The agent plans the two steps, computes the
value with the calculator tool and (after you approve the write) saves it in its workspace.
"""

from __future__ import annotations

from typing import Any

from agentcore import Agent


def main(model: Any = "default", **options: Any) -> str:
    agent = Agent(model, name="quickstart", approve=lambda request: "once", **options)
    result = agent.run("Compute 17*23 and write the result to result.txt")
    print(result.answer)
    print((agent.workspace / "result.txt").read_text())
    return result.answer


if __name__ == "__main__":
    main()
