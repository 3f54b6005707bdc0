"""``python -m agentcore.server``: the same as ``agentcore serve``."""

import sys

from agentcore.server._main import main

sys.exit(main())
