"""The policy applied to effects: paths, URLs, addresses, writes and processes.

Owns :class:`PathRules` (where a real path falls: the workspace with its protected patterns,
the agent's own files, declared resources such as the memory store, the read-only runtime, or
nowhere allowed), :class:`NetRules` (which URLs and which resolved addresses a call may reach)
and :class:`CallGuard`, the :class:`~agentcore.tools.EffectGuard` of one tool call: the same
rules the safety filter checks before a call runs, checked again at the moment of each effect
through the interpreter's audit events, with the tool object's declared side effects (a tool
that declared ``reads`` cannot write, one without ``network`` cannot connect, one without
``executes`` cannot start a process). Every refusal is kept for the audit log.

Never runs a tool and never widens the policy.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import site
import socket
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from agentcore.agent._policy import Policy
from agentcore.agent._redact import Redactor
from agentcore.tools import SandboxLimits, SandboxRules, SideEffect, Tool
from agentcore.tools._effects import EffectDenied
from agentcore.tools.builtin import HostAllowlist

__all__ = ["CallGuard", "NetRules", "PathRules", "iter_strings", "iter_urls"]

_URL_ANYWHERE = re.compile(r"(?i)(?<![A-Za-z0-9+.-])(?:[a-z][a-z0-9+.-]*:)?//[^\s\"'<>]+")
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_MAX_SCAN = 100_000  # entries of a workspace scanned for protected paths before a child runs
_SYSTEM_READ = (
    "/usr/share/zoneinfo",
    "/usr/share/ca-certificates",
    "/etc/ssl",
    "/etc/pki",
    "/usr/lib/ssl",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/localtime",
    "/etc/mime.types",
    "/dev/null",
    "/dev/urandom",
    "/dev/random",
    "/proc/self",
    f"/proc/{os.getpid()}",
)


def iter_strings(value: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every ``(key, string)`` inside a JSON-like value: values, dict keys, list items."""
    if depth > 32:
        return
    if isinstance(value, str):
        yield "", value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield "", str(key)
            for _, text in iter_strings(item, depth + 1):
                yield str(key), text
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_strings(item, depth + 1)


def iter_urls(text: str) -> Iterator[str]:
    """URL-like substrings of ``text`` (any scheme, scheme-relative ``//host``, leading
    whitespace or text around them)."""
    for match in _URL_ANYWHERE.finditer(text):
        yield match.group(0)


def _runtime_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM_READ}
    try:
        roots.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - virtualenv's old site module
        pass
    package = Path(__file__).resolve().parent.parent  # the agentcore folder (this file's parent)
    roots.add(str(package))
    for child in package.iterdir():  # tools/, memory/... are links to top-level folders
        if child.is_dir():
            roots.add(str(child))
    return sorted({os.path.realpath(r) for r in roots})


_RUNTIME: list[str] | None = None


class PathRules:
    """Classifies real paths for one agent. ``resources``: folders the agent's own tools keep
    data in (the memory store); ``home`` and ``audit`` are never reachable by a tool."""

    def __init__(
        self,
        policy: Policy,
        *,
        audit: Path | None = None,
        home: Path | None = None,
        resources: Iterable[Path] = (),
    ) -> None:
        global _RUNTIME
        if _RUNTIME is None:
            _RUNTIME = _runtime_roots()
        self.workspace = os.path.realpath(policy.workspace) if policy.workspace else None
        self.audit = os.path.realpath(audit) if audit is not None else None
        self.patterns = tuple(p.lower() for p in policy.protected_paths)
        # a pattern without "/" protects any component; "dir/*" protects dir and below;
        # other patterns with "/" match a leading part of the path
        parts_re: list[str] = []
        prefix_re: list[str] = []
        for pattern in self.patterns:
            base = pattern[:-2] if pattern.endswith("/*") else pattern
            (prefix_re if "/" in base else parts_re).append(fnmatch.translate(base))
            prefix_re.append(fnmatch.translate(pattern))
        self._parts = re.compile("|".join(parts_re)) if parts_re else None
        self._prefix = re.compile("|".join(prefix_re)) if prefix_re else None
        roots: dict[str, str] = {r: "runtime" for r in _RUNTIME}
        if home is not None:
            roots[os.path.realpath(home)] = "home"
        roots.update({os.path.realpath(r): "resource" for r in resources})
        if self.workspace is not None:
            roots[self.workspace] = "workspace"
        # the deepest root that contains a path decides (a workspace inside home is usable,
        # a home inside the workspace is not)
        self.roots = roots
        self._cache: dict[tuple[str, bool], tuple[str, str] | None] = {}

    def root_kind(self, real: str) -> str | None:
        """What the deepest configured root holding ``real`` is (``workspace``, ``home``,
        ``resource``, ``runtime``), or None."""
        path = real
        while True:
            kind = self.roots.get(path)
            if kind is not None:
                return kind
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent

    def protected(self, rel: str) -> str | None:
        """The protected pattern ``rel`` (workspace-relative) falls under, or None. A pattern
        ``dir/*`` protects ``dir`` itself; a pattern without ``/`` protects any component
        (and everything under it); matching ignores case."""
        rel = rel.lower()
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        hit = False
        if self._parts is not None and any(self._parts.match(p) for p in parts):
            hit = True
        elif self._prefix is not None:
            hit = any(self._prefix.match("/".join(parts[: i + 1])) for i in range(len(parts)))
        if not hit:
            return None
        for pattern in self.patterns:  # name the pattern (only on a hit)
            base = pattern[:-2] if pattern.endswith("/*") else pattern
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if fnmatch.fnmatchcase(rel, pattern) or any(
                fnmatch.fnmatchcase(p, base) for p in (prefixes if "/" in base else parts)
            ):
                return pattern
        return "(protected)"

    def classify(self, real: str, *, write: bool) -> tuple[str, str] | None:
        """``(rule, reason)`` when ``real`` (absolute, symlinks resolved) may not be touched."""
        key = (real, write)
        if key in self._cache:
            return self._cache[key]
        found = self._classify(real, write)
        if len(self._cache) > 8192:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _classify(self, real: str, write: bool) -> tuple[str, str] | None:
        if self.audit is not None and (real == self.audit or real.startswith(self.audit + ".")):
            return "effect.audit", "the audit log is never reachable by a tool"
        kind = self.root_kind(real)
        if kind == "workspace":
            assert self.workspace is not None
            rel = "." if real == self.workspace else real[len(self.workspace) + 1 :]
            pattern = self.protected(rel)
            if pattern is not None:
                return "protected_paths", f"{rel!r} matches the protected pattern {pattern!r}"
            return None
        if kind == "resource":
            return None
        if kind == "runtime" and not write:
            return None
        if kind == "home":
            return "effect.home", "the agent's own state is not reachable by a tool"
        what = "write" if write else "read"
        return "workspace", f"{what} outside the workspace: {real!r}"

    def check(self, path: str, *, write: bool) -> tuple[str, str] | None:
        """Both the path as written (absolute) and its real target must be allowed."""
        absolute = os.path.abspath(path)
        real = os.path.realpath(absolute)
        found = self.classify(real, write=write)
        if found is None and absolute != real:
            found = self.classify(absolute, write=write)
        return found


def _is_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class NetRules:
    """URLs and resolved addresses for one policy. A private, loopback, link-local, metadata,
    shared (100.64/10) or otherwise non-global address is reachable only when
    ``allowed_networks`` contains it, or, when the tool asked for the address itself (not
    for a name), an ``allowed_hosts`` entry names that address literally. A name, exact or
    matched by a ``*.domain`` wildcard, never reaches such an address through a literal
    entry: whatever a name resolves to is checked as reached ``named``. A public address is
    reachable only when it is an address of an allowed host (any public address when the list
    has ``*.domain`` wildcards, which cannot be resolved ahead)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.hosts = HostAllowlist(policy.allowed_hosts) if policy.allowed_hosts else None
        self.networks = tuple(
            ipaddress.ip_network(n, strict=False) for n in policy.allowed_networks
        )
        self.literal: dict[Any, set[int | None]] = {}
        self.names: list[tuple[str, int | None]] = []
        self.wildcard = False
        for entry in policy.allowed_hosts:
            text = entry.strip().lower()
            host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
            port_n = int(port) if port.isdigit() else None
            ip = _is_ip(host)
            if ip is not None:
                self.literal.setdefault(ip, set()).add(port_n)
            elif host.startswith("*."):
                self.wildcard = True
            else:
                self.names.append((host, port_n))
        self._resolved: set[Any] | None = None

    def url(self, raw: str) -> tuple[str, str] | None:
        """``(rule, reason)`` when ``raw`` may not be fetched."""
        text = raw.strip()
        if text.startswith("//"):
            text = "http:" + text
        try:
            url = httpx.URL(text)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            return "network", f"not a valid URL ({exc})"
        if url.scheme not in ("http", "https"):
            return "network", f"scheme {url.scheme!r} is not allowed (http and https only)"
        if url.userinfo:
            return "network", "credentials in URLs are not allowed"
        if self.hosts is None or not self.hosts.allows(url):
            allowed = ", ".join(self.policy.allowed_hosts) or "(none)"
            return "network", f"host {url.host!r} is not allowed; allowed hosts: {allowed}"
        ip = _is_ip(url.host)
        if ip is not None:
            return self.address(str(ip), url.port or (443 if url.scheme == "https" else 80))
        return None

    def _special(self, ip: Any) -> bool:
        return bool(
            ip in _METADATA
            or ip.is_loopback
            or ip.is_private
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            or not ip.is_global  # shared 100.64/10, documentation and benchmark ranges...
            or (ip.version == 6 and ip.ipv4_mapped is not None)
        )

    def _allowed_public(self) -> set[Any]:
        if self._resolved is None:
            found: set[Any] = set()
            for host, port in self.names:
                try:
                    infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
                except OSError:
                    continue
                found.update(ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos)
            self._resolved = found
        return self._resolved

    def name(self, host: str, port: int | None) -> tuple[str, str] | None:
        """``(rule, reason)`` when ``host`` (a name) resolves to an address that may not be
        reached through a name. A name that does not resolve is not refused here: the tool's
        own lookup fails the same way."""
        try:
            infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        for info in infos:
            found = self.address(str(info[4][0]), port, named=True)
            if found is not None:
                return found[0], f"{host!r} resolves to {found[1]}"
        return None

    def address(
        self, host: str, port: int | None, *, named: bool = False
    ) -> tuple[str, str] | None:
        """``(rule, reason)`` when a connection to ``host`` (an address; a name is resolved and
        every address checked as ``named``) on ``port`` is refused. ``named``: the address
        came from resolving a name, so a literal ``allowed_hosts`` entry does not admit it
        when it is special (only ``allowed_networks`` does)."""
        ip = _is_ip(host)
        if ip is None:
            try:
                infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
            except OSError as exc:
                return "network.address", f"{host!r} does not resolve ({exc})"
            for info in infos:
                found = self.address(str(info[4][0]), port, named=True)
                if found is not None:
                    rule, reason = found
                    return rule, f"{host!r} resolves to {reason}"
            return None
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.networks):
            return None
        special = self._special(ip)
        ports = self.literal.get(ip)
        if ports is not None and (None in ports or port in ports) and not (named and special):
            return None
        if special:
            through = (
                " through a name (only allowed_networks admits it)"
                if named and ports is not None
                else ""
            )
            return (
                "network.address",
                f"address {ip} is loopback, private, link-local or metadata; the policy does "
                f"not allow it{through}",
            )
        if self.hosts is None:
            return "network.address", f"address {ip}: the policy allows no network hosts"
        if self.wildcard or ip in self._allowed_public():
            return None
        return "network.address", f"address {ip} is not an address of an allowed host"


class CallGuard:
    """The :class:`~agentcore.tools.EffectGuard` of one call of ``tool``."""

    def __init__(
        self,
        tool: Tool,
        paths: PathRules,
        net: NetRules,
        redactor: Redactor | None,
        *,
        policy: Policy | None = None,
        time_left: float | None = None,
    ) -> None:
        self.tool = tool
        self.policy = policy
        self.time_left = time_left
        self.name = tool.name
        effects = tool.side_effects
        self.may_read = bool(effects & {SideEffect.READS, SideEffect.WRITES, SideEffect.EXECUTES})
        self.may_write = bool(effects & {SideEffect.WRITES, SideEffect.EXECUTES})
        self.may_connect = SideEffect.NETWORK in effects
        self.may_execute = SideEffect.EXECUTES in effects
        self.paths = paths
        self.net = net
        self.redactor = redactor
        self.denials: list[tuple[str, str]] = []
        self._reads: dict[str, tuple[str, str] | None] = {}
        # whether the call's latest name lookup was for a name (not an address): the next
        # connection is then taken as reached through a name (a literal entry cannot admit a
        # special address for it, even when the resolver answers differently the second time)
        self._named = False

    def _deny(self, rule: str, reason: str) -> EffectDenied:
        self.denials.append((rule, reason))
        return EffectDenied(self.name, rule, reason)

    def _path_problem(self, path: str, write: bool) -> tuple[str, str] | None:
        if write and not self.may_write:
            return "effect.undeclared", f"tool {self.name!r} did not declare writes"
        found = self.paths.check(path, write=write)
        if found is not None or write or self.may_read:
            return found
        # a tool that declared no reads may still read the interpreter's own files (lazy
        # imports, time zones, certificates), nothing else
        if self.paths.root_kind(os.path.realpath(path)) == "runtime":
            return None
        return "effect.undeclared", f"tool {self.name!r} did not declare reads"

    def _checked(self, path: str, write: bool) -> tuple[str, str] | None:
        if write:  # a write is checked at its moment, every time
            return self._path_problem(path, write)
        # a read checked moments ago in the same call (a walk's visibility test, then the
        # open) is not resolved twice
        if path not in self._reads:
            if len(self._reads) > 4096:
                self._reads.clear()
            self._reads[path] = self._path_problem(path, write)
        return self._reads[path]

    def path(self, path: str, *, write: bool, event: str) -> None:
        found = self._checked(path, write)
        if found is not None:
            raise self._deny(found[0], f"{event} {found[1]}")

    def path_allowed(self, path: str, *, write: bool) -> bool:
        return self._checked(path, write) is None

    def address(self, host: str, port: int | None, *, event: str) -> None:
        if not self.may_connect:
            raise self._deny("effect.undeclared", f"tool {self.name!r} did not declare network")
        found = self.net.address(host, port, named=self._named)
        if found is not None:
            raise self._deny(*found)

    def lookup(self, host: str, port: int | None, *, event: str) -> None:
        """A host is about to be resolved (``socket.getaddrinfo``) or fetched (a URL a tool
        checks): when it is a name, every address it resolves to must be reachable through a
        name, before any connection is attempted, and the next connection counts as made
        through a name."""
        if not self.may_connect:
            return  # the connection itself is refused (effect.undeclared)
        self._named = _is_ip(host) is None
        if self._named:
            found = self.net.name(host, port)
            if found is not None:
                raise self._deny(*found)

    def url(self, url: str) -> None:
        found = self.net.url(url)
        if found is not None:
            raise self._deny(found[0], f"{url!r}: {found[1]}")
        # an async client resolves in a worker thread the guard does not see: the name is
        # checked here, and the connection that follows counts as made through a name
        parsed = httpx.URL(url.strip())
        self.lookup(parsed.host, parsed.port, event="url")

    def content(self, path: str, text: str, start: int) -> None:
        if self.redactor is None:
            return
        spans = self.redactor.spans(text)
        if any(end > start for _, end in spans):
            raise self._deny("secrets", "the written text would contain a secret")

    def process(self, event: str, detail: str, *, sandboxed: bool = False) -> None:
        if not self.may_execute:
            raise self._deny(
                "effect.undeclared", f"tool {self.name!r} did not declare executes ({event})"
            )
        if not sandboxed and not (self.policy is not None and self.policy.unsandboxed_processes):
            raise self._deny(
                "effect.sandbox",
                f"tool {self.name!r} started a process outside the sandbox ({event}); tools run "
                "commands through agentcore.tools.run_sandboxed",
            )

    def sandbox(self, workspace: str) -> SandboxRules:
        """The rules of a child process the call starts in ``workspace``: the policy's limits
        within the run's remaining time, every protected path under it masked, the agent's
        own files masked where they lie inside it."""
        if not self.may_execute:
            raise self._deny(
                "effect.undeclared", f"tool {self.name!r} did not declare executes (sandbox)"
            )
        real = os.path.realpath(workspace)
        found = self.paths.check(real, write=True)
        if found is None and self.paths.root_kind(real) != "workspace":
            found = ("workspace", f"a child process may only run in the workspace, not {real!r}")
        if found is not None:
            raise self._deny(found[0], f"sandbox: {found[1]}")
        policy = self.policy
        limits = policy.sandbox_limits if policy is not None else SandboxLimits()
        require = policy.sandbox_require if policy is not None else frozenset()
        mask, complete = self._protected_under(real)
        if not complete and "mask" in require:
            raise self._deny(
                "effect.sandbox",
                f"the workspace has over {_MAX_SCAN} entries; protected paths cannot all be "
                "found before the child runs",
            )
        return SandboxRules(limits=limits.within(self.time_left), mask=mask, require=require)

    def _protected_under(self, root: str) -> tuple[tuple[str, ...], bool]:
        """Protected entries under ``root`` (not descending into them) plus the agent's own
        files (home, audit log, resources) that lie inside; False when the scan was cut."""
        found: list[str] = []
        own = [p for p in (self.paths.audit, *self.paths.roots) if p]
        for path in own:
            kind = self.paths.roots.get(path)
            own_file = kind in ("home", "resource") or path == self.paths.audit
            if own_file and path != root and path.startswith(root + os.sep):
                found.append(path)
        workspace = self.paths.workspace or root
        stack, seen = [root], 0
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if seen > _MAX_SCAN:
                    return tuple(found), False
                rel = os.path.relpath(entry.path, workspace)
                if self.paths.protected(rel) is not None:
                    found.append(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
        return tuple(sorted(set(found))), True
