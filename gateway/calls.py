"""What every ingest protocol shares: a call's life from the first audio to the last final.

An adapter (native, Twilio, AudioHook, audio fork, AudioSocket, WebRTC) parses its protocol into
a `CallInfo` and audio, then runs the call through `CallHub.call`:

    async with hub.call(info, "twilio", forward=None) as call:
        await call.feed_pcm(frames)          # (n, 2) int16: customer, agent
        ...
        call.ended = "stop" | "disconnect" | "error"

The hub publishes every event to Redis (and to `forward`, for protocols that send results back),
records the call's start and end, keeps call ids unique among live calls, and counts it all.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.bus.redis_bus import RedisBus
from pipeline.runtime import metrics
from pipeline.session import CallSession, Stages
from pipeline.types import CallEnded, CallInfo, CallStarted, Event, TranscriptEvent

log = logging.getLogger(__name__)

Forward = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IngestKey:
    """One bearer credential of the native protocol, the audio forks and WebRTC offers: a
    tenant's name (logged and recorded with its calls) and its secret. A tenant may hold several
    at once, so that a key is rotated without a moment when calls are refused."""

    tenant: str
    secret: str

    def __repr__(self) -> str:  # never the secret, wherever a key is shown
        return f"IngestKey({self.tenant!r}, ***)"

    def text(self) -> str:
        """The key as `--ingest-keys` takes it."""
        return f"{self.tenant}:{self.secret}"


INGESTS = ("native", "twilio", "audiohook", "audiofork")  # the WebSocket ingests
DEFAULT_METADATA = frozenset({"queue", "direction", "language", "campaign"})
MIN_SECRET = 16
_TENANT = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse_ingest_keys(text: str) -> tuple[IngestKey, ...]:
    """`TENANT:SECRET,TENANT:SECRET,...` (a tenant may repeat); `ValueError` naming the entry's
    position (never its secret) when one is malformed or its secret is too short to guess at."""
    keys = []
    for n, entry in enumerate((e.strip() for e in text.split(",")), 1):
        if not entry:
            continue
        tenant, sep, secret = entry.partition(":")
        if not sep or _TENANT.fullmatch(tenant) is None:
            raise ValueError(f"ingest key {n}: must be TENANT:SECRET, TENANT of A-Z a-z 0-9 . _ -")
        if len(secret) < MIN_SECRET or not secret.isascii() or not secret.isprintable():
            raise ValueError(
                f"ingest key {n} ({tenant}): the secret must be at least {MIN_SECRET} printable "
                "ASCII characters (`agent-assist key TENANT` makes one)"
            )
        keys.append(IngestKey(tenant, secret))
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_frame_bytes: int = 65536
    start_timeout_s: float = 10.0
    drain_timeout_s: float = 30.0
    # the credentials (never in a repr); an ingest lacking its own is closed unless `insecure`
    twilio_auth_token: str | None = field(default=None, repr=False)  # X-Twilio-Signature
    public_url: str | None = None  # the gateway's URL as the platform dials it (signatures)
    audiohook_api_key: str | None = field(default=None, repr=False)  # AudioHook X-API-KEY
    audiohook_client_secret: str | None = field(default=None, repr=False)  # base64; signed
    ingest_keys: tuple[IngestKey, ...] = ()  # native, audio fork and WebRTC bearer keys
    audiosocket_port: int | None = None  # Asterisk AudioSocket (TCP); None: not served
    audiosocket_allow: tuple[str, ...] = ()  # networks besides loopback that may connect to it
    webrtc_port: int | None = None  # WebRTC offer/answer and the softphone page; None: off
    ingests: tuple[str, ...] = INGESTS  # the WebSocket ingests served
    insecure: bool = False  # an ingest without its credential takes anyone (loudly)
    metadata_fields: frozenset[str] = DEFAULT_METADATA  # the call metadata kept; others dropped
    tls: ssl.SSLContext | None = None  # wss:// and https:// (not AudioSocket: no TLS in Asterisk's)


class CallInUse(Exception):
    """The call id is already streaming (a second connection for a live call)."""


@dataclass(eq=False)
class LiveCall:
    info: CallInfo
    protocol: str
    session: CallSession
    finals: int = 0
    ended: str = "stop"  # "stop", "disconnect" (client vanished) or "error"
    meta: dict[str, Any] = field(default_factory=dict)

    async def feed(self, payload: bytes) -> None:
        """Whole interleaved sample frames in the call's encoding."""
        await self.session.feed(payload)

    async def feed_pcm(self, frames: np.ndarray) -> None:
        """(n, 2) int16 samples at the call's rate: column 0 customer, column 1 agent."""
        await self.session.feed_pcm(frames)

    async def finish(self) -> None:
        await self.session.finish()

    @property
    def duration(self) -> float:
        return self.session.duration


class CallHub:
    def __init__(self, bus: RedisBus, stages: Stages) -> None:
        self.bus = bus
        self.stages = stages
        self.active: set[str] = set()

    def in_use(self, call_id: str) -> bool:
        return call_id in self.active

    @contextlib.asynccontextmanager
    async def call(
        self,
        info: CallInfo,
        protocol: str,
        forward: Forward | None = None,
        meta: dict[str, Any] | None = None,
    ) -> AsyncIterator[LiveCall]:
        """Run one call; on a clean exit the session is finished (every final published).

        `CallInUse` when the id streams here already, or is taken on Redis (by a call on another
        gateway, or by a finished call whose record is kept)."""
        if info.call_id in self.active:
            raise CallInUse(info.call_id)
        self.active.add(info.call_id)  # before the await: two starts here cannot both claim
        claimed = False
        try:
            claimed = await self.bus.claim(info.call_id)
        finally:
            if not claimed:
                self.active.discard(info.call_id)
        if not claimed:
            raise CallInUse(info.call_id)
        metrics.CALLS.labels(protocol).inc()
        metrics.ACTIVE_CALLS.inc()
        live: LiveCall | None = None
        try:

            async def sink(event: Event) -> None:
                if live is not None and isinstance(event, TranscriptEvent) and event.final:
                    live.finals += 1
                await self.bus.publish(event, info.agent_id)
                if forward is not None:
                    await forward(event)

            await self.bus.call_started(
                CallStarted(
                    call_id=info.call_id,
                    agent_id=info.agent_id,
                    sample_rate=info.sample_rate,
                    encoding=info.encoding.value,
                    protocol=protocol,
                    meta=dict(meta or {}),
                )
            )
            log.info("call started (%s)", protocol, extra={"call_id": info.call_id})
            try:
                async with CallSession(info, self.stages, sink) as session:
                    live = LiveCall(info, protocol, session, meta=dict(meta or {}))
                    yield live
                    await session.finish()
            except BaseException:
                if live is not None:
                    live.ended = "error"
                raise
            finally:
                if live is not None:
                    await self._ended(live)
        finally:
            self.active.discard(info.call_id)
            metrics.ACTIVE_CALLS.dec()

    async def _ended(self, live: LiveCall) -> None:
        if live.ended == "disconnect":
            metrics.DISCONNECTS.inc()
        await self.bus.call_ended(
            CallEnded(
                call_id=live.info.call_id,
                agent_id=live.info.agent_id,
                duration=round(live.duration, 3),
                finals=live.finals,
                ended=live.ended,
            )
        )
        log.info(
            "call ended (%s) after %.1f s, %d finals",
            live.ended,
            live.duration,
            live.finals,
            extra={"call_id": live.info.call_id},
        )
