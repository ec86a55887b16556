"""Matrix load over the client-server API with aiohttp: users register, join rooms and send at a
steady rate while readers /sync; each message's delivery latency is the time from the
start of its send request to the arrival of the /sync response that carries it to a reader."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
SYNC_TIMEOUT_MS = 30_000
SETUP_CONCURRENCY = 4
MARK = "bench.id"


class MatrixError(RuntimeError):
    pass


@dataclass
class User:
    user_id: str
    access_token: str


@dataclass
class Api:
    session: aiohttp.ClientSession
    base_url: str
    retries_after_429: int = 0

    async def request(
        self, method: str, path: str, token: str | None = None, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for _ in range(50):
            async with self.session.request(
                method, f"{self.base_url}/_matrix/client/v3{path}", json=body, params=params, headers=headers
            ) as response:
                payload = await response.json(content_type=None)
                if response.status == 429:
                    # Counted: the benchmark's rate limits should make this never happen.
                    self.retries_after_429 += 1
                    await asyncio.sleep(payload.get("retry_after_ms", 500) / 1000)
                    continue
                if response.status != 200:
                    raise MatrixError(f"{method} {path}: HTTP {response.status}: {payload}")
                return payload
        raise MatrixError(f"{method} {path}: still rate limited after 50 attempts")


async def register(api: Api, localpart: str, password: str) -> User:
    body = {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}}
    payload = await api.request("POST", "/register", body=body)
    return User(payload["user_id"], payload["access_token"])


async def register_many(api: Api, localparts: list[str], password: str) -> list[User]:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(localpart: str) -> User:
        async with gate:
            return await register(api, localpart, password)

    return list(await asyncio.gather(*(one(name) for name in localparts)))


async def create_room(api: Api, creator: User, name: str) -> str:
    payload = await api.request("POST", "/createRoom", creator.access_token, {"preset": "public_chat", "name": name})
    return payload["room_id"]


async def join_all(api: Api, users: list[User], room_id: str) -> None:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(user: User) -> None:
        async with gate:
            await api.request("POST", f"/join/{quote(room_id)}", user.access_token, {})

    await asyncio.gather(*(one(user) for user in users))


@dataclass
class PhaseResult:
    users: int
    messages_per_user: int
    readers: int
    sent: int = 0
    send_errors: int = 0
    send_latencies: list[float] = field(default_factory=list)
    delivery_latencies: list[float] = field(default_factory=list)
    """One per (message, reader) pair that arrived."""
    missing_deliveries: int = 0
    """(message, reader) pairs that never arrived within the drain time."""
    undelivered: int = 0
    """Messages that did not reach every reader within the drain time."""
    limited_syncs: int = 0
    first_send: float = 0.0
    last_delivery: float = 0.0
    last_send: float = 0.0
    retries_after_429: int = 0

    @property
    def messages_per_second(self) -> float:
        """Messages delivered to every reader, per second from the first send to the last delivery."""
        span = self.last_delivery - self.first_send
        return (self.sent - self.undelivered) / span if span > 0 else 0.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    # Nearest rank.
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Reader:
    """A user long-polling /sync on some rooms and noting when each marked message arrives."""

    def __init__(self, api: Api, user: User, room_ids: list[str]) -> None:
        self.api, self.user, self.room_ids = api, user, room_ids
        self.seen: dict[str, float] = {}
        self.limited = 0
        self.since: str | None = None
        self.filter = json.dumps(
            {
                "room": {
                    "rooms": room_ids,
                    "timeline": {"limit": 1000},
                    "state": {"lazy_load_members": True},
                },
                "presence": {"not_types": ["*"]},
            }
        )

    async def catch_up(self) -> None:
        """Initial sync: the position from which new messages count."""
        payload = await self.api.request(
            "GET", "/sync", self.user.access_token, params={"filter": self.filter, "timeout": "0"}
        )
        self.since = payload["next_batch"]

    async def run(self) -> None:
        while True:
            params = {"filter": self.filter, "timeout": str(SYNC_TIMEOUT_MS), "since": self.since or ""}
            payload = await self.api.request("GET", "/sync", self.user.access_token, params=params)
            arrived = time.monotonic()
            self.since = payload["next_batch"]
            joined = payload.get("rooms", {}).get("join", {})
            for room in (joined[room_id] for room_id in self.room_ids if room_id in joined):
                timeline = room.get("timeline", {})
                if timeline.get("limited"):
                    self.limited += 1
                for event in timeline.get("events", []):
                    mark = (event.get("content") or {}).get(MARK)
                    if mark and mark not in self.seen:
                        self.seen[mark] = arrived


def room_of(index: int, room_ids: list[str]) -> str:
    """The room sender `index` sends in: the senders are dealt to the rooms in turn."""
    return room_ids[index % len(room_ids)]


async def run_phase(
    api: Api,
    senders: list[User],
    readers: list[User],
    room_ids: list[str],
    messages_per_user: int,
    interval: float,
    drain_timeout: float,
    senders_sync: bool = False,
) -> PhaseResult:
    """Every sender sends `messages_per_user` messages into its room (`room_of`), one every
    `interval` seconds, the senders' schedules spread evenly over the interval; readers /sync all
    the rooms until every message arrived or `drain_timeout` seconds after the last send. With
    `senders_sync` every sender also long-polls /sync on its room throughout, as a user's app does."""
    result = PhaseResult(len(senders), messages_per_user, len(readers))
    retries_before = api.retries_after_429
    sync_readers = [Reader(api, user, room_ids) for user in readers]
    # Senders that /sync as well, as every user's app does; their deliveries are not measured.
    background = [Reader(api, user, [room_of(index, room_ids)]) for index, user in enumerate(senders)] if senders_sync else []
    await asyncio.gather(*(reader.catch_up() for reader in sync_readers + background))
    reader_tasks = [asyncio.create_task(reader.run()) for reader in sync_readers]
    background_tasks = [asyncio.create_task(reader.run()) for reader in background]
    sent_at: dict[str, float] = {}
    run_id = uuid.uuid4().hex[:8]
    start = time.monotonic() + 1.0

    async def send_all(index: int, user: User) -> None:
        room_id = room_of(index, room_ids)
        offset = index * interval / len(senders)
        for number in range(messages_per_user):
            due = start + offset + number * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            mark = f"{run_id}-{index}-{number}"
            body = {"msgtype": "m.text", "body": f"benchmark message {number} from user {index}", MARK: mark}
            began = time.monotonic()
            try:
                await api.request("PUT", f"/rooms/{quote(room_id)}/send/m.room.message/{mark}", user.access_token, body)
            except (MatrixError, aiohttp.ClientError, asyncio.TimeoutError):
                result.send_errors += 1
                continue
            done = time.monotonic()
            sent_at[mark] = began
            result.send_latencies.append(done - began)
            result.last_send = max(result.last_send, done)

    result.first_send = start
    try:
        await asyncio.gather(*(send_all(index, user) for index, user in enumerate(senders)))
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            if all(all(mark in reader.seen for mark in sent_at) for reader in sync_readers):
                break
            if any(task.done() for task in reader_tasks):
                break
            await asyncio.sleep(0.1)
    finally:
        for task in reader_tasks + background_tasks:
            task.cancel()
        await asyncio.gather(*reader_tasks, *background_tasks, return_exceptions=True)
    for task in reader_tasks:
        if not task.cancelled() and task.exception() is not None:
            raise MatrixError(f"a reader's /sync failed: {task.exception()}")

    result.sent = len(sent_at)
    for reader in sync_readers:
        result.limited_syncs += reader.limited
        for mark, began in sent_at.items():
            arrived = reader.seen.get(mark)
            if arrived is None:
                result.missing_deliveries += 1
            else:
                result.delivery_latencies.append(arrived - began)
                result.last_delivery = max(result.last_delivery, arrived)
    result.undelivered = sum(1 for mark in sent_at if any(mark not in reader.seen for reader in sync_readers))
    result.retries_after_429 = api.retries_after_429 - retries_before
    return result


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=aiohttp.TCPConnector(limit=0, force_close=False))
