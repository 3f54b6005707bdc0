"""``python -m agentcore.core.native``: build (or load) the native kernels and say if they run."""

import logging

from agentcore.core.native import status

logging.basicConfig(level=logging.INFO, format="%(message)s")
print(f"native kernels: {status()}")
