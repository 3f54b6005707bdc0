"""Optional dependency groups (``pip install "agentcore[server]"`` and friends).

Owns one check: a part of the package that needs an extra calls :func:`require_extra` before
importing it, so a missing package is one clear error naming the extra to install instead of a
bare ``ModuleNotFoundError`` deep in an import chain. Never installs anything.
"""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtraError", "require_extra"]


class MissingExtraError(ImportError):
    """A feature was used whose optional dependencies are not installed."""


def require_extra(extra: str, *modules: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless every module in ``modules`` can be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)}, which is not installed: "
            f'pip install "agentcore[{extra}]" (or "agentcore[all]")',
            name=missing[0],
        )
