"""The sandboxed process tools and the sandbox below them, outside an agent (no guard): what
runs, what the limits do, what is refused. The attacks on them live in
``tests/agent/test_redteam_sandbox.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentcore._atomic import atomic_write_at
from agentcore.tools import (
    SandboxError,
    SandboxLimits,
    SandboxRules,
    ToolRegistry,
    run_sandboxed,
    sandbox_support,
)
from agentcore.tools.builtin import default_tools, process_tools

SUPPORT = sandbox_support()
needs_sandbox = pytest.mark.skipif(
    not (SUPPORT.get("landlock_fs") and SUPPORT.get("user_namespace")),
    reason=f"no Landlock or user namespaces here: {SUPPORT}",
)


def test_limits_validate_and_combine() -> None:
    with pytest.raises(ValueError, match="cpu_s"):
        SandboxLimits(cpu_s=0)
    a = SandboxLimits(cpu_s=5, wall_s=20, memory_bytes=1 << 30)
    b = SandboxLimits(cpu_s=9, wall_s=3, memory_bytes=1 << 20)
    both = a.tighter(b)
    assert (both.cpu_s, both.wall_s, both.memory_bytes) == (5, 3, 1 << 20)
    assert a.within(2.5).wall_s == 2.5 and a.within(2.5).cpu_s == 3
    assert a.within(None) is a
    with pytest.raises(ValueError, match="unknown"):
        SandboxRules(require=frozenset({"apparmor"}))


def test_exec_tools_are_opt_in_and_declare_executes(tmp_path: Path) -> None:
    assert "run_command" not in default_tools(workspace=tmp_path).names()
    registry = default_tools(workspace=tmp_path, allow_exec=True)
    for name in ("run_command", "run_python"):
        assert {e.value for e in registry.get(name).side_effects} == {"executes"}
    assert [t.name for t in process_tools(tmp_path, shell=False)] == ["run_python"]


def test_bad_argv_and_workspace_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="argv"):
        run_sandboxed([], workspace=tmp_path)
    with pytest.raises(SandboxError, match="not a folder"):
        run_sandboxed(["true"], workspace=tmp_path / "missing")


@needs_sandbox
def test_commands_run_in_the_workspace_with_a_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARENT_ONLY", "leak")
    registry = ToolRegistry(process_tools(tmp_path))
    out = registry.call_sync("run_command", {"command": "echo hi > a.txt; pwd; env"})
    assert out.ok and "exit code 0" in out.content, out.content
    assert str(tmp_path) in out.content and "leak" not in out.content
    assert (tmp_path / "a.txt").read_text() == "hi\n"
    py = registry.call_sync(
        "run_python", {"code": "import sys; print(sys.stdin.read()[::-1])", "stdin": "abc"}
    )
    assert py.ok and "cba" in py.content, py.content


@needs_sandbox
def test_exit_codes_limits_and_output_bound(tmp_path: Path) -> None:
    rules = SandboxRules()
    failed = run_sandboxed(["sh", "-c", "echo oops >&2; exit 3"], workspace=tmp_path, rules=rules)
    assert failed.returncode == 3 and failed.stderr == "oops\n" and not failed.ok
    slow = run_sandboxed(["sleep", "30"], workspace=tmp_path, limits=SandboxLimits(wall_s=0.5))
    assert slow.killed == "wall_s" and slow.duration_s < 5
    flood = run_sandboxed(
        ["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x"],
        workspace=tmp_path,
        limits=SandboxLimits(output_bytes=1000),
    )
    assert len(flood.stdout) == 1000 and flood.truncated
    missing = run_sandboxed(["no-such-program-x"], workspace=tmp_path)
    assert missing.returncode == 127 and "cannot run" in missing.stderr


def test_a_required_layer_that_is_missing_stops_the_command(tmp_path: Path) -> None:
    # namespaces switched off in the launcher: masking protected paths is impossible
    (tmp_path / ".env").write_text("X=1")
    rules = SandboxRules(mask=(str(tmp_path / ".env"),), require=frozenset({"mask"}))
    import agentcore.tools._sandbox as sandbox

    real_dumps = sandbox.json.dumps

    def dumps(spec: object, **kw: object) -> str:
        if isinstance(spec, dict) and "argv" in spec:
            spec = {**spec, "namespaces": False}
        return real_dumps(spec)

    mp = pytest.MonkeyPatch()
    mp.setattr(sandbox.json, "dumps", dumps)
    try:
        with pytest.raises(SandboxError, match="cannot be hidden"):
            run_sandboxed(["cat", ".env"], workspace=tmp_path, rules=rules)
    finally:
        mp.undo()


def test_atomic_write_at_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    folder = tmp_path / "ws"
    folder.mkdir()
    os.symlink(outside, folder / "name.txt")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        atomic_write_at(fd, "name.txt", b"new")
        with pytest.raises(ValueError, match="one path component"):
            atomic_write_at(fd, "../x", b"new")
    finally:
        os.close(fd)
    assert outside.read_text() == "keep"
    assert not (folder / "name.txt").is_symlink() and (folder / "name.txt").read_text() == "new"
    assert sorted(p.name for p in folder.iterdir()) == ["name.txt"]
