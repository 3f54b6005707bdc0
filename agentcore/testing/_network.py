"""The network guard: inside it, a connection or a name lookup beyond this machine fails.

Owns :func:`block_network` and :class:`NetworkBlockedError`. The guard replaces
``socket.socket.connect``, ``socket.socket.connect_ex`` and ``socket.getaddrinfo`` for the whole
process while it is on (every thread, so an in-thread server's client is held too) and puts the
originals back after. Loopback addresses, ``localhost`` and Unix sockets stay open, so
:func:`serve_in_thread <agentcore.testing.serve_in_thread>` and local subprocesses work. Never
guards a subprocess (it has its own socket module).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any
from unittest import mock

__all__ = ["NetworkBlockedError", "block_network"]


class NetworkBlockedError(RuntimeError):
    """Code under :func:`block_network` tried to reach a host other than this machine."""


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):
        return True  # AF_UNIX path
    if not (isinstance(address, tuple) and address):
        return False
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: not allowed


def _refuse_remote(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlockedError(
            f"tried to connect to {address!r} under block_network(); tests never reach the "
            "network (serve what the test needs on 127.0.0.1: agentcore.testing.serve_in_thread)"
        )


@contextlib.contextmanager
def block_network() -> Iterator[None]:
    """Refuse every connection and name lookup beyond this machine inside the block; raises
    :class:`NetworkBlockedError` naming the address."""
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        _refuse_remote(self, address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        _refuse_remote(self, address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "localhost") and not _is_loopback((name,)):
            raise NetworkBlockedError(
                f"tried to resolve {name!r} under block_network(); tests never reach the network"
            )
        return getaddrinfo(host, *args, **kwargs)

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(socket.socket, "connect", guarded_connect))
        patches.enter_context(mock.patch.object(socket.socket, "connect_ex", guarded_connect_ex))
        patches.enter_context(mock.patch.object(socket, "getaddrinfo", guarded_getaddrinfo))
        yield
