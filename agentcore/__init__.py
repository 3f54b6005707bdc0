"""agentcore: an agent framework built on a local language model whose context never ends."""

from agentcore._version import __version__

__all__ = ["__version__"]
