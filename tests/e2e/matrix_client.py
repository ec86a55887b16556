"""A Matrix client's view of a deployed homeserver, through matrix-nio, the way a user's app talks to it."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LoginResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)


@dataclass(frozen=True)
class Conversation:
    """A room where one user wrote and another read."""

    room_id: str
    text: str
    sender: str
    reader: str
    password: str


# A rate-limited or stalled request fails the test instead of sleeping as long as the server asks.
CLIENT_CONFIG = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2, request_timeout=30)


def _client(base_url: str, ca_file: str | None) -> AsyncClient:
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    if context:
        return AsyncClient(base_url, config=CLIENT_CONFIG, ssl=context)
    return AsyncClient(base_url, config=CLIENT_CONFIG)


async def _register(client: AsyncClient, user: str, password: str, token: str | None) -> None:
    if token is None:
        response = await client.register(user, password)
    else:
        response = await client.register_with_token(user, password, token)
    assert isinstance(response, RegisterResponse), f"registering {user} failed: {response}"


async def _converse(base_url: str, token: str | None, ca_file: str | None) -> Conversation:
    suffix = uuid.uuid4().hex[:8]
    password = f"pw-{uuid.uuid4().hex}"
    sender, reader = _client(base_url, ca_file), _client(base_url, ca_file)
    try:
        await _register(sender, f"alice{suffix}", password, token)
        room = await sender.room_create(name=f"e2e {suffix}", preset=None, invite=[])
        assert isinstance(room, RoomCreateResponse), f"creating a room failed: {room}"
        await sender.room_put_state(room.room_id, "m.room.join_rules", {"join_rule": "public"})
        text = f"hello from the end-to-end test {suffix}"
        sent = await sender.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": text})
        assert isinstance(sent, RoomSendResponse), f"sending failed: {sent}"

        await _register(reader, f"bob{suffix}", password, token)
        joined = await reader.join(room.room_id)
        assert isinstance(joined, JoinResponse), f"joining failed: {joined}"
        synced = await reader.sync(timeout=5000, full_state=True)
        assert isinstance(synced, SyncResponse), f"sync failed: {synced}"
        timeline = synced.rooms.join[room.room_id].timeline.events
        bodies = [event.body for event in timeline if isinstance(event, RoomMessageText)]
        assert text in bodies, f"the reader's /sync did not show the message; it showed {bodies}"
        return Conversation(room.room_id, text, sender.user_id, reader.user_id, password)
    finally:
        await sender.close()
        await reader.close()


async def _read(base_url: str, user_id: str, password: str, room_id: str, ca_file: str | None) -> list[str]:
    client = _client(base_url, ca_file)
    client.user = user_id
    try:
        login = await client.login(password)
        assert isinstance(login, LoginResponse), f"login of {user_id} failed: {login}"
        messages = await client.room_messages(room_id, start="", limit=50)
        assert isinstance(messages, RoomMessagesResponse), f"reading messages failed: {messages}"
        return [event.body for event in messages.chunk if isinstance(event, RoomMessageText)]
    finally:
        await client.close()


def converse(base_url: str, registration_token: str | None = None, ca_file: str | None = None) -> Conversation:
    """Two new users: one registers, creates a room and writes; the other registers, joins and reads it via /sync."""
    return asyncio.run(_converse(base_url, registration_token, ca_file))


def read_messages(base_url: str, user_id: str, password: str, room_id: str, ca_file: str | None = None) -> list[str]:
    """Log in as an existing user and read a room's recent text messages."""
    return asyncio.run(_read(base_url, user_id, password, room_id, ca_file))
