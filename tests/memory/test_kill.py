"""kill -9 a real writer process mid-burst: every write it acknowledged must be there after."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentcore.memory import HashEmbeddingFunction, LongTermMemory

_WRITER = """
import random, sys
from collections.abc import Callable
from pathlib import Path
from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MemoryRecord

path, seed = Path(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
memory = LongTermMemory(path, embedder=HashEmbeddingFunction())
n = 0
while True:
    size = rng.choice([1, 1, 3, 8, 20, 60])
    batch = [
        MemoryRecord(id=f"r{seed}-{n + i}", kind=rng.choice(["episodic", "fact"]),
                     text=f"round {seed} item {n + i} says {rng.random()}", agent="w")
        for i in range(size)
    ]
    if size == 1:
        memory.add(batch[0])
    else:
        memory.add_many(batch)
    n += size
    print(f"ACK {n}", flush=True)  # printed only after add/add_many returned
"""


def _kill_after(script: Path, store: Path, seed: int, acks_wanted: int) -> int:
    """Run the writer until it has acknowledged ``acks_wanted`` records, then SIGKILL it
    at a random moment shortly after. Returns the highest acknowledged count."""
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1"),
    )
    assert proc.stdout is not None
    acked = 0
    try:
        deadline = time.monotonic() + 90
        for line in proc.stdout:
            acked = int(line.split()[1])
            if acked >= acks_wanted or time.monotonic() > deadline:
                break
        time.sleep(random.Random(seed).uniform(0.0, 0.05))  # land inside the next write
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err
    for line in rest.splitlines():  # acks printed between our read and the kill count too
        acked = int(line.split()[1])
    return acked


@pytest.mark.timeout(300)
def test_acknowledged_writes_survive_kill_9(
    tmp_path: Path, write_script: Callable[[str], Path]
) -> None:
    script = write_script(_WRITER)
    store = tmp_path / "store"
    acked_by_seed: dict[int, int] = {}
    for seed in (1, 2, 3):  # three kills on the same store, each reopening the last
        acked_by_seed[seed] = _kill_after(script, store, seed, acks_wanted=150 * seed)
        assert acked_by_seed[seed] > 0

    with LongTermMemory(store, embedder=HashEmbeddingFunction()) as memory:
        stored = {r.id for r in memory.list_records(agent="w")}
        for seed, acked in acked_by_seed.items():
            expected = {f"r{seed}-{i}" for i in range(acked)}
            missing = expected - stored
            assert not missing, f"round {seed}: {len(missing)} acknowledged writes lost"
            # at most the one write in flight (a batch of up to 60) beyond the last ack
            beyond = {rid for rid in stored if rid.startswith(f"r{seed}-")} - expected
            assert len(beyond) <= 60
        probe = f"r3-{acked_by_seed[3] - 1}"
        record = memory.get(probe)
        assert record is not None
        assert memory.search(record.text, k=1)[0].record.id == probe
