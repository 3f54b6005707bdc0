"""The registry the MCP round-trip tests expose and import back.

Imported by ``test_mcp.py`` to build the same registry in-process, and run as a script
(``python mcp_demo_registry.py``) to serve it over stdio from a real subprocess.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import anyio
from pydantic import BaseModel, Field

from agentcore.tools import ToolRegistry, serve_stdio, tool
from agentcore.tools.builtin import calculator_tool


class Item(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(ge=1, le=99)] = 1


@tool(side_effects="writes")
def order(
    items: Annotated[list[Item], Field(min_length=1)], express: bool = False
) -> dict[str, Any]:
    """Place an order for some items.

    Args:
        items: What to order.
        express: Ship it fast.
    """
    total = sum(item.quantity for item in items)
    return {"items": total, "express": express, "names": [item.name for item in items]}


@tool(side_effects=["reads", "network"])
async def lookup(word: str, language: Literal["en", "fr"] = "en") -> str:
    """Look a word up in the dictionary."""
    await asyncio.sleep(0)
    return f"{word} ({language}): a word"


@tool
def fail(reason: str) -> str:
    """Always fails, with the given reason."""
    raise RuntimeError(reason)


def build_registry() -> ToolRegistry:
    return ToolRegistry([order, lookup, fail, calculator_tool()])


if __name__ == "__main__":
    anyio.run(serve_stdio, build_registry())
