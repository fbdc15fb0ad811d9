"""Redis layout: pub/sub channels for live events, keys for each call's state.

With the default prefix `aa`:

| name                           | kind    | holds |
|--------------------------------|---------|-------|
| `aa:events`                    | pub/sub | every event of every call |
| `aa:call:{call_id}:events`     | pub/sub | every event of one call |
| `aa:calls`                     | pub/sub | call lifecycle: `call_started`, `call_ended` |
| `aa:call:{call_id}`            | hash    | metadata, `status`, `last_seq`, newest interims/mood |
| `aa:call:{call_id}:transcript` | list    | the call's final transcript events, in order (JSON) |
| `aa:call:{call_id}:mood`       | list    | other events: mood, signals, alerts, suggestions |
| `aa:call:{call_id}:trend`      | list    | customer rolling sentiment `[t, rolling]`, last 120 |
| `aa:call:{call_id}:claim`      | string  | the id taken (`SET NX`), for as long as its record |
| `aa:calls:active`              | set     | ids of calls in progress |
| `aa:alerts`                    | pub/sub | every alert of every call (supervisors) |
| `aa:alerts:feed`               | list    | the last 50 alerts, newest first, with `agent_id` |
| `aa:alerts:recent`             | zset    | alerts by wall-clock time (alerts per minute) |
| `aa:agent:{agent_id}`          | pub/sub | every event and lifecycle message of their calls |
| `aa:agent:{agent_id}:call`     | string  | the agent's current (or last) call id |
| `aa:wallboard`                 | pub/sub | wall-board summaries: tiles and aggregates |
| `aa:wallboard:state`           | string  | the latest summary, for late joiners |
| `aa:record:{call_id}`          | string  | post-call record (JSON), kept `record_ttl_s` |
| `aa:jobs:{kind}`               | stream  | model jobs (final, interim, sentiment) of gateways |
| `aa:results:{gateway}`         | stream  | results of one gateway's jobs (`pipeline.bus.jobs`)   |

A call's live keys expire `call_ttl_s` after it ends; its post-call record (redacted transcript,
every event, alerts, an extractive summary) is written when it ends and kept `record_ttl_s`. A
panel that joins late subscribes first, then reads the stored state, and skips live events whose
`seq` it has already seen (`follow_call`).

Redis failures never reach the call: they are logged, counted, and the event still goes to the
ingest socket.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline.assist import call_summary
from pipeline.runtime import metrics
from pipeline.types import (
    AlertEvent,
    CallEnded,
    CallStarted,
    Channel,
    Event,
    SentimentEvent,
    TranscriptEvent,
    dumps,
    from_json,
    parse_event,
    to_json,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BusConfig:
    prefix: str = "aa"
    call_ttl_s: int = 3600
    record_ttl_s: int = 7 * 24 * 3600


# The hash field that keeps the newest event of each kind (per channel where that matters).
LATEST = {
    "sentiment": "sentiment:{channel}",
    "emotion": "emotion:{channel}",
    "feeling": "feeling:{channel}",
}


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events = f"{prefix}:events"
        self.calls = f"{prefix}:calls"
        self.active = f"{prefix}:calls:active"
        self.alerts = f"{prefix}:alerts"
        self.alerts_feed = f"{prefix}:alerts:feed"
        self.alerts_recent = f"{prefix}:alerts:recent"
        self.wallboard = f"{prefix}:wallboard"
        self.wallboard_state = f"{prefix}:wallboard:state"
        self.wallboard_lock = f"{prefix}:wallboard:lock"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}"

    def agent_call(self, agent_id: str) -> str:
        return f"{self.prefix}:agent:{agent_id}:call"

    def trend(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}:trend"

    def record(self, call_id: str) -> str:
        return f"{self.prefix}:record:{call_id}"

    def call(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}"

    def transcript(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}:transcript"

    def mood(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}:mood"

    def call_events(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}:events"

    def claim(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}:claim"


class RedisBus:
    def __init__(self, redis: Redis, config: BusConfig) -> None:
        self.redis = redis
        self.config = config
        self.keys = Keys(config.prefix)

    async def claim(self, call_id: str) -> bool:
        """Take a call id for one call, across every gateway on this Redis: False while another
        call streams with it, or while a finished one's record is kept (no id is reused, so no
        record is overwritten). When Redis fails the call goes on (logged and counted)."""
        claimed = True
        async with self._guard("claim"):
            ttl = self.config.record_ttl_s
            claimed = bool(await self.redis.set(self.keys.claim(call_id), "1", nx=True, ex=ttl))
        return claimed

    async def call_started(self, started: CallStarted) -> None:
        k = self.keys
        call_id, agent_id = started.call_id, started.agent_id
        fields = started.to_dict() | {"status": "active", "last_seq": 0, "started_at": time.time()}
        del fields["v"], fields["type"]
        msg = to_json(started)
        async with self._guard("call_started"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(k.call(call_id), k.transcript(call_id), k.mood(call_id), k.trend(call_id))
            pipe.hset(k.call(call_id), mapping={f: _field(v) for f, v in fields.items()})
            pipe.sadd(k.active, call_id)
            pipe.set(k.agent_call(agent_id), call_id, ex=self.config.record_ttl_s)
            pipe.publish(k.calls, msg)
            pipe.publish(k.agent(agent_id), msg)
            await pipe.execute()

    async def publish(self, event: Event, agent_id: str = "") -> None:
        """Put one event on the wire: its pub/sub channels and the call's stored state."""
        k = self.keys
        call_id = event.call_id
        wire = event.to_dict()
        msg = dumps(wire)
        now = time.time()
        async with self._guard("publish"):
            pipe = self.redis.pipeline(transaction=True)
            if isinstance(event, AlertEvent):
                at = str(now)
                pipe.hset(k.call(call_id), mapping={"alert_at": at, f"{event.severity}_at": at})
                pipe.hincrby(k.call(call_id), "alerts", 1)
                feed = dumps(wire | {"agent_id": agent_id, "at": now})
                pipe.lpush(k.alerts_feed, feed)
                pipe.ltrim(k.alerts_feed, 0, 49)
                pipe.zadd(k.alerts_recent, {f"{call_id}:{event.seq}": now})
                pipe.zremrangebyscore(k.alerts_recent, "-inf", now - 60)  # the writer trims
                pipe.publish(k.alerts, feed)
            elif isinstance(event, SentimentEvent) and event.channel is Channel.CUSTOMER:
                pipe.rpush(k.trend(call_id), json.dumps([wire["end"], wire["rolling"]]))
                pipe.ltrim(k.trend(call_id), -120, -1)
            if isinstance(event, TranscriptEvent):
                if event.final:
                    pipe.rpush(k.transcript(call_id), msg)
                    pipe.hdel(k.call(call_id), f"interim:{event.channel.label}")
                else:
                    pipe.hset(k.call(call_id), f"interim:{event.channel.label}", msg)
            else:
                pipe.rpush(k.mood(call_id), msg)
                field = LATEST.get(event.type, "{type}").format(**wire)
                pipe.hset(k.call(call_id), field, msg)
            pipe.hset(k.call(call_id), "last_seq", event.seq)
            pipe.publish(k.call_events(call_id), msg)
            pipe.publish(k.events, msg)
            if agent_id:
                pipe.publish(k.agent(agent_id), msg)
            await pipe.execute()

    async def call_ended(self, ended: CallEnded) -> None:
        """Mark the call ended, write its post-call record, tell the subscribers."""
        k = self.keys
        ttl = self.config.call_ttl_s
        call_id, agent_id = ended.call_id, ended.agent_id
        msg = to_json(ended)
        fields: dict[str | bytes, str] = {"status": "ended", "ended_at": str(time.time())}
        fields |= {f: str(getattr(ended, f)) for f in ("duration", "finals", "ended")}
        async with self._guard("call_ended"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(k.call(call_id), mapping=fields)  # type: ignore[arg-type]
            pipe.srem(k.active, call_id)
            for key in (k.call(call_id), k.transcript(call_id), k.mood(call_id), k.trend(call_id)):
                pipe.expire(key, ttl)
            await pipe.execute()
            meta, events = await call_state(self.redis, k, call_id, mood=True)
            record = call_record(meta, events)
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(k.record(call_id), dumps(record), ex=self.config.record_ttl_s)
            pipe.publish(k.calls, msg)
            if agent_id:
                pipe.publish(k.agent(agent_id), msg)
            await pipe.execute()

    def _guard(self, op: str) -> _Guard:
        return _Guard(op)


class _Guard:
    """Swallow, log and count a Redis failure: a call never fails because Redis did."""

    def __init__(self, op: str) -> None:
        self.op = op

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, RedisError | OSError):
            metrics.BUS_ERRORS.labels(self.op).inc()
            log.warning("redis %s failed: %s", self.op, exc)
            return True
        return False


async def call_state(
    redis: Redis, keys: Keys, call_id: str, mood: bool = False
) -> tuple[dict[str, str], list[Event]]:
    """A call's stored metadata and its final transcript events so far; with `mood`, its other
    stored events too, merged in `seq` order."""
    pipe = redis.pipeline(transaction=True)
    pipe.hgetall(keys.call(call_id))
    pipe.lrange(keys.transcript(call_id), 0, -1)
    if mood:
        pipe.lrange(keys.mood(call_id), 0, -1)
    meta, *lists = await pipe.execute()
    events = [parse_event(json.loads(e)) for stored in lists for e in stored]
    return meta, sorted(events, key=lambda e: e.seq)


def _field(value: Any) -> str:
    """A hash field's value: nested ones (the call's metadata) as JSON."""
    return dumps(value) if isinstance(value, dict | list) else str(value)


def call_record(meta: dict[str, str], events: list[Event]) -> dict[str, Any]:
    """The post-call record (its wire form): metadata, the (redacted) transcript, every event,
    the alerts and an extractive summary."""
    finals = [e for e in events if isinstance(e, TranscriptEvent)]
    alerts = [e for e in events if isinstance(e, AlertEvent)]
    numbers = {"started_at", "ended_at", "duration", "sample_rate", "finals", "last_seq"}
    info: dict[str, Any] = {
        name: float(value) if name in numbers else value
        for name, value in meta.items()
        if ":" not in name and name in numbers | {"call_id", "agent_id", "status", "ended"}
    }
    return {
        "v": 1,
        "type": "call_record",
        **info,
        "transcript": [
            {f: e[f] for f in ("channel", "utterance", "start", "end", "text")}
            for e in (f.to_dict() for f in finals)
        ],
        "summary": call_summary(finals, alerts),
        "alerts": [a.to_dict() for a in alerts],
        "events": [e.to_dict() for e in events],
    }


async def follow_call(redis: Redis, keys: Keys, call_id: str) -> AsyncIterator[Event]:
    """Every final and mood event so far, then live events, each exactly once, for a subscriber
    joining late. Ends after the call's `call_ended` message.
    """
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.call_events(call_id), keys.calls)
    try:
        meta, finals = await call_state(redis, keys, call_id, mood=True)
        seen = 0
        for event in finals:
            seen = max(seen, event.seq)
            yield event
        if meta.get("status") == "ended":
            return
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            data = from_json(message["data"])
            if isinstance(data, CallEnded | CallStarted):
                if isinstance(data, CallEnded) and data.call_id == call_id:
                    return
                continue
            if data.seq > seen:
                seen = data.seq
                yield data
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
