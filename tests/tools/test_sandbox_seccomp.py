"""The sandbox's system-call filter and process count, outside an agent (no guard).

Each denied call is made for real through ``ctypes`` inside a sandboxed ``python -c`` and must
fail with EPERM (``clone3``: ENOSYS), and, where the call would succeed or fail otherwise
here, the same probe run with the filter switched off in the launcher shows the difference
(so the test fails if the filter stops working). Ordinary commands still run; a system call
of another architecture kills the command; a fork loop stops at the process limit even
though this machine runs everything as root, and nothing it started survives.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import agentcore.tools._sandbox as sandbox_module
from agentcore.tools import (
    SandboxError,
    SandboxLimits,
    SandboxResult,
    SandboxRules,
    run_sandboxed,
    sandbox_support,
)
from agentcore.tools._sandbox import _LAUNCHER_OVERRIDES
from agentcore.tools._sandbox_child import ARCHES, DENIED, SANDBOX_UID, seccomp_program

SUPPORT = sandbox_support()
MACHINE = os.uname().machine
needs_seccomp = pytest.mark.skipif(
    not (SUPPORT.get("seccomp") and SUPPORT.get("user_namespace")),
    reason=f"no seccomp filter or user namespaces here: {SUPPORT}",
)
NR = ARCHES.get(MACHINE, (0, {}))[1]

# a probe: one system call through ctypes, its result and errno printed as JSON
_PROBE = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(256)
name = ctypes.create_string_buffer(b"agentcore-probe")
nowhere = ctypes.create_string_buffer(b"/nonexistent-agentcore")
A = {{"buf": ctypes.addressof(buf), "name": ctypes.addressof(name),
     "nowhere": ctypes.addressof(nowhere), "pid": os.getpid()}}
ns_before = os.stat("/proc/self/ns/user").st_ino
ctypes.set_errno(0)
args = [A.get(a, a) if isinstance(a, str) else a for a in {args!r}]
r = libc.syscall(ctypes.c_long({nr}), *[ctypes.c_long(a) for a in args])
e = ctypes.get_errno()
if r == 0 and {forks!r}:
    os._exit(0)  # the child of a clone that went through
print(json.dumps({{"r": r, "errno": e, "ns_same": os.stat("/proc/self/ns/user").st_ino == ns_before}}))
if r >= 0:
    try:
        open("happened.txt", "w").write("{name}")
    except OSError:
        pass  # (a namespace it just entered may not map the workspace's owner)
"""

# name -> (arguments, errno without the filter here or None when it is not stable)
CALLS: dict[str, tuple[list[Any], int | None]] = {
    "ptrace": ([0, 0, 0, 0], 0),  # PTRACE_TRACEME: succeeds without the filter
    "unshare": ([0x10000000], 0),  # CLONE_NEWUSER: a nested user namespace
    "mount": (["name", "nowhere", "name", 0, 0], errno.ENOENT),
    "umount2": (["nowhere", 0], None),
    "chroot": (["nowhere"], errno.ENOENT),
    "setns": ([-1, 0], errno.EBADF),
    "bpf": ([0, "buf", 72], None),  # BPF_MAP_CREATE
    "keyctl": ([1, "name"], 0),  # KEYCTL_JOIN_SESSION_KEYRING: a new keyring
    "add_key": (["name", "name", "buf", 4, -2], None),  # into the process keyring
    "io_uring_setup": ([1, "buf"], 0),
    "userfaultfd": ([0], None),
    "perf_event_open": (["buf", 0, -1, -1, 0], None),
    "open_by_handle_at": ([-1, "buf", 0], None),
    "name_to_handle_at": ([-100, "nowhere", "buf", "buf", 0], errno.ENOENT),
    "process_vm_readv": (["pid", 0, 0, 0, 0, 0], 0),
    "init_module": ([0, 0, "name"], None),
    "syslog": ([10, 0, 0], None),
    "clock_settime": ([0, "buf"], None),
}


@pytest.fixture
def no_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher run without its seccomp filter (the control)."""
    monkeypatch.setitem(_LAUNCHER_OVERRIDES, "seccomp", False)
    monkeypatch.setitem(_LAUNCHER_OVERRIDES, "require", [])


def _probe(tmp_path: Path, name: str, args: list[Any], nr: int | None = None) -> dict[str, Any]:
    code = _PROBE.format(
        args=args, nr=NR[name] if nr is None else nr, forks=name == "clone", name=name
    )
    result = run_sandboxed(["python3", "-I", "-c", code], workspace=tmp_path)
    assert result.returncode == 0, result.render()
    return dict(json.loads(result.stdout.splitlines()[-1]))


def test_the_program_checks_the_architecture_first_and_knows_both_tables() -> None:
    for machine, (arch, table) in ARCHES.items():
        assert {*DENIED} - {"iopl", "ioperm", "uselib"} <= set(table), machine
        prog = seccomp_program(machine)
        assert prog[0] == (0x20, 0, 0, 4) and prog[1] == (0x15, 1, 0, arch)
        assert prog[2] == (0x06, 0, 0, 0x80000000)  # a foreign architecture: killed
        assert prog[-1] == (0x06, 0, 0, 0x7FFF0000) and len(prog) < 4096
        assert all(jt < 256 and jf < 256 for _, jt, jf, _ in prog)
    assert (0x35, 0, 1, 0x40000000) in seccomp_program("x86_64")  # the x32 bit
    with pytest.raises(KeyError):
        seccomp_program("riscv64")


def test_the_rules_accept_seccomp_and_processes_and_require_seccomp_by_default() -> None:
    assert "seccomp" in SandboxRules().require
    SandboxRules(require=frozenset({"seccomp", "processes"}))
    with pytest.raises(ValueError, match="unknown"):
        SandboxRules(require=frozenset({"apparmor"}))


@needs_seccomp
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_denied_call_fails_with_eperm_and_does_not_happen(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args, without = CALLS[name]
    got = _probe(tmp_path, name, args)
    assert got["r"] == -1 and got["errno"] == errno.EPERM, got
    assert got["ns_same"] and not (tmp_path / "happened.txt").exists()
    if without is not None:  # the control: the same call in the sandbox, filter off
        request.getfixturevalue("no_filter")
        bare = _probe(tmp_path, name, args)
        assert bare["errno"] == without or (without == 0 and bare["r"] >= 0), bare


@needs_seccomp
def test_clone_with_a_namespace_flag_and_clone3_are_refused_plain_clone_is_not(
    tmp_path: Path,
) -> None:
    sigchld = int(signal.SIGCHLD)
    got = _probe(tmp_path, "clone", [0x10000000 | sigchld, 0, 0, 0, 0])  # CLONE_NEWUSER
    assert got["r"] == -1 and got["errno"] == errno.EPERM, got
    got = _probe(tmp_path, "clone", [0x40000000 | sigchld, 0, 0, 0, 0])  # CLONE_NEWNET
    assert got["errno"] == errno.EPERM, got
    got = _probe(tmp_path, "clone3", ["buf", 0])
    assert got["r"] == -1 and got["errno"] == errno.ENOSYS, got
    plain = _probe(tmp_path, "clone", [sigchld, 0, 0, 0, 0])  # a fork
    assert plain["r"] > 0, plain


@needs_seccomp
def test_personality_keeps_the_safe_personas_only(tmp_path: Path) -> None:
    assert _probe(tmp_path, "personality", [0xFFFFFFFF])["r"] >= 0  # the query
    assert _probe(tmp_path, "personality", [0])["r"] >= 0
    for unsafe in (0x0040000, 0x0400000, 0x0100000):  # no ASLR, READ_IMPLIES_EXEC, page zero
        got = _probe(tmp_path, "personality", [unsafe])
        assert got["r"] == -1 and got["errno"] == errno.EPERM, (hex(unsafe), got)


@needs_seccomp
def test_ordinary_commands_still_work(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("b\na\nc\n")
    rules = SandboxRules()
    ls = run_sandboxed(["ls", "-la"], workspace=tmp_path, rules=rules)
    assert ls.ok and "in.txt" in ls.stdout and ls.layers["seccomp"]
    pipe = run_sandboxed(
        ["sh", "-c", "sort in.txt | tr a-z A-Z | tee out.txt | wc -l; (echo sub) | cat"],
        workspace=tmp_path,
        rules=rules,
    )
    assert pipe.ok and pipe.stdout.split() == ["3", "sub"], pipe.render()
    assert (tmp_path / "out.txt").read_text() == "A\nB\nC\n"
    code = (
        "import threading, subprocess, multiprocessing, json\n"
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
        "print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())\n"
        "with open('py.txt', 'w') as f: f.write(json.dumps({'ok': 1}))\n"
    )
    py = run_sandboxed(["python3", "-I", "-c", code], workspace=tmp_path, rules=rules)
    assert py.ok and py.stdout.split() == ["thread", "child"], py.render()
    assert json.loads((tmp_path / "py.txt").read_text()) == {"ok": 1}


_INT80 = """
import ctypes, mmap, os
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3")  # mov eax, 20 (i386 getpid); int 0x80; ret
call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
print("i386 getpid", call() == os.getpid(), flush=True)
open("happened.txt", "w").write("int80")
"""
_X32 = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("x32 getpid", libc.syscall(0x40000000 | 39), ctypes.get_errno(), flush=True)
open("happened.txt", "w").write("x32")
"""


@needs_seccomp
@pytest.mark.skipif(MACHINE != "x86_64", reason="the foreign-architecture probes are x86_64 code")
@pytest.mark.parametrize("code", [_INT80, _X32], ids=["i386-int80", "x32-bit"])
def test_a_foreign_architecture_call_kills_the_command(
    code: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    result = run_sandboxed(["python3", "-I", "-c", code], workspace=tmp_path)
    assert result.killed == "SIGSYS" and result.returncode == -signal.SIGSYS, result.render()
    assert not (tmp_path / "happened.txt").exists()
    request.getfixturevalue("no_filter")  # the control: without the filter it runs on
    bare = run_sandboxed(["python3", "-I", "-c", code], workspace=tmp_path)
    assert bare.ok and (tmp_path / "happened.txt").exists(), bare.render()


# ----------------------------------------------------------------------------- process count

_BOMB = """
import os, sys, time
n = 0
try:
    for _ in range(400):
        if os.fork() == 0:
            time.sleep(60)  # {token}
            os._exit(0)
        n += 1
except OSError as exc:
    print("stopped", n, exc.errno, flush=True)
else:
    print("not stopped", n, flush=True)
time.sleep(60)
"""


def _alive(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if token.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _bomb(tmp_path: Path, processes: int, rules: SandboxRules) -> tuple[SandboxResult, str]:
    token = f"bomb-{uuid.uuid4().hex}"
    result = run_sandboxed(
        ["python3", "-I", "-c", _BOMB.format(token=token)],
        workspace=tmp_path,
        limits=SandboxLimits(processes=processes, wall_s=4),
        rules=rules,
    )
    return result, token


@needs_seccomp
def test_a_fork_loop_stops_at_the_process_limit_even_as_root(tmp_path: Path) -> None:
    assert SUPPORT.get("process_limit"), SUPPORT
    result, token = _bomb(tmp_path, 12, SandboxRules(require=frozenset({"processes"})))
    assert result.killed == "wall_s", result.render()
    words = result.stdout.split()
    assert words[:1] == ["stopped"] and int(words[1]) < 12 and int(words[2]) == errno.EAGAIN
    deadline = time.monotonic() + 3
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(token) == [], "processes of the fork loop survived the sandbox"


@needs_seccomp
@pytest.mark.skipif(os.getuid() != 0, reason="the root exemption only exists for root")
def test_without_its_own_uid_a_root_sandbox_is_not_limited(tmp_path: Path) -> None:
    """The control: with the launcher's uid map helper switched off, root's children are
    exempt from RLIMIT_NPROC (the gap this layer closes), and requiring ``processes`` then
    stops the command before it runs."""
    import agentcore.tools._sandbox_child as child

    mp = pytest.MonkeyPatch()
    # the launcher is a separate interpreter: switch the helper off through its source
    source = (
        Path(child.__file__)
        .read_text()
        .replace(
            "    if os.getuid() != 0:\n        return None\n    parent",
            "    return None\n    parent",
        )
    )
    patched = tmp_path / "launcher.py"
    patched.write_text(source)
    mp.setattr(sandbox_module, "_LAUNCHER", str(patched))
    work = tmp_path / "ws"
    work.mkdir()
    try:
        result, token = _bomb(work, 12, SandboxRules(require=frozenset()))
        assert result.stdout.split()[:2] == ["not", "stopped"], result.render()
        assert result.layers["process_limit"] is False
        with pytest.raises(SandboxError, match="process count"):
            _bomb(work, 12, SandboxRules(require=frozenset({"processes"})))
    finally:
        mp.undo()
    deadline = time.monotonic() + 3
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(token) == []


@needs_seccomp
def test_the_command_is_root_inside_but_not_outside_and_cannot_switch_back(
    tmp_path: Path,
) -> None:
    code = (
        "import os\n"
        "print(os.getresuid())\n"
        "try:\n    os.setresuid(1, 1, 1); print('switched')\n"
        "except OSError as e:\n    print('refused', e.errno)\n"
    )
    result = run_sandboxed(["python3", "-I", "-c", code], workspace=tmp_path)
    assert result.ok, result.render()
    if os.getuid() == 0:
        assert result.layers["uid_outside"] == SANDBOX_UID
        assert result.stdout.split("\n")[:2] == ["(0, 0, 0)", f"refused {errno.EPERM}"]
    (tmp_path / "w.txt").write_text("root-owned\n")
    edit = run_sandboxed(["sh", "-c", "echo more >> w.txt; echo new > n.txt"], workspace=tmp_path)
    assert edit.ok and (tmp_path / "w.txt").read_text() == "root-owned\nmore\n"
    assert (tmp_path / "n.txt").read_text() == "new\n"
