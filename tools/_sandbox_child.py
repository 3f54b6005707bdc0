"""The sandbox launcher: confine this process, then become the command it was asked to run.

Run by :func:`agentcore.tools.run_sandboxed` as ``python -I -S _sandbox_child.py SPEC``, a
fresh single-threaded interpreter that imports nothing but the standard library. ``SPEC`` is
a JSON object; in order, the launcher

1. enters new user, mount, network and PID namespaces (unprivileged; skipped where the kernel
   or the container refuses them), so the command has no network but a loopback that is down;
   forks, and goes on as PID 1 of the new namespace with its own ``/proc`` (other processes of
   the machine are not visible), so every process the command starts dies with it, while the
   first launcher process waits and relays the exit status;
2. masks the paths it was given (protected files and folders inside the workspace) with an
   empty read-only folder or ``/dev/null``;
3. restricts the file system with Landlock: read and execute under the runtime's folders,
   read/write only under the workspace and a private temporary folder, nothing else; TCP
   connect and bind refused (Landlock ABI 4+); signals and abstract sockets scoped (ABI 6+);
4. sets resource limits (CPU seconds, address space, file size, processes, open files, no
   core files) and ``no_new_privs``;
5. writes one JSON status line (which layers took effect) to the status descriptor, closes
   it and executes the command with a clean environment in the workspace.

A layer the spec marks as required that cannot be applied ends the launcher with status 126
and the reason on stderr before the command ever runs. Never imports agentcore and never
decides anything: the caller's policy chose the paths and the limits.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import stat
import sys
from typing import Any

# Landlock (include/uapi/linux/landlock.h); syscall numbers are the same on every 64-bit arch
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_VERSION = 1
_RULE_PATH_BENEATH = 1
_FS = {
    "execute": 1 << 0,
    "write_file": 1 << 1,
    "read_file": 1 << 2,
    "read_dir": 1 << 3,
    "remove_dir": 1 << 4,
    "remove_file": 1 << 5,
    "make_char": 1 << 6,
    "make_dir": 1 << 7,
    "make_reg": 1 << 8,
    "make_sock": 1 << 9,
    "make_fifo": 1 << 10,
    "make_block": 1 << 11,
    "make_sym": 1 << 12,
    "refer": 1 << 13,  # ABI 2
    "truncate": 1 << 14,  # ABI 3
    "ioctl_dev": 1 << 15,  # ABI 5
}
_FILE_ONLY = _FS["execute"] | _FS["write_file"] | _FS["read_file"] | _FS["truncate"]
_NET_ALL = (1 << 0) | (1 << 1)  # bind_tcp, connect_tcp (ABI 4)
_SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets, signals (ABI 6)

_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_NEWPID = (
    0x00020000,
    0x10000000,
    0x40000000,
    0x20000000,
)
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _fail(message: str) -> None:
    sys.stderr.write(f"sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(126)


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    version = _libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_VERSION))
    return int(version) if version > 0 else 0


def _fs_rights(abi: int) -> int:
    rights = 0
    for name, bit in _FS.items():
        if name == "refer" and abi < 2:
            continue
        if name == "truncate" and abi < 3:
            continue
        if name == "ioctl_dev" and abi < 5:
            continue
        rights |= bit
    return rights


def _landlock(spec: dict[str, Any], abi: int, status: dict[str, Any]) -> None:
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, _NET_ALL if abi >= 4 else 0, _SCOPE_ALL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = _libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {_errno_text()}")
    read = _FS["execute"] | _FS["read_file"] | _FS["read_dir"]
    write = handled  # everything handled, under the writable folders
    rules = [(p, read) for p in spec["read"]] + [(p, write) for p in spec["write"]]
    for path, rights in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a read root this machine does not have
        try:
            allowed = rights & handled
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                allowed &= _FILE_ONLY
            rule = _PathBeneath(allowed, fd)
            if _libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}: {_errno_text()}")
        finally:
            os.close(fd)
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), f"no_new_privs: {_errno_text()}")
    if _libc.syscall(_SYS_RESTRICT, ruleset, 0):
        raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {_errno_text()}")
    os.close(ruleset)
    status["landlock_fs"] = True
    status["landlock_net"] = abi >= 4
    status["landlock_scope"] = abi >= 6


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _namespaces(status: dict[str, Any]) -> bool:
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID
    if _libc.unshare(flags) != 0:
        status["namespaces_error"] = _errno_text()
        return False
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError as exc:
        status["namespaces_error"] = f"id maps: {exc}"
    if _libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        status["namespaces_error"] = f"private mounts: {_errno_text()}"
        return False
    status["user_namespace"] = status["network_namespace"] = status["pid_namespace"] = True
    return True


def _mount(
    source: bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    if _libc.mount(source, os.fsencode(target), fstype, flags, data) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {_errno_text()}")


def _mask(paths: list[str]) -> None:
    """An empty read-only folder over each protected folder, ``/dev/null`` over each file."""
    for path in paths:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            continue  # a link is not followed by the workspace's tools; its target is ruled
        flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        if stat.S_ISDIR(mode):
            _mount(b"tmpfs", path, b"tmpfs", flags, b"size=4k,mode=555")
        else:
            _mount(b"/dev/null", path, None, _MS_BIND, None)
            _mount(None, path, None, _MS_BIND | _MS_REMOUNT | flags, None)


def _limits(spec: dict[str, Any]) -> None:
    limits = spec["limits"]
    pairs = [
        (resource.RLIMIT_CPU, int(limits["cpu_s"])),
        (resource.RLIMIT_AS, int(limits["memory_bytes"])),
        (resource.RLIMIT_FSIZE, int(limits["file_bytes"])),
        (resource.RLIMIT_NPROC, int(limits["processes"])),
        (resource.RLIMIT_NOFILE, int(limits["open_files"])),
        (resource.RLIMIT_CORE, 0),
    ]
    for kind, value in pairs:
        # the hard limit too, so the command cannot raise it back
        hard = value + 1 if kind == resource.RLIMIT_CPU else value
        resource.setrlimit(kind, (value, hard))


def _become_init(status: dict[str, Any], status_fd: int) -> None:
    """In a new PID namespace: fork; the child goes on as its PID 1 (the command will run there,
    and every process it starts dies with it; it also dies with this launcher) and gets its
    own ``/proc``, showing only its own processes; the launcher waits and relays the exit
    status. Without a PID namespace, nothing."""
    if not status["pid_namespace"]:
        return
    pid = os.fork()
    if pid == 0:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        try:
            flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
            _mount(b"proc", "/proc", b"proc", flags, None)
            status["private_proc"] = True
        except OSError as exc:
            status["private_proc_error"] = str(exc)
        return
    os.close(status_fd)  # the child reports
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: os.kill(pid, signal.SIGKILL))
    while True:
        try:
            _, code = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(125)
    if os.WIFSIGNALED(code):
        signal.signal(os.WTERMSIG(code), signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), os.WTERMSIG(code))
    os._exit(os.WEXITSTATUS(code) if os.WIFEXITED(code) else 125)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        sys.stderr.write(f"sandbox: cannot run {argv[0]!r}: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(127 if exc.errno == errno.ENOENT else 126)


def main() -> None:
    spec = json.loads(sys.argv[1])
    status: dict[str, Any] = {
        "landlock_fs": False,
        "landlock_net": False,
        "landlock_scope": False,
        "user_namespace": False,
        "network_namespace": False,
        "pid_namespace": False,
        "private_proc": False,
        "masked": 0,
        "rlimits": False,
    }
    required = set(spec.get("require", ()))
    status_fd = int(spec["status_fd"])
    in_ns = _namespaces(status) if spec.get("namespaces", True) else False
    if in_ns:
        _become_init(status, status_fd)  # from here on: PID 1 of the new namespace
    masks = spec.get("mask", [])
    if masks:
        if not in_ns:
            if "mask" in required:
                _fail(
                    "protected paths in the workspace cannot be hidden (no user namespaces: "
                    f"{status.get('namespaces_error', 'disabled')})"
                )
        else:
            try:
                _mask(masks)
                status["masked"] = len(masks)
            except OSError as exc:
                if "mask" in required:
                    _fail(f"protected paths cannot be hidden: {exc}")
    if "namespaces" in required and not in_ns:
        _fail(f"namespaces unavailable: {status.get('namespaces_error')}")
    abi = landlock_abi()
    status["landlock_abi"] = abi
    if abi:
        try:
            _landlock(spec, abi, status)
        except OSError as exc:
            status["landlock_error"] = str(exc)
    if "landlock" in required and not status["landlock_fs"]:
        _fail(
            "the file system cannot be confined (Landlock unavailable: "
            f"{status.get('landlock_error', 'kernel without Landlock')})"
        )
    if "network" in required and not (status["network_namespace"] or status["landlock_net"]):
        _fail("the network cannot be cut off (no network namespace and no Landlock ABI 4)")
    try:
        _limits(spec)
        status["rlimits"] = True
    except (OSError, ValueError) as exc:
        _fail(f"resource limits: {exc}")
    os.chdir(spec["cwd"])
    os.write(status_fd, (json.dumps(status) + "\n").encode())
    os.close(status_fd)
    _exec(spec["argv"], {str(k): str(v) for k, v in spec["env"].items()})


if __name__ == "__main__":
    main()
