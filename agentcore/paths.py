"""Where agentcore keeps user data (sessions, agents, memories: ``$AGENTCORE_HOME``) and its
cache of converted models (``$AGENTCORE_CACHE``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["cache_root", "data_home", "session_path", "validate_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def data_home() -> Path:
    """``$AGENTCORE_HOME``, else ``$XDG_DATA_HOME/agentcore``, else ``~/.local/share/agentcore``."""
    env = os.environ.get("AGENTCORE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "agentcore"


def cache_root() -> Path:
    """The user cache folder for converted models (``$AGENTCORE_CACHE`` overrides)."""
    env = os.environ.get("AGENTCORE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "agentcore"


def validate_name(name: str, what: str = "session") -> str:
    """A name safe to use as a file name; raises ValueError saying what is allowed."""
    if not _NAME.match(name):
        raise ValueError(
            f"{what} name {name!r} is invalid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def session_path(name: str) -> Path:
    return data_home() / "sessions" / f"{validate_name(name)}.session"
