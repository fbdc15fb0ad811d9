"""FreeSWITCH mod_audio_fork and mod_audio_stream: a metadata text frame, then L16 audio.

    uuid_audio_fork <uuid> start ws://HOST:8080/audiofork?rate=8000 stereo 8k '{"agent_id":"a7"}'
    uuid_audio_stream <uuid> start ws://HOST:8080/audiofork?rate=16000 stereo 16k {"agent_id":"a7"}

The first text frame is the metadata the command was given; when it is a JSON object its
`call_id`/`callId`/`uuid`, `agent_id`/`agentId` and `sample_rate`/`sampleRate` are used (the query
string may carry the same, as `call_id`, `agent_id`, `rate`; the module itself sends no rate, so
the URL or the metadata must when it is not 8000). Audio is binary 16-bit little-endian PCM,
stereo interleaved: channel 0 the leg the fork runs on (the caller: the customer), channel 1 the
other party (the agent); `layout=agent,customer` in the query swaps them for a fork on the agent's
leg. Later text frames (`uuid_audio_fork ... send_text`) are logged, not errors.

The handshake must carry an ingest key (`--ingest-keys`): `Authorization: Bearer KEY`, or basic
auth with KEY as the password (what mod_audio_fork sends when MOD_AUDIO_FORK_HTTP_AUTH_USER and
MOD_AUDIO_FORK_HTTP_AUTH_PASSWORD are set); never in the URL. Refusals before the upgrade
are HTTP 401; after it a close with an RFC 6455 code and a reason (1003 wrong rate or layout,
1007 malformed, 1008 call in use, 1009 oversized), which mod_audio_fork reports as its
`mod_audio_fork::error`/`connect_failed` event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.calls import CallInUse, LiveCall
from gateway.ingest import (
    Adapter,
    Refusal,
    WsClose,
    agent_id_of,
    call_order,
    id_problem,
    load_json,
)
from pipeline.types import CallInfo, Encoding

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("audio.drachtio.org")
RATES = (8000, 16000)
UNSUPPORTED, INVALID, POLICY, TOO_BIG = (
    WsClose.UNSUPPORTED, WsClose.INVALID, WsClose.POLICY, WsClose.TOO_BIG
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ForkStart:
    call_id: str
    agent_id: str
    rate: int
    order: list[int]  # the columns of the customer and the agent
    metadata: dict[str, Any]  # the metadata frame's fields, when it is a JSON object


def parse_fork(query: str, metadata: str | None) -> ForkStart:
    """The call a fork carries, from its URL query and its first text frame (if any)."""
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    meta: dict[str, Any] = {}
    if metadata:
        try:
            loaded = load_json(metadata)
        except ValueError:
            loaded = None  # free text is allowed: it is whatever the dialplan passed
        if isinstance(loaded, dict):
            meta = loaded
    call_id = _first(meta, "call_id", "callId", "uuid") or q.get("call_id") or str(uuid.uuid4())
    agent_id = agent_id_of(meta, q)
    rate_raw = _first(meta, "sample_rate", "sampleRate") or q.get("rate") or "8000"
    if (problem := id_problem(call_id, agent_id)) is not None:
        raise Refusal(INVALID, "bad_metadata", problem)
    try:
        rate = int(str(rate_raw).removesuffix("k")) * (1000 if str(rate_raw).endswith("k") else 1)
    except ValueError:
        rate = 0
    if rate not in RATES:
        raise Refusal(UNSUPPORTED, "unsupported_rate", f"rate must be 8000 or 16000: {rate_raw}")
    order = call_order(q.get("layout", "customer,agent").split(","))
    if order is None:
        raise Refusal(UNSUPPORTED, "unsupported_layout", "layout: customer,agent or agent,customer")
    return ForkStart(call_id, agent_id, rate, order, meta)


def _first(meta: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = meta.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


class AudioForkAdapter(Adapter):
    protocol = "audiofork"
    path = "/audiofork"

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = ws.request.path.partition("?")[2]
        call: LiveCall | None = None
        start: ForkStart | None = None
        try:
            first = await asyncio.wait_for(ws.recv(), self.config.start_timeout_s)
        except (TimeoutError, ConnectionClosed):
            return  # nothing was said: nothing to do
        try:
            start = parse_fork(query, first if isinstance(first, str) else None)
            info = CallInfo(start.call_id, start.agent_id, start.rate, Encoding.PCM16)
            async with self.hub.call(
                info, self.protocol, meta=self.call_meta(ws, start.metadata)
            ) as call:
                await self._stream(ws, call, start, first if isinstance(first, bytes) else None)
        except CallInUse:
            err = Refusal(POLICY, "call_in_use", "this call id is already streaming")
            await self.close(ws, err, start.call_id if start else None)
        except Refusal as err:  # before the call started
            await self.close(ws, err, None)

    async def _stream(
        self, ws: ServerConnection, call: LiveCall, start: ForkStart, first: bytes | None
    ) -> None:
        frame = 4  # stereo 16-bit
        try:
            messages = ws if first is None else _prepend(first, ws)
            async for message in messages:
                if isinstance(message, str):
                    log.info("fork text: %.200s", message, extra={"call_id": start.call_id})
                    continue
                if len(message) > self.config.max_frame_bytes:
                    raise Refusal(TOO_BIG, "frame_too_large", f"{len(message)}-byte frame")
                if len(message) % frame:
                    raise Refusal(
                        INVALID, "partial_frame", "audio must be whole stereo 16-bit frames"
                    )
                pcm = np.frombuffer(message, "<i2").astype(np.int16).reshape(-1, 2)
                await call.feed_pcm(pcm[:, start.order])
            call.ended = "stop"  # the module closes the socket when the fork stops
        except Refusal as err:
            call.ended = "error"
            await self.close(ws, err, start.call_id)
        except ConnectionClosed:
            call.ended = "disconnect"


async def _prepend(first: bytes, ws: ServerConnection) -> Any:
    yield first
    async for message in ws:
        yield message
