"""What the panels read live from Redis: the wall board, and the relays of each feed.

`board` reads the wall board as Redis holds it now (every gateway's calls); `publish_board`
publishes it every interval, and at once when an alert fires or a call starts or ends, while this
server holds the publishing lock (one panel server at a time publishes). A feed starts with a
`snapshot` of a call's stored state, then relays live messages, parsed back into events to skip
what the snapshot already held; what goes to the browser is the message as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from pipeline.bus.redis_bus import Keys, call_state
from pipeline.bus.wallboard import board, tile
from pipeline.runtime.retry import Retrying
from pipeline.types import (
    CallEnded,
    CallStarted,
    Event,
    dumps,
    event_from_json,
    from_json,
    parse_event,
)

Send = Callable[[str], Awaitable[None]]  # one text message to the feed's socket


class LiveState:
    def __init__(self, redis: Redis, keys: Keys, interval: float) -> None:
        self.redis = redis
        self.keys = keys
        self.interval = interval
        self._instance = uuid.uuid4().hex  # this server, as the holder of the publishing lock

    async def board(self) -> dict[str, Any]:
        """The wall board as stored in Redis now."""
        k, now = self.keys, time.time()
        ids = sorted(str(i) for i in await self.redis.smembers(k.active))
        pipe = self.redis.pipeline(transaction=False)
        for call_id in ids:
            pipe.hgetall(k.call(call_id))
            pipe.lrange(k.trend(call_id), 0, -1)
        pipe.zcount(k.alerts_recent, now - 60, "+inf")  # reads only: panels may be read-only
        *got, per_minute = await pipe.execute()
        tiles = [tile(got[i], got[i + 1], now) for i in range(0, len(got), 2) if got[i]]
        return board(tiles, int(per_minute), now)

    async def publish_board(self, stopping: asyncio.Event) -> None:
        """Publish the board every interval, and at once when an alert fires or a call starts or
        ends, while this server holds the publishing lock."""
        k = self.keys
        interval = self.interval
        pubsub = self.redis.pubsub()
        retrying = Retrying("wallboard", "wall board publisher", cap_s=interval)
        while not stopping.is_set():
            try:
                await pubsub.subscribe(k.alerts, k.calls)
                retrying.ok()
                while not stopping.is_set():
                    if await self._lead(interval):
                        state = dumps(await self.board())
                        pipe = self.redis.pipeline(transaction=False)
                        pipe.set(k.wallboard_state, state, ex=60)
                        pipe.publish(k.wallboard, state)
                        await pipe.execute()
                    # wake at the next tick, or sooner on news (then drain what came with it)
                    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=interval):
                        while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0):
                            pass
            except (RedisError, OSError) as exc:
                await retrying.failed(exc)
        with contextlib.suppress(RedisError, OSError):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _lead(self, interval: float) -> bool:
        lock, ttl = self.keys.wallboard_lock, int(interval * 3000)
        if await self.redis.set(lock, self._instance, nx=True, px=ttl):
            return True
        if await self.redis.get(lock) == self._instance:
            await self.redis.pexpire(lock, ttl)
            return True
        return False

    async def wallboard(self, send: Send, pubsub: PubSub) -> None:
        k = self.keys
        await pubsub.subscribe(k.wallboard, k.alerts)
        # the feed's entries are alert events with `agent_id` and `at` added: sent on as they are
        feed = [json.loads(a) for a in await self.redis.lrange(k.alerts_feed, 0, -1)]
        seen = {(a.call_id, a.seq) for a in map(parse_event, feed)}
        await send(dumps({"type": "snapshot", "board": await self.board(), "alerts": feed}))
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            if message["channel"] == k.alerts:
                alert = event_from_json(message["data"])
                if (alert.call_id, alert.seq) in seen:
                    continue
            await send(message["data"])

    async def call_feed(self, send: Send, pubsub: PubSub, ident: str, follow_agent: bool) -> None:
        """One call's snapshot then its live events; following an agent, each new call of theirs
        starts with a fresh snapshot."""
        k = self.keys
        if follow_agent:
            await pubsub.subscribe(k.agent(ident))
            call_id = str(await self.redis.get(k.agent_call(ident)) or "")
        else:
            await pubsub.subscribe(k.call_events(ident), k.calls)
            call_id = ident
        seen = await self.snapshot(send, call_id, agent_id=ident if follow_agent else "")
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            data = from_json(message["data"])
            if isinstance(data, CallStarted):
                if follow_agent or data.call_id == call_id:
                    call_id = data.call_id
                    seen = await self.snapshot(send, call_id, agent_id=ident)
            elif data.call_id != call_id:
                continue
            elif isinstance(data, CallEnded) or data.seq > seen:
                seen = max(seen, 0 if isinstance(data, CallEnded) else data.seq)
                await send(message["data"])

    async def snapshot(self, send: Send, call_id: str, agent_id: str = "") -> int:
        """Send a call's stored state (events in `seq` order, open interims); returns its last
        `seq` so that live events already in it are skipped."""
        meta: dict[str, str] = {}
        events: list[Event] = []
        if call_id:
            meta, events = await call_state(self.redis, self.keys, call_id, mood=True)
        interims = [event_from_json(v) for f, v in meta.items() if f.startswith("interim:")]
        info = {f: v for f, v in meta.items() if ":" not in f}
        seen = max([int(meta.get("last_seq", 0))] + [e.seq for e in events + interims])
        await send(
            dumps(
                {
                    "type": "snapshot",
                    "call_id": call_id,
                    "agent_id": agent_id or info.get("agent_id", ""),
                    "call": info,
                    "events": [e.to_dict() for e in events],
                    "interims": [e.to_dict() for e in interims],
                }
            )
        )
        return seen
