"""The native ingest protocol, version 1: parsing and validation (free of I/O), then the edge.

    client -> {"type": "start", "version": 1, "call_id": "...", "agent_id": "...",
               "sample_rate": 8000 | 16000, "encoding": "pcm16" | "mulaw",
               "channels": 2, "layout": ["customer", "agent"]}
    server -> {"type": "started", "version": 1, "call_id": "..."}
    client -> binary frames: interleaved stereo, whole sample frames, at most max_frame_bytes
    server -> {"v": 1, "type": "transcript", ...} events as they happen
    client -> {"type": "stop"}
    server -> {"type": "stopped", "call_id": "...", "duration": s, "finals": n}, then close 1000

Bad input closes the socket with a `WsClose` code (4400 malformed, 4408 no start in time, 4409
out of order or call id in use, 4415 unsupported media, 4422 not whole sample frames, 1009 too big)
and a reason, after an {"type": "error", "code": ..., "kind": ..., "reason": ...} message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.calls import CallInUse, Forward, LiveCall
from gateway.ingest import Adapter, Refusal, WsClose, call_order, id_problem, load_json
from pipeline.types import CallInfo, Encoding, Event, to_json

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
SAMPLE_RATES = (8000, 16000)


def error_message(err: Refusal) -> dict[str, Any]:
    """What the client is told before the close."""
    return {"type": "error", "code": int(err.code), "kind": err.kind, "reason": err.reason}


def parse_control(message: str) -> dict[str, Any]:
    """A text frame as a JSON object with a string `type`."""
    try:
        data = load_json(message)
    except ValueError:
        raise Refusal(WsClose.BAD_MESSAGE, "bad_json", "text frame is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Refusal(
            WsClose.BAD_MESSAGE, "bad_message", "control message must be an object with a type"
        )
    return data


def parse_start(message: str | bytes) -> tuple[CallInfo, dict[str, Any]]:
    """The call a start message opens, and its `metadata` object (empty when absent)."""
    if isinstance(message, bytes):
        raise Refusal(
            WsClose.BAD_MESSAGE, "audio_before_start", "first message must be a JSON start"
        )
    data = parse_control(message)
    if data["type"] != "start":
        raise Refusal(
            WsClose.BAD_MESSAGE,
            "unknown_first_message",
            f"first message must be start, got {data['type']!r}",
        )
    version = data.get("version", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise Refusal(
            WsClose.BAD_MESSAGE, "bad_version", f"protocol version {PROTOCOL_VERSION} only"
        )
    call_id, agent_id = data.get("call_id"), data.get("agent_id", "")
    if (problem := id_problem(call_id, agent_id, ("call_id", "agent_id"))) is not None:
        raise Refusal(WsClose.BAD_MESSAGE, "bad_start", problem)
    assert isinstance(call_id, str) and isinstance(agent_id, str)
    rate = data.get("sample_rate")
    if rate not in SAMPLE_RATES or isinstance(rate, bool):
        raise Refusal(
            WsClose.UNSUPPORTED_MEDIA,
            "unsupported_rate",
            f"sample_rate must be 8000 or 16000, got {rate!r}",
        )
    try:
        encoding = Encoding(data.get("encoding"))
    except ValueError:
        raise Refusal(
            WsClose.UNSUPPORTED_MEDIA,
            "unsupported_encoding",
            f"encoding must be pcm16 or mulaw, got {data.get('encoding')!r}",
        ) from None
    if data.get("channels", 2) != 2:
        raise Refusal(
            WsClose.UNSUPPORTED_MEDIA, "unsupported_channels", "channels must be 2 (stereo)"
        )
    layout = data.get("layout", ["customer", "agent"])
    if not isinstance(layout, list) or call_order(layout) != [0, 1]:
        raise Refusal(
            WsClose.UNSUPPORTED_MEDIA,
            "unsupported_layout",
            'layout must be ["customer", "agent"] (channel 0, channel 1)',
        )
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise Refusal(WsClose.BAD_MESSAGE, "bad_start", "metadata must be an object")
    info = CallInfo(call_id=call_id, agent_id=agent_id, sample_rate=rate, encoding=encoding)
    return info, metadata


@dataclass(frozen=True, slots=True)
class FrameRules:
    frame_bytes: int  # one sample frame, all channels
    max_bytes: int

    def check(self, payload: bytes) -> None:
        if len(payload) > self.max_bytes:
            raise Refusal(
                WsClose.TOO_BIG,
                "frame_too_large",
                f"audio frame of {len(payload)} bytes exceeds the limit of {self.max_bytes}",
            )
        if len(payload) % self.frame_bytes:
            raise Refusal(
                WsClose.BAD_AUDIO,
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
            info, metadata = parse_start(first)
            if self.hub.in_use(info.call_id):
                raise Refusal(WsClose.CONFLICT, "call_in_use", "call_id is already streaming")
        except TimeoutError:
            err = Refusal(WsClose.TIMEOUT, "start_timeout", "no start message in time")
            await self.close(ws, err, None)
            return
        except Refusal as err:
            await self.close(ws, err, None)
            return
        except ConnectionClosed:
            return

        async def forward(event: Event) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(to_json(event))

        try:
            call = await self._run(ws, info, forward, self.call_meta(ws, metadata))
        except CallInUse:  # taken on Redis: by another gateway's call, or a finished one
            reason = "call_id is in use or was used before"
            await self.close(ws, Refusal(WsClose.CONFLICT, "call_in_use", reason), info.call_id)
            return
        if call.ended == "stop" and ws.close_code is None:
            with contextlib.suppress(ConnectionClosed):
                stopped = {
                    "type": "stopped",
                    "call_id": info.call_id,
                    "duration": round(call.duration, 3),
                    "finals": call.finals,
                }
                await ws.send(json.dumps(stopped))
                await ws.close(WsClose.NORMAL, "call stopped")

    async def _run(
        self, ws: ServerConnection, info: CallInfo, forward: Forward, meta: dict[str, Any]
    ) -> LiveCall:
        """The call, from the first audio to the finals of what was said."""
        rules = FrameRules(info.frame_bytes, self.config.max_frame_bytes)
        async with self.hub.call(info, self.protocol, forward, meta) as call:
            started = {"type": "started", "version": PROTOCOL_VERSION, "call_id": info.call_id}
            await ws.send(json.dumps(started))
            error: Refusal | None = None
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
                        raise Refusal(WsClose.CONFLICT, "second_start", "call already started")
                    raise Refusal(
                        WsClose.BAD_MESSAGE,
                        "unknown_message",
                        f"unknown message type {control['type']!r}",
                    )
                else:
                    call.ended = "disconnect"  # closed without a stop: finish what was said
            except Refusal as err:
                error, call.ended = err, "error"
            except ConnectionClosed:
                call.ended = "disconnect"

            if call.ended == "disconnect":
                log.warning("client vanished mid-call; finalising", extra={"call_id": info.call_id})
            if error is not None:
                await self.close(ws, error, info.call_id)
            else:
                # Keep reading while the finals are worked out: anything after stop is an error.
                after_stop = asyncio.create_task(ws.recv())
                await call.finish()
                error = _late_message(after_stop)
                if error is not None:
                    call.ended = "error"
                    await self.close(ws, error, info.call_id)
        return call

    async def close(self, ws: ServerConnection, err: Refusal, call_id: str | None) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(error_message(err)))
        await super().close(ws, err, call_id)


def _late_message(reader: asyncio.Task[str | bytes]) -> Refusal | None:
    """What a read started after `stop` found: a protocol error, or None (nothing, or closed)."""
    if not reader.done():
        reader.cancel()  # safe with websockets: no message is lost
        return None
    if reader.cancelled() or reader.exception() is not None:
        return None
    kind = "audio_after_stop" if isinstance(reader.result(), bytes) else "message_after_stop"
    return Refusal(WsClose.CONFLICT, kind, "nothing may follow stop")
