"""The sandbox launcher: confine this process, then become the command it was asked to run.

Run by :func:`agentcore.tools.run_sandboxed` as ``python -I -S _sandbox_child.py SPEC``, a
fresh single-threaded interpreter that imports nothing but the standard library. ``SPEC`` is
a JSON object; in order, the launcher

1. enters new user, mount, network and PID namespaces (unprivileged; skipped where the kernel
   or the container refuses them), so the command has no network but a loopback that is down;
   forks, and goes on as PID 1 of the new namespace with its own ``/proc`` (other processes of
   the machine are not visible), so every process the command starts dies with it, while the
   first launcher process waits and relays the exit status;
2. when it runs as root, becomes a user of its own: a helper forked before the namespace was
   made (still root outside) maps the namespace's uid 0 to :data:`SANDBOX_UID` and the
   outside root to uid 1, and the launcher switches to that uid 0. The command is still root
   *inside* (its files keep working, the workspace stays writable), but outside it is an
   ordinary user, so the kernel enforces ``RLIMIT_NPROC`` on it: the exemption for root
   (``INIT_USER`` or ``CAP_SYS_RESOURCE`` in the first namespace) no longer applies. The count
   is per user *and* namespace (ucounts), so sandboxes do not share it. ``CAP_SETUID`` and
   ``CAP_SETGID`` leave the bounding set, so the command cannot switch back to the outside
   root (uid 1 inside) to escape the count. Without that helper (not root, or the map is
   refused) the launcher maps its own uid, and the limit holds as it does for any non-root
   user, except for root, where ``process_limit`` is reported false;
3. masks the paths it was given (protected files and folders inside the workspace) with an
   empty read-only folder or ``/dev/null``;
4. restricts the file system with Landlock: read and execute under the runtime's folders,
   read/write only under the workspace and a private temporary folder, nothing else; TCP
   connect and bind refused (Landlock ABI 4+); signals and abstract sockets scoped (ABI 6+);
5. sets resource limits (CPU seconds, address space, file size, processes, open files, no
   core files) and ``no_new_privs``;
6. installs a seccomp-BPF filter (:func:`seccomp_program`, x86_64 and aarch64): a system call
   of another architecture (i386 ``int 0x80``, ARM32 compat, the x32 ABI bit) kills the
   process; the calls in :data:`DENIED` fail with ``EPERM``; ``clone`` with a namespace flag
   fails with ``EPERM``; ``clone3`` (whose flags sit behind a pointer the filter cannot read)
   fails with ``ENOSYS`` so the C library falls back to ``clone``; ``personality`` accepts only
   the harmless personas. Everything else is allowed: the filter is a deny list for the calls
   a confined command never needs and that widen the kernel's attack surface, not an allow
   list (a shell, Python and the usual tools run unchanged);
7. writes one JSON status line (which layers took effect) to the status descriptor, closes
   it and executes the command with a clean environment in the workspace.

The deny list, and why each entry (none of them is needed by a command that works on files in
its workspace; several have been the way out of containers or the start of kernel exploits):

- other processes: ``ptrace``, ``process_vm_readv``/``writev``, ``kcmp``, ``pidfd_getfd``
  (read or write another process's memory or descriptors);
- the mount table and the root: ``mount``, ``umount2``, ``pivot_root``, ``chroot`` and the new
  mount API (``open_tree``, ``move_mount``, ``fsopen``, ``fsconfig``, ``fsmount``, ``fspick``,
  ``mount_setattr``): the masks and Landlock's view of the tree must stay as they are;
- new namespaces: ``unshare``, ``setns``, namespace flags of ``clone``, ``clone3``: a nested
  user namespace hands back every capability and a large kernel surface (most user-namespace
  privilege escalations start there);
- the kernel itself: ``kexec_load``, ``kexec_file_load``, ``init_module``, ``finit_module``,
  ``delete_module``, ``reboot``, ``swapon``, ``swapoff``, ``acct``, ``quotactl``,
  ``quotactl_fd``, ``syslog`` (kernel log), ``iopl``/``ioperm`` (x86 port I/O), ``uselib``,
  ``lookup_dcookie``, ``vhangup``, ``sethostname``/``setdomainname`` (the host's UTS
  namespace is shared);
- the clock: ``settimeofday``, ``clock_settime``, ``clock_adjtime``, ``adjtimex`` (the time
  namespace is shared; the clock is everyone's);
- large attack surfaces a command does not need: ``bpf``, ``perf_event_open``,
  ``userfaultfd`` (stalls kernel copies at will: the classic race widener), ``io_uring_setup``/
  ``enter``/``register`` (bypasses the per-call filter and has a long exploit history),
  ``keyctl``/``add_key``/``request_key`` (kernel keyrings are not namespaced by mount or
  network), ``fanotify_init``;
- file handles: ``open_by_handle_at`` (opens a file by inode, around any path-based rule: the
  "shocker" container escape) and ``name_to_handle_at``;
- ``personality`` except ``PER_LINUX``, ``PER_LINUX32``, ``UNAME26`` and the query: flags such
  as ``ADDR_NO_RANDOMIZE`` or ``READ_IMPLIES_EXEC`` turn off exploit mitigations.

A layer the spec marks as required that cannot be applied ends the launcher with status 126
and the reason on stderr before the command ever runs. Never imports agentcore and never
decides anything: the caller's policy chose the paths, the limits and the required layers.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import stat
import struct
import sys
import time
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
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _PR_SET_SECCOMP = 1, 38, 24, 22
_CAP_SETGID, _CAP_SETUID = 6, 7

SANDBOX_UID = 2_147_000_000
"""The uid (outside) of a command run by a root launcher: root inside its namespace, an
ordinary user to the kernel's process count. Chosen far above any real account's uid."""

# seccomp (include/uapi/linux/seccomp.h, filter.h, audit.h)
_SECCOMP_MODE_FILTER = 2
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data; arg0's low word (little endian)
_X32_BIT = 0x40000000
_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # LINUX, LINUX32, UNAME26, both, query

DENIED = (
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # the mount table and the root
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    # new namespaces (clone's namespace flags and clone3: below)
    "unshare", "setns",
    # the kernel itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "iopl", "ioperm",
    "uselib", "lookup_dcookie", "vhangup", "sethostname", "setdomainname",
    # the clock
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    # large attack surfaces
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "fanotify_init",
    # file handles
    "open_by_handle_at", "name_to_handle_at",
)  # fmt: skip
"""System calls that fail with EPERM in the sandbox (see the module docstring for why)."""

# machine -> (AUDIT_ARCH, {name: number}) from asm/unistd_64.h and asm-generic/unistd.h
_X86_64 = dict(
    ptrace=101, process_vm_readv=310, process_vm_writev=311, kcmp=312, pidfd_getfd=438,
    mount=165, umount2=166, pivot_root=155, chroot=161, move_mount=429, open_tree=428,
    fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442, unshare=272,
    setns=308, kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
    delete_module=176, reboot=169, swapon=167, swapoff=168, acct=163, quotactl=179,
    quotactl_fd=443, syslog=103, iopl=172, ioperm=173, uselib=134, lookup_dcookie=212,
    vhangup=153, sethostname=170, setdomainname=171, settimeofday=164, clock_settime=227,
    clock_adjtime=305, adjtimex=159, bpf=321, perf_event_open=298, userfaultfd=323,
    io_uring_setup=425, io_uring_enter=426, io_uring_register=427, keyctl=250, add_key=248,
    request_key=249, fanotify_init=300, open_by_handle_at=304, name_to_handle_at=303,
    clone=56, clone3=435, personality=135,
)  # fmt: skip
_AARCH64 = dict(
    ptrace=117, process_vm_readv=270, process_vm_writev=271, kcmp=272, pidfd_getfd=438,
    mount=40, umount2=39, pivot_root=41, chroot=51, move_mount=429, open_tree=428, fsopen=430,
    fsconfig=431, fsmount=432, fspick=433, mount_setattr=442, unshare=97, setns=268,
    kexec_load=104, kexec_file_load=294, init_module=105, finit_module=273, delete_module=106,
    reboot=142, swapon=224, swapoff=225, acct=89, quotactl=60, quotactl_fd=443, syslog=116,
    lookup_dcookie=18, vhangup=58, sethostname=161, setdomainname=162, settimeofday=170,
    clock_settime=112, clock_adjtime=266, adjtimex=171, bpf=280, perf_event_open=241,
    userfaultfd=282, io_uring_setup=425, io_uring_enter=426, io_uring_register=427, keyctl=219,
    add_key=217, request_key=218, fanotify_init=262, open_by_handle_at=265,
    name_to_handle_at=264, clone=220, clone3=435, personality=92,
)  # fmt: skip
ARCHES = {"x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _AARCH64)}

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


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.c_void_p)]


Insn = tuple[int, int, int, int]  # (code, jt, jf, k): one classic BPF instruction


def seccomp_program(machine: str) -> list[Insn]:
    """The filter for ``machine`` (``os.uname().machine``): foreign architectures (and on
    x86_64 the x32 bit) killed, :data:`DENIED` and namespace-making ``clone`` refused with
    EPERM, ``clone3`` with ENOSYS, unsafe ``personality`` flags with EPERM, the rest allowed.
    Raises KeyError for a machine without a table."""
    arch, table = ARCHES[machine]
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    prog: list[Insn] = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 1, 0, arch),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if machine == "x86_64":
        prog += [(_JGE_K, 0, 1, _X32_BIT), (_RET_K, 0, 0, _RET_KILL_PROCESS)]
    for name in DENIED:
        if name in table:  # (iopl, ioperm and uselib exist on x86_64 only)
            prog += [(_JEQ_K, 0, 1, table[name]), (_RET_K, 0, 0, eperm)]
    prog += [
        (_JEQ_K, 0, 4, table["clone"]),
        (_LD_W_ABS, 0, 0, _OFF_ARG0),
        (_JSET_K, 0, 1, _NS_FLAGS),
        (_RET_K, 0, 0, eperm),
        (_RET_K, 0, 0, _RET_ALLOW),
        (_JEQ_K, 0, 1, table["clone3"]),
        (_RET_K, 0, 0, enosys),
        (_JEQ_K, 0, 2 + len(_PERSONAS), table["personality"]),
        (_LD_W_ABS, 0, 0, _OFF_ARG0),
    ]
    for i, persona in enumerate(_PERSONAS):
        prog.append((_JEQ_K, len(_PERSONAS) - i, 0, persona))  # -> the ALLOW below
    prog += [(_RET_K, 0, 0, eperm), (_RET_K, 0, 0, _RET_ALLOW)]
    return prog


def _seccomp(status: dict[str, Any]) -> None:
    """Install :func:`seccomp_program` for this machine (``no_new_privs`` first)."""
    machine = os.uname().machine
    try:
        prog = seccomp_program(machine)
    except KeyError:
        raise OSError(errno.ENOSYS, f"no seccomp table for {machine}") from None
    # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}, packed in one buffer
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in prog)
    insns = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.addressof(insns))
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), f"no_new_privs: {_errno_text()}")
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0):
        raise OSError(ctypes.get_errno(), f"seccomp: {_errno_text()}")
    status["seccomp"] = True
    status["seccomp_instructions"] = len(prog)


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


def _map_helper() -> tuple[int, int] | None:
    """Fork a helper that stays root outside: when told (a byte on the pipe), it writes this
    process's uid and gid maps (uid 0 inside = :data:`SANDBOX_UID`, the outside root = uid 1
    inside, so root-owned files stay mapped) and exits 0. ``(pid, write end)``; None when
    the launcher is not root (an unprivileged process may only map its own uid)."""
    if os.getuid() != 0:
        return None
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_fd)
        try:
            if os.read(read_fd, 1) != b"1" or os.getppid() != parent:
                os._exit(1)
            _write(f"/proc/{parent}/uid_map", f"0 {SANDBOX_UID} 1\n1 0 1\n")
            _write(f"/proc/{parent}/setgroups", "deny")
            _write(f"/proc/{parent}/gid_map", "0 0 1\n")
        except OSError:
            os._exit(1)
        os._exit(0)
    os.close(read_fd)
    return pid, write_fd


def _namespaces(status: dict[str, Any]) -> bool:
    uid, gid = os.getuid(), os.getgid()
    helper = _map_helper()
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID
    failed = _libc.unshare(flags) != 0
    if failed:
        status["namespaces_error"] = _errno_text()
    mapped = False
    if helper is not None:
        pid, go = helper
        os.write(go, b"0" if failed else b"1")
        os.close(go)
        _, code = os.waitpid(pid, 0)
        mapped = not failed and os.WIFEXITED(code) and os.WEXITSTATUS(code) == 0
    if failed:
        return False
    if mapped:
        # become the namespace's root, which outside is SANDBOX_UID, not the real root
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    else:
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            status["namespaces_error"] = f"id maps: {exc}"
    # root outside is exempt from RLIMIT_NPROC; any other user (SANDBOX_UID included) is not
    status["process_limit"] = mapped or uid != 0
    status["uid_outside"] = SANDBOX_UID if mapped else uid
    if _libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        status["namespaces_error"] = f"private mounts: {_errno_text()}"
        return False
    status["user_namespace"] = status["network_namespace"] = status["pid_namespace"] = True
    return True


def _drop_setid() -> None:
    """``CAP_SETUID`` and ``CAP_SETGID`` out of the bounding set: the command (root in its
    namespace) cannot become uid 1 there, the outside root, whom RLIMIT_NPROC exempts."""
    for cap in (_CAP_SETUID, _CAP_SETGID):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0):
            raise OSError(ctypes.get_errno(), f"capability bounding set: {_errno_text()}")


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
        "process_limit": False,
        "seccomp": False,
    }
    required = set(spec.get("require", ()))
    status_fd = int(spec["status_fd"])
    in_ns = _namespaces(status) if spec.get("namespaces", True) else False
    if not in_ns:  # RLIMIT_NPROC binds every user but root (counted over all its processes)
        status["process_limit"] = os.getuid() != 0
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
    if in_ns:
        try:
            _drop_setid()
        except OSError as exc:
            status["process_limit"] = False
            status["process_limit_error"] = str(exc)
    if "processes" in required and not status["process_limit"]:
        _fail(
            "the process count cannot be limited (root outside a user namespace of its own: "
            f"{status.get('process_limit_error') or status.get('namespaces_error') or 'no map'})"
        )
    if spec.get("seccomp", True):
        try:
            started = time.perf_counter()
            _seccomp(status)
            status["seccomp_install_us"] = round((time.perf_counter() - started) * 1e6)
        except OSError as exc:
            status["seccomp_error"] = str(exc)
    if "seccomp" in required and not status["seccomp"]:
        _fail(f"system calls cannot be filtered: {status.get('seccomp_error', 'seccomp off')}")
    os.chdir(spec["cwd"])
    os.write(status_fd, (json.dumps(status) + "\n").encode())
    os.close(status_fd)
    _exec(spec["argv"], {str(k): str(v) for k, v in spec["env"].items()})


if __name__ == "__main__":
    main()
