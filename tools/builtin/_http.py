"""HTTP GET for the agent, limited to an allowlist of hosts.

Owns :class:`HostAllowlist` (which URLs may be fetched: exact hosts, ``*.domain`` wildcards,
optional ports; http/https only; no credentials in URLs) and :func:`http_get_tool`, an httpx
GET that checks every redirect hop against the allowlist and stops reading at a byte limit.
The tool's ``url`` parameter carries a pattern built from the allowlist, so under constrained
decoding the model can only write URLs of allowed hosts. Never sends anything but GET, never
sends cookies or credentials, never follows a redirect to a host that is not allowed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Annotated, Any

import httpx
from pydantic import ConfigDict, Field, create_model

from agentcore.tools._errors import ToolExecutionError
from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._tool import Tool

__all__ = ["HostAllowlist", "HostNotAllowedError", "http_get_tool"]

_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "+json", "+xml")


class HostNotAllowedError(ToolExecutionError):
    """The URL (or a redirect) points at a host outside the allowlist."""

    def __init__(self, url: str, allowlist: HostAllowlist) -> None:
        super().__init__(
            "http_get",
            f"{url!r} is not allowed; allowed hosts: {', '.join(allowlist.entries) or '(none)'}",
        )


@dataclasses.dataclass(frozen=True)
class _Entry:
    host: str
    wildcard: bool
    port: int | None


class HostAllowlist:
    """Hosts the agent may fetch from: ``"example.com"``, ``"*.example.com"`` (subdomains
    only), ``"127.0.0.1:8000"`` (that port only). Matching is case-insensitive and exact."""

    def __init__(self, entries: Iterable[str]) -> None:
        given = [str(e) for e in entries]
        parsed: list[_Entry] = []
        for raw in given:
            text = raw.strip().lower()
            if not _HOST_RE.match(text):
                raise ValueError(
                    f"allowed host: got {raw!r}; expected 'host', '*.domain' or 'host:port'"
                )
            wildcard = text.startswith("*.")
            host, _, port = text.removeprefix("*.").partition(":")
            parsed.append(_Entry(host, wildcard, int(port) if port else None))
        if not parsed:
            raise ValueError("allowed hosts: got none; expected at least one host")
        self._entries = tuple(parsed)
        self.entries = tuple(e.strip().lower() for e in given)

    def allows(self, url: httpx.URL) -> bool:
        if url.scheme not in ("http", "https") or url.userinfo:
            return False
        host = url.host.lower().rstrip(".")
        port = url.port
        for entry in self._entries:
            if entry.port is not None and port != entry.port:
                continue
            if entry.wildcard and host.endswith("." + entry.host):
                return True
            if not entry.wildcard and host == entry.host:
                return True
        return False

    def url_pattern(self) -> str:
        """A regex (JSON Schema ``pattern``) of URLs on allowed hosts."""
        options = []
        for entry in self._entries:
            host = re.escape(entry.host)
            if entry.wildcard:
                host = r"([a-z0-9-]+\.)+" + host
            port = f":{entry.port}" if entry.port is not None else r"(:[0-9]{1,5})?"
            options.append(host + port)
        hosts = "|".join(options)
        return rf"^https?://({hosts})(/[^\s]*)?$"


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return not kind or any(marker in kind for marker in _TEXT_TYPES)


def http_get_tool(
    allowed_hosts: Iterable[str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_bytes: int = 200_000,
    max_redirects: int = 5,
    limits: ToolLimits = ToolLimits.DEFAULT,
) -> Tool:
    """The ``http_get`` tool (side effects ``network`` + ``reads``).

    ``transport``: an httpx transport (``httpx.MockTransport`` in unit tests); ``None`` uses
    the real network. The response comes back as ``HTTP <status>``, the content type, and the
    body as text (cut at ``max_bytes``; binary bodies are described, not included).
    """
    allowlist = HostAllowlist(allowed_hosts)
    timeout = httpx.Timeout(limits.timeout_s)

    async def fetch(url: str) -> str:
        current = httpx.URL(url)
        async with httpx.AsyncClient(
            transport=transport, follow_redirects=False, timeout=timeout, trust_env=False
        ) as client:
            for _hop in range(max_redirects + 1):
                if not allowlist.allows(current):
                    raise HostNotAllowedError(str(current), allowlist)
                request = client.build_request("GET", current, headers={"accept": "*/*"})
                response = await client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        current = current.join(response.headers["location"])
                        continue
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            break
                finally:
                    await response.aclose()
                kind = response.headers.get("content-type", "")
                head = f"HTTP {response.status_code} {response.reason_phrase}\ncontent-type: {kind}"
                if not _is_text(kind):
                    return f"{head}\n\n[binary body, {len(body)} bytes, not shown]"
                cut = len(body) > max_bytes
                text = bytes(body[:max_bytes]).decode(response.encoding or "utf-8", "replace")
                note = f"\n[body cut at {max_bytes} bytes]" if cut else ""
                return f"{head}\n\n{text}{note}"
        raise ToolExecutionError("http_get", f"more than {max_redirects} redirects from {url!r}")

    description = (
        "Fetch a URL with HTTP GET and return the status and the body as text. Allowed hosts: "
        + ", ".join(allowlist.entries)
    )
    url_type: Any = Annotated[
        str,
        Field(
            max_length=2_000,
            pattern=allowlist.url_pattern(),
            description="The http(s) URL to fetch; its host must be in the allowlist.",
        ),
    ]
    arguments = create_model(
        "HttpGetArguments",
        __config__=ConfigDict(extra="forbid"),
        url=(url_type, ...),
    )

    async def invoke(args: Any) -> str:
        return await fetch(args.url)

    return Tool.from_model(
        arguments,
        invoke,
        name="http_get",
        description=description,
        side_effects={SideEffect.NETWORK, SideEffect.READS},
        limits=limits,
        tags={"network"},
    )
