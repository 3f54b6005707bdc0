"""``python -m apps.sim SCENARIO ...`` (same as ``agentcore sim``)."""

from __future__ import annotations

import sys

from agentcore.apps.sim._cli import main

if __name__ == "__main__":
    sys.exit(main())
