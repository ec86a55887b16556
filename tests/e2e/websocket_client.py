"""A minimal WebSocket client (RFC 6455) on the standard library: handshake, one text message, its echo.

Enough to prove that a server (or a proxy in front of it) upgrades the connection and passes
frames both ways; not a general client (no fragmentation, no extensions).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
from dataclasses import dataclass

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


class WebSocketError(AssertionError):
    """The server did not upgrade the connection, or broke the protocol."""


@dataclass(frozen=True)
class Echo:
    """What the server answered: the upgrade's status line and headers, and the echoed text."""

    status_line: str
    headers: dict[str, str]
    text: str


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise WebSocketError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def _read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise WebSocketError(f"connection closed during the handshake; received {head!r}")
        head += chunk
        if len(head) > 65536:
            raise WebSocketError("handshake response too long")
    return head


def _send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    # Client frames are always masked (RFC 6455 §5.3).
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 1 << 16:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    sock.sendall(header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload)))


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    first, second = _read_exactly(sock, 2)
    if not first & 0x80:
        raise WebSocketError("fragmented frames are not supported by this client")
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", _read_exactly(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exactly(sock, 8))
    mask = _read_exactly(sock, 4) if second & 0x80 else b""
    payload = _read_exactly(sock, length)
    if mask:
        payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return first & 0x0F, payload


def echo(
    address: str,
    port: int,
    text: str,
    host: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    path: str = "/",
    timeout: float = 15,
) -> Echo:
    """Connect to `address:port` (TLS with `host` as SNI when `ssl_context` is given), upgrade
    with `Host: host`, send `text` and return the first text message that comes back."""
    host = host or address
    sock = socket.create_connection((address, port), timeout=timeout)
    try:
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        )
        sock.sendall(request.encode())
        status_line, *header_lines = _read_head(sock).decode("latin-1").strip().split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status_line.split()[1:2] != ["101"]:
            raise WebSocketError(f"no upgrade: {status_line}")
        expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise WebSocketError(f"wrong Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
        _send_frame(sock, _TEXT, text.encode())
        while True:
            opcode, payload = _read_frame(sock)
            if opcode == _PING:
                _send_frame(sock, _PONG, payload)
            elif opcode == _TEXT:
                answer = payload.decode()
                break
            elif opcode == _CLOSE:
                raise WebSocketError(f"server closed the connection: {payload!r}")
        _send_frame(sock, _CLOSE, struct.pack("!H", 1000))
        return Echo(status_line, headers, answer)
    finally:
        sock.close()
