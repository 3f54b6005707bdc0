"""Store 1,000 memories in one process, retrieve the right ones from a new process
(hash embedder; a smaller store with the real model in a slow test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

_WRITE = """
import json, random, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MemoryRecord, MiniLMEmbeddingFunction

path, embedder_name = Path(sys.argv[1]), sys.argv[2]
needles = json.loads(Path(sys.argv[3]).read_text())
embedder = HashEmbeddingFunction() if embedder_name == "hash" else MiniLMEmbeddingFunction(device="cpu")
rng = random.Random(7)
people = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana"]
places = ["kitchen", "office", "park", "station", "library", "gym", "market", "beach"]
acts = ["met", "called", "emailed", "argued with", "had coffee with", "helped", "waited for"]
t0 = datetime(2025, 1, 1, tzinfo=UTC)
records = [
    MemoryRecord(
        kind="episodic",
        text=f"{rng.choice(people)} {rng.choice(acts)} {rng.choice(people)} at the {rng.choice(places)}",
        agent=f"agent{i % 3}",
        time=t0 + timedelta(minutes=i),
        importance=rng.random(),
    )
    for i in range(int(sys.argv[5]) - len(needles))
]
for i, needle in enumerate(needles):
    records.insert(i * (len(records) // len(needles)), MemoryRecord(id=f"needle-{i}", kind="fact", text=needle["text"],
                                        agent="agent0", time=t0 + timedelta(minutes=i)))
memory = LongTermMemory(path, embedder=embedder)
for start in range(0, len(records), 250):
    memory.add_many(records[start:start + 250])
print(memory.count())
if sys.argv[4] == "close":
    memory.close()
# else: exit without close(), as a crashed or careless process would
"""

_READ = """
import json, sys
from pathlib import Path
from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MiniLMEmbeddingFunction, RetrievalWeights

path, embedder_name = Path(sys.argv[1]), sys.argv[2]
needles = json.loads(Path(sys.argv[3]).read_text())
embedder = HashEmbeddingFunction() if embedder_name == "hash" else MiniLMEmbeddingFunction(device="cpu")
with LongTermMemory(path, embedder=embedder) as memory:
    found = [
        [h.record.id for h in memory.search(n["query"], k=3, weights=RetrievalWeights.relevance_only())]
        for n in needles
    ]
    per_agent = [len(memory.list_records(agent=f"agent{i}")) for i in range(3)]
    print(json.dumps({"count": memory.count(), "found": found, "per_agent": per_agent}))
"""

NEEDLES = [
    {
        "text": "Ivo's passport number ends in 4471",
        "query": "what are the last digits of Ivo's passport",
    },
    {
        "text": "The boiler service is booked for the ninth of March",
        "query": "when is the boiler service booked",
    },
    {"text": "Mira is allergic to shellfish and penicillin", "query": "what is Mira allergic to"},
    {
        "text": "The router admin password is written inside the blue notebook",
        "query": "where is the router admin password written",
    },
    {
        "text": "Quentin's flight lands at terminal two at 6 pm",
        "query": "which terminal does Quentin's flight land at",
    },
    {
        "text": "The recycling goes out every second Thursday",
        "query": "how often does the recycling go out",
    },
    {
        "text": "Rosa prefers oat milk in her coffee",
        "query": "what milk does Rosa take in her coffee",
    },
    {
        "text": "The telescope lens cap is stored in the top drawer",
        "query": "where is the telescope lens cap stored",
    },
    {
        "text": "Sven's dentist appointment moved to Friday morning",
        "query": "when is Sven's dentist appointment",
    },
    {
        "text": "The garage door remote needs a CR2032 battery",
        "query": "what battery does the garage door remote need",
    },
]


def _roundtrip(
    run_script: Any, tmp_path: Path, embedder: str, ending: str, total: int = 1000
) -> dict[str, Any]:
    needles = tmp_path / "needles.json"
    needles.write_text(json.dumps(NEEDLES))
    store = tmp_path / "store"
    wrote = run_script(_WRITE, str(store), embedder, str(needles), ending, str(total), timeout=300)
    assert wrote.stdout.split()[-1] == str(total)
    read = run_script(_READ, str(store), embedder, str(needles), timeout=300)
    return dict(json.loads(read.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("ending", ["close", "no-close"])
def test_thousand_memories_survive_a_restart(run_script: Any, tmp_path: Path, ending: str) -> None:
    result = _roundtrip(run_script, tmp_path, "hash", ending)
    assert result["count"] == 1000
    assert sum(result["per_agent"]) == 1000
    for i, found in enumerate(result["found"]):
        assert found[0] == f"needle-{i}", (NEEDLES[i], found)


@pytest.mark.slow
def test_memories_survive_a_restart_real_model(run_script: Any, tmp_path: Path) -> None:
    # 300 rather than 1,000: embedding 1,000 texts on 2 busy cores alone can take 20 s.
    result = _roundtrip(run_script, tmp_path, "minilm", "close", total=300)
    assert result["count"] == 300
    hits_at_1 = sum(found[0] == f"needle-{i}" for i, found in enumerate(result["found"]))
    hits_at_3 = sum(f"needle-{i}" in found for i, found in enumerate(result["found"]))
    assert hits_at_3 == len(NEEDLES)
    assert hits_at_1 >= len(NEEDLES) - 1
