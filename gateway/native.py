"""The native ingest protocol, version 1: parsing and validation (free of I/O), then the edge.

    client -> {"type": "start", "version": 1, "call_id": "...", "agent_id": "...",
               "sample_rate": 8000 | 16000, "encoding": "pcm16" | "mulaw",
               "channels": 2, "layout": ["customer", "agent"]}
    server -> {"type": "started", "version": 1, "call_id": "..."}
    client -> binary frames: interleaved stereo, whole sample frames, at most max_frame_bytes
    server -> {"v": 1, "type": "transcript", ...} events as they happen
    client -> {"type": "stop"}
    server -> {"type": "stopped", "call_id": "...", "duration": s, "finals": n}, then close 1000

Bad input closes the socket with one of `CloseCode` and a reason, after an
{"type": "error", "code": ..., "kind": ..., "reason": ...} message.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.calls import Adapter, refused
from pipeline.types import CallInfo, Encoding, Event, to_json

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
SAMPLE_RATES = (8000, 16000)
LAYOUT = ["customer", "agent"]
_CALL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    TOO_BIG = 1009  # a frame over the size limit
    INTERNAL = 1011
    BAD_MESSAGE = 4400  # not JSON, unknown type, missing or malformed field
    TIMEOUT = 4408  # no start message in time
    CONFLICT = 4409  # message out of order: a second start, audio after stop, call id in use
    UNSUPPORTED_MEDIA = 4415  # encoding, rate, channel count or layout not supported
    BAD_AUDIO = 4422  # a binary frame that is not whole sample frames


class ProtocolError(Exception):
    def __init__(self, code: CloseCode, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.kind = kind  # metric label: a fixed, small set of words
        self.reason = reason[:120]  # a close reason must fit in 123 bytes

    def message(self) -> dict[str, Any]:
        return {"type": "error", "code": int(self.code), "kind": self.kind, "reason": self.reason}


def parse_control(message: str) -> dict[str, Any]:
    """A text frame as a JSON object with a string `type`."""
    try:
        data = json.loads(message)
    except ValueError:
        raise ProtocolError(CloseCode.BAD_MESSAGE, "bad_json", "text frame is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(
            CloseCode.BAD_MESSAGE, "bad_message", "control message must be an object with a type"
        )
    return data


def parse_start(message: str | bytes) -> CallInfo:
    if isinstance(message, bytes):
        raise ProtocolError(
            CloseCode.BAD_MESSAGE, "audio_before_start", "first message must be a JSON start"
        )
    data = parse_control(message)
    if data["type"] != "start":
        raise ProtocolError(
            CloseCode.BAD_MESSAGE,
            "unknown_first_message",
            f"first message must be start, got {data['type']!r}"[:120],
        )
    version = data.get("version", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            CloseCode.BAD_MESSAGE, "bad_version", f"protocol version {PROTOCOL_VERSION} only"
        )
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not _CALL_ID.match(call_id):
        raise ProtocolError(
            CloseCode.BAD_MESSAGE, "bad_start", "call_id must be 1-128 of A-Z a-z 0-9 . _ : -"
        )
    agent_id = data.get("agent_id", "")
    if not isinstance(agent_id, str) or len(agent_id) > 128:
        raise ProtocolError(CloseCode.BAD_MESSAGE, "bad_start", "agent_id must be a string")
    rate = data.get("sample_rate")
    if rate not in SAMPLE_RATES or isinstance(rate, bool):
        raise ProtocolError(
            CloseCode.UNSUPPORTED_MEDIA,
            "unsupported_rate",
            f"sample_rate must be 8000 or 16000, got {rate!r}"[:120],
        )
    try:
        encoding = Encoding(data.get("encoding"))
    except ValueError:
        raise ProtocolError(
            CloseCode.UNSUPPORTED_MEDIA,
            "unsupported_encoding",
            f"encoding must be pcm16 or mulaw, got {data.get('encoding')!r}"[:120],
        ) from None
    if data.get("channels", 2) != 2:
        raise ProtocolError(
            CloseCode.UNSUPPORTED_MEDIA, "unsupported_channels", "channels must be 2 (stereo)"
        )
    if data.get("layout", LAYOUT) != LAYOUT:
        raise ProtocolError(
            CloseCode.UNSUPPORTED_MEDIA,
            "unsupported_layout",
            'layout must be ["customer", "agent"] (channel 0, channel 1)',
        )
    return CallInfo(call_id=call_id, agent_id=agent_id, sample_rate=rate, encoding=encoding)


@dataclass(frozen=True, slots=True)
class FrameRules:
    frame_bytes: int  # one sample frame, all channels
    max_bytes: int

    def check(self, payload: bytes) -> None:
        if len(payload) > self.max_bytes:
            raise ProtocolError(
                CloseCode.TOO_BIG,
                "frame_too_large",
                f"audio frame of {len(payload)} bytes exceeds the limit of {self.max_bytes}",
            )
        if len(payload) % self.frame_bytes:
            raise ProtocolError(
                CloseCode.BAD_AUDIO,
                "partial_frame",
                f"audio frame of {len(payload)} bytes is not whole {self.frame_bytes}-byte "
                "sample frames",
            )


# --- the WebSocket edge -------------------------------------------------------------------------


class NativeAdapter(Adapter):
    """`/v1/stream`: the protocol above, the one `agent-assist replay` and the load tests speak."""

    protocol = "native"
    path = "/v1/stream"

    async def handle(self, ws: ServerConnection) -> None:
        try:
            first = await asyncio.wait_for(ws.recv(), self.config.start_timeout_s)
            info = parse_start(first)
            if self.hub.in_use(info.call_id):
                raise ProtocolError(
                    CloseCode.CONFLICT, "call_in_use", "call_id is already streaming"
                )
        except TimeoutError:
            err = ProtocolError(CloseCode.TIMEOUT, "start_timeout", "no start message in time")
            await self._refuse(ws, err, None)
            return
        except ProtocolError as err:
            await self._refuse(ws, err, None)
            return
        except ConnectionClosed:
            return
        rules = FrameRules(info.frame_bytes, self.config.max_frame_bytes)

        async def forward(event: Event) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(to_json(event))

        async with self.hub.call(info, self.protocol, forward) as call:
            started = {"type": "started", "version": PROTOCOL_VERSION, "call_id": info.call_id}
            await ws.send(json.dumps(started))
            error: ProtocolError | None = None
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        rules.check(message)
                        await call.feed(message)
                        continue
                    control = parse_control(message)
                    if control["type"] == "stop":
                        break
                    if control["type"] == "start":
                        raise ProtocolError(
                            CloseCode.CONFLICT, "second_start", "call already started"
                        )
                    raise ProtocolError(
                        CloseCode.BAD_MESSAGE,
                        "unknown_message",
                        f"unknown message type {control['type']!r}"[:120],
                    )
                else:
                    call.ended = "disconnect"  # closed without a stop: finish what was said
            except ProtocolError as err:
                error, call.ended = err, "error"
            except ConnectionClosed:
                call.ended = "disconnect"

            if call.ended == "disconnect":
                log.warning("client vanished mid-call; finalising", extra={"call_id": info.call_id})
            if error is not None:
                await self._refuse(ws, error, info.call_id)
            else:
                # Keep reading while the finals are worked out: anything after stop is an error.
                after_stop = asyncio.create_task(ws.recv())
                await call.finish()
                error = _late_message(after_stop)
                if error is not None:
                    call.ended = "error"
                    await self._refuse(ws, error, info.call_id)

        if call.ended == "stop" and ws.close_code is None:
            with contextlib.suppress(ConnectionClosed):
                stopped = {
                    "type": "stopped",
                    "call_id": info.call_id,
                    "duration": round(call.duration, 3),
                    "finals": call.finals,
                }
                await ws.send(json.dumps(stopped))
                await ws.close(CloseCode.NORMAL, "call stopped")

    async def _refuse(self, ws: ServerConnection, err: ProtocolError, call_id: str | None) -> None:
        refused(self.protocol, err.kind, err.reason, ws.remote_address, call_id)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(err.message()))
            await ws.close(err.code, err.reason)


def _late_message(reader: asyncio.Task[str | bytes]) -> ProtocolError | None:
    """What a read started after `stop` found: a protocol error, or None (nothing, or closed)."""
    if not reader.done():
        reader.cancel()  # safe with websockets: no message is lost
        return None
    if reader.cancelled() or reader.exception() is not None:
        return None
    kind = "audio_after_stop" if isinstance(reader.result(), bytes) else "message_after_stop"
    return ProtocolError(CloseCode.CONFLICT, kind, "nothing may follow stop")
