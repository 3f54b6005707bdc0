"""HTTP GET for the agent, limited to an allowlist of hosts.

Owns :class:`HostAllowlist` (which URLs may be fetched: exact hosts, ``*.domain`` wildcards,
optional ports; http/https only; no credentials in URLs) and :func:`http_get_tool`, an httpx
GET that checks every redirect hop against the allowlist and the running call's policy
(:func:`agentcore.tools.check_url`) and stops reading at a byte limit counted on the
decompressed body (gzip and deflate are decoded here, in bounded steps, so a small compressed
bomb cannot expand past the limit; other encodings are described, not decoded).
The tool's ``url`` parameter carries a pattern built from the allowlist, so under constrained
decoding the model can only write URLs of allowed hosts. Never sends anything but GET, never
sends cookies or credentials, never follows a redirect to a host that is not allowed.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Iterable
from typing import Annotated, Any

import httpx
from pydantic import ConfigDict, Field, create_model

from agentcore.tools._effects import check_url
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


async def _read_body(response: httpx.Response, max_bytes: int) -> tuple[bytearray, bool, str]:
    """The body decoded and cut at ``max_bytes`` (decompressed size), whether it was cut, and
    a note instead when the encoding is not one decoded here."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    decoder: Any = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    elif encoding not in ("", "identity"):
        return bytearray(), False, f"body in content-encoding {encoding!r}, not decoded"
    body = bytearray()
    try:
        chunks = response.aiter_raw()
        first = await anext(chunks, b"")
    except httpx.StreamConsumed:  # a body already in memory (a mock transport): decoded copy
        data = response.content
        return bytearray(data[:max_bytes]), len(data) > max_bytes, ""

    async def raw() -> Any:
        yield first
        async for rest in chunks:
            yield rest

    async for chunk in raw():
        if decoder is None:
            body += chunk
        else:
            data = chunk
            while data and len(body) <= max_bytes:
                try:  # never more than the room left (+1 to notice the cut) per step
                    body += decoder.decompress(data, max_bytes + 1 - len(body))
                except zlib.error as exc:
                    return bytearray(), False, f"body could not be decompressed ({exc})"
                data = decoder.unconsumed_tail
        if len(body) > max_bytes:
            return body[:max_bytes], True, ""
    return body, False, ""


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
                check_url(str(current))  # the policy's hosts and addresses, every hop
                if not allowlist.allows(current):
                    raise HostNotAllowedError(str(current), allowlist)
                request = client.build_request(
                    "GET",
                    current,
                    headers={"accept": "*/*", "accept-encoding": "gzip, deflate, identity"},
                )
                response = await client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        current = current.join(response.headers["location"])
                        continue
                    body, cut, note = await _read_body(response, max_bytes)
                finally:
                    await response.aclose()
                kind = response.headers.get("content-type", "")
                head = f"HTTP {response.status_code} {response.reason_phrase}\ncontent-type: {kind}"
                if note:
                    return f"{head}\n\n[{note}]"
                if not _is_text(kind):
                    return f"{head}\n\n[binary body, {len(body)} bytes, not shown]"
                text = bytes(body).decode(response.encoding or "utf-8", "replace")
                tail = f"\n[body cut at {max_bytes} bytes]" if cut else ""
                return f"{head}\n\n{text}{tail}"
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
