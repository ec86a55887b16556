"""Public host names of a test stack resolved to this machine, inside the test process only.

A proxy routes by host name (Host header, TLS SNI), so clients must use the configured names.
Instead of editing the machine's hosts file, `resolve_to_loopback` answers name lookups for one
test domain with 127.0.0.1 in this process (urllib, http.client, ssl, aiohttp's default
resolver and matrix-nio all look names up through `socket.getaddrinfo`); other names resolve
as usual, and the original resolver is back when the context ends.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def resolve_to_loopback(domain: str) -> Iterator[None]:
    """`domain` and every name under it resolve to 127.0.0.1 while the context is open."""
    with resolve_to(domain, "127.0.0.1"):
        yield


@contextmanager
def resolve_to(domain: str, address: str) -> Iterator[None]:
    """`domain` and every name under it resolve to `address` while the context is open."""
    original = socket.getaddrinfo
    domain = domain.lower().strip(".")

    def ours(host: Any) -> bool:
        name = host.decode() if isinstance(host, bytes) else host
        if not isinstance(name, str):
            return False
        name = name.lower().rstrip(".")
        return name == domain or name.endswith("." + domain)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return original(address if ours(host) else host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original
