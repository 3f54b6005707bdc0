"""The lock files agree with pyproject.toml.

``requirements/lock.txt`` pins every package the README's commands install (hash-checked);
``pyproject.toml`` keeps ranges for users. These tests fail when the two drift apart: a
dependency added, dropped or re-ranged in pyproject.toml without ``make lock``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
MODELS_IN = ROOT / "requirements" / "models.in"
MODELS_LOCK = ROOT / "requirements" / "models.txt"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


@dataclass
class Pin:
    version: Version
    hashes: int = 0
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> tuple[str, dict[str, Pin]]:
    """The compile command from the header, and each pinned package by canonical name."""
    text = path.read_text()
    command = next(line for line in text.splitlines() if "uv pip compile" in line)
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if m := _PIN.match(line):
            current = pins[canonicalize_name(m[1])] = Pin(Version(m[2]))
        elif current is not None and stripped.startswith("--hash=sha256:"):
            current.hashes += 1
        elif current is not None and stripped.startswith("#") and not line.startswith("#"):
            via = stripped.lstrip("#").strip()
            current.via.append(via.removeprefix("via ").strip())
    return command, pins


def project_requirements(extras: list[str]) -> list[Requirement]:
    """pyproject.toml's dependencies and those of ``extras`` (extras that name agentcore
    itself, like ``all``, are followed rather than listed)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in found if canonicalize_name(r.name) != "agentcore"]


def all_extras() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"])


def applies(req: Requirement) -> bool:
    """Markers evaluated for the lock's target (CPython 3.11 on Linux)."""
    if req.marker is None:
        return True
    env = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}
    return req.marker.evaluate(env)


@pytest.fixture(scope="module")
def lock() -> tuple[list[str], dict[str, Pin]]:
    command, pins = read_lock(LOCK)
    extras = all_extras() if "--all-extras" in command else re.findall(r"--extra (\S+)", command)
    return extras, pins


def test_lock_is_compiled_from_pyproject(lock: tuple[list[str], dict[str, Pin]]) -> None:
    command, _ = read_lock(LOCK)
    assert "pyproject.toml" in command and "--generate-hashes" in command


def test_every_pyproject_requirement_is_pinned_within_its_range(
    lock: tuple[list[str], dict[str, Pin]],
) -> None:
    extras, pins = lock
    problems = []
    for req in project_requirements(extras):
        if not applies(req):
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req}: not in {LOCK.name}")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req}: locked at {pin.version}, outside the range")
    assert not problems, "pyproject.toml and the lock disagree (run `make lock`):\n" + "\n".join(
        problems
    )


def test_no_locked_direct_dependency_is_gone_from_pyproject(
    lock: tuple[list[str], dict[str, Pin]],
) -> None:
    extras, pins = lock
    wanted = {canonicalize_name(r.name) for r in project_requirements(extras)}
    direct = {name for name, pin in pins.items() if any(v.startswith("agentcore") for v in pin.via)}
    stale = sorted(direct - wanted)
    assert not stale, f"locked as agentcore's dependencies but not in pyproject.toml: {stale}"


def test_every_pin_carries_a_hash(lock: tuple[list[str], dict[str, Pin]]) -> None:
    _, pins = lock
    unhashed = sorted(name for name, pin in pins.items() if pin.hashes == 0)
    assert not unhashed, f"pins without a hash: {unhashed}"


def test_models_lock_pins_what_models_in_asks_for() -> None:
    wanted = [
        Requirement(line)
        for line in MODELS_IN.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    _, pins = read_lock(MODELS_LOCK)
    assert wanted
    for req in wanted:
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} missing from {MODELS_LOCK.name}: run `make lock`"
        assert req.specifier.contains(pin.version), f"{req}: locked at {pin.version}"
        assert pin.hashes > 0
    assert set(pins) == {canonicalize_name(r.name) for r in wanted}


def test_read_lock_sees_a_drifted_range(tmp_path: Path) -> None:
    """The checker itself: a pin outside a requirement's range is reported."""
    fake = tmp_path / "lock.txt"
    fake.write_text(
        "#    uv pip compile pyproject.toml --extra dev --generate-hashes\n"
        "httpx==0.20.0 \\\n    --hash=sha256:00\n    # via agentcore (pyproject.toml)\n"
    )
    _, pins = read_lock(fake)
    pin = pins["httpx"]
    assert pin.hashes == 1 and pin.via == ["agentcore (pyproject.toml)"]
    assert not Requirement("httpx>=0.27").specifier.contains(pin.version)
