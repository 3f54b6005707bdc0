"""HTTP GET limited to an allowlist: unit tests on httpx.MockTransport, and the same checks
against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from agentcore.testing import serve_in_thread
from agentcore.tools import SideEffect, ToolRegistry
from agentcore.tools.builtin import HostAllowlist, http_get_tool


def mock_site(request: httpx.Request) -> httpx.Response:
    host, path = request.url.host, request.url.path
    if host == "evil.test":
        return httpx.Response(200, text="stolen")
    if path == "/hello":
        return httpx.Response(200, text="hello world", headers={"content-type": "text/plain"})
    if path == "/to-evil":
        return httpx.Response(302, headers={"location": "http://evil.test/x"})
    if path == "/to-hello":
        return httpx.Response(301, headers={"location": "/hello"})
    if path == "/loop":
        return httpx.Response(302, headers={"location": "/loop"})
    if path == "/big":
        return httpx.Response(200, text="a" * 5_000, headers={"content-type": "text/plain"})
    if path == "/bin":
        return httpx.Response(200, content=b"\x89PNG" * 10, headers={"content-type": "image/png"})
    return httpx.Response(404, text="not found", headers={"content-type": "text/plain"})


@pytest.fixture
def web() -> ToolRegistry:
    fetch = http_get_tool(
        ["docs.test", "*.wiki.test"], transport=httpx.MockTransport(mock_site), max_bytes=1_000
    )
    return ToolRegistry([fetch])


class TestAllowlist:
    @pytest.mark.parametrize(
        ("url", "allowed"),
        [
            ("https://docs.test/a", True),
            ("http://DOCS.test/a?q=1", True),
            ("https://en.wiki.test/page", True),
            ("https://wiki.test/page", False),  # the wildcard covers subdomains only
            ("https://docs.test.evil.test/", False),
            ("https://evildocs.test/", False),
            ("ftp://docs.test/", False),
            ("https://user:pw@docs.test/", False),
            ("http://127.0.0.1:8000/", True),
            ("http://127.0.0.1:8001/", False),
        ],
    )
    def test_matching(self, url: str, allowed: bool) -> None:
        allowlist = HostAllowlist(["docs.test", "*.wiki.test", "127.0.0.1:8000"])
        assert allowlist.allows(httpx.URL(url)) is allowed

    @pytest.mark.parametrize("entry", ["", "http://x.test", "x.test/path", "*.", "a b"])
    def test_bad_entries(self, entry: str) -> None:
        with pytest.raises(ValueError, match="allowed host"):
            HostAllowlist([entry])

    def test_needs_at_least_one_host(self) -> None:
        with pytest.raises(ValueError, match="at least one host"):
            http_get_tool([])


class TestTool:
    def test_metadata_and_schema_pattern(self, web: ToolRegistry) -> None:
        fetch = web.get("http_get")
        assert fetch.side_effects == {SideEffect.NETWORK, SideEffect.READS}
        assert "docs.test, *.wiki.test" in fetch.description
        # The URL pattern keeps other hosts out already at validation (and decoding) time.
        rejected = web.call_sync("http_get", {"url": "https://evil.test/x"})
        assert rejected.error_kind == "arguments"
        assert "url: got 'https://evil.test/x'; expected a string" in rejected.content
        assert web.validate("http_get", {"url": "https://a.wiki.test/b"})

    def test_fetch(self, web: ToolRegistry) -> None:
        result = web.call_sync("http_get", {"url": "https://docs.test/hello"})
        assert result.ok
        assert result.content == "HTTP 200 OK\ncontent-type: text/plain\n\nhello world"

    def test_redirect_inside_is_followed(self, web: ToolRegistry) -> None:
        result = web.call_sync("http_get", {"url": "https://docs.test/to-hello"})
        assert result.content.endswith("hello world")

    def test_redirect_out_is_blocked(self, web: ToolRegistry) -> None:
        result = web.call_sync("http_get", {"url": "https://docs.test/to-evil"})
        assert not result.ok and "'http://evil.test/x' is not allowed" in result.content
        assert "stolen" not in result.content

    def test_redirect_loops_stop(self, web: ToolRegistry) -> None:
        result = web.call_sync("http_get", {"url": "https://docs.test/loop"})
        assert not result.ok and "more than 5 redirects" in result.content

    def test_body_limit_and_binary(self, web: ToolRegistry) -> None:
        big = web.call_sync("http_get", {"url": "https://docs.test/big"})
        assert big.content.endswith("a" * 1_000 + "\n[body cut at 1000 bytes]")
        binary = web.call_sync("http_get", {"url": "https://docs.test/bin"})
        assert binary.content.endswith("[binary body, 40 bytes, not shown]")

    def test_status_is_reported(self, web: ToolRegistry) -> None:
        result = web.call_sync("http_get", {"url": "https://docs.test/nothing"})
        assert result.ok and result.content.startswith("HTTP 404 Not Found")


def real_site() -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse(f"hello from {request.url.path}")

    async def to_outside(request: Request) -> Response:
        return RedirectResponse("http://10.255.255.1/steal", status_code=302)

    async def to_hello(request: Request) -> Response:
        return RedirectResponse("/hello", status_code=307)

    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/to-outside", to_outside),
            Route("/to-hello", to_hello),
        ]
    )


class TestRealServer:
    async def test_against_uvicorn_on_loopback(self) -> None:
        with serve_in_thread(real_site()) as url:
            port = httpx.URL(url).port
            registry = ToolRegistry([http_get_tool([f"127.0.0.1:{port}"])])
            base = f"http://127.0.0.1:{port}"
            ok = await registry.call("http_get", {"url": f"{base}/hello"})
            assert ok.ok, ok.content
            assert ok.content.startswith("HTTP 200 OK\ncontent-type: text/plain")
            assert ok.content.endswith("hello from /hello")
            followed = await registry.call("http_get", {"url": f"{base}/to-hello"})
            assert followed.content.endswith("hello from /hello")
            blocked = await registry.call("http_get", {"url": f"{base}/to-outside"})
            assert (
                not blocked.ok and "'http://10.255.255.1/steal' is not allowed" in blocked.content
            )
            other_port = await registry.call("http_get", {"url": f"http://127.0.0.1:{port + 1}/"})
            assert other_port.error_kind == "arguments"
