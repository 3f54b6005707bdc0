"""What ``pip install agentcore`` puts on a user's machine: one namespace, optional extras.

The wheel is built from this tree (offline, no build isolation) and read back: its only
top-level package is ``agentcore``, and the product's top-level folders (``tools/``,
``memory/``, ``planners/``, ``apps/``) are inside it as ``agentcore.tools`` and friends.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentcore import cli
from agentcore._extras import MissingExtraError, require_extra

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tools", "memory", "planners", "apps")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--no-index", "-w", str(out), str(ROOT)),
        ],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(build), "PIP_CONFIG_FILE": "/dev/null"},
    )
    (wheel,) = out.glob("agentcore-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_the_wheel_installs_one_top_level_package(wheel_names: set[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"agentcore"}


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_module_of_a_top_level_folder_ships_under_agentcore(
    wheel_names: set[str], folder: str
) -> None:
    sources = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / folder).rglob("*")
        if p.suffix in {".py", ".yaml", ".tcss"} and "__pycache__" not in p.parts
    ]
    assert sources
    missing = [s for s in sources if f"agentcore/{s}" not in wheel_names]
    assert not missing


def test_the_folders_import_under_the_namespace() -> None:
    import agentcore.apps
    import agentcore.memory
    import agentcore.planners
    import agentcore.tools

    for module in (agentcore.tools, agentcore.memory, agentcore.planners, agentcore.apps):
        assert module.__name__.startswith("agentcore.")
        assert Path(module.__file__ or "").resolve().parent.parent == ROOT


def test_a_missing_extra_names_the_extra_to_install() -> None:
    with pytest.raises(MissingExtraError) as err:
        require_extra("server", "fastapi", "no_such_module_xyz", feature="agentcore serve")
    message = str(err.value)
    assert "no_such_module_xyz" in message and "fastapi" not in message.split(":")[0]
    assert 'pip install "agentcore[server]"' in message


def test_the_cli_reports_a_missing_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "yaml" else real(name, *a)
    )
    assert cli.main(["sim", "town"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentcore: agentcore sim needs yaml")
    assert 'pip install "agentcore[sim]"' in err
