"""A client of the native protocol: stream a stereo WAV at real-time pace (or faster) and collect
the events that come back, with the latency the client sees for each.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pipeline.types import Encoding

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class WavError(ValueError):
    pass


@dataclass(frozen=True)
class WavAudio:
    rate: int
    channels: int
    encoding: Encoding
    data: bytes  # interleaved frames as stored

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.encoding.sample_width

    @property
    def duration(self) -> float:
        return len(self.data) / self.frame_bytes / self.rate


def read_wav(path: Path) -> WavAudio:
    """A RIFF/WAVE file of 16-bit PCM or G.711 mu-law (the stdlib `wave` reads only PCM)."""
    raw = path.read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise WavError(f"{path}: missing fmt or data chunk")
    tag, channels, rate = struct.unpack_from("<HHI", fmt, 0)
    bits = struct.unpack_from("<H", fmt, 14)[0]
    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if tag == WAVE_FORMAT_PCM and bits == 16:
        encoding = Encoding.PCM16
    elif tag == WAVE_FORMAT_MULAW and bits == 8:
        encoding = Encoding.MULAW
    else:
        raise WavError(f"{path}: format {tag} with {bits} bits; need 16-bit PCM or mu-law")
    audio = WavAudio(rate, channels, encoding, data)
    return WavAudio(rate, channels, encoding, data[: len(data) - len(data) % audio.frame_bytes])


@dataclass
class Received:
    event: dict[str, Any]
    at: float  # monotonic time of receipt
    latency: float | None  # seconds from the moment the audio it covers was sent


@dataclass
class ReplayResult:
    call_id: str
    received: list[Received] = field(default_factory=list)
    stopped: dict[str, Any] | None = None
    close_code: int | None = None
    close_reason: str = ""
    started_at: float = 0.0  # monotonic time the first audio frame was sent
    started_wall: float = 0.0  # the same moment on the wall clock (time.time())
    speed: float = 1.0
    lag: float = 0.0  # the furthest the sender fell behind real time (server back-pressure)

    def sent_at(self, seconds: float) -> float:
        """Monotonic time at which the audio at `seconds` into the call was sent."""
        return self.started_at + seconds / self.speed

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.received if "v" in r.event]


def event_latency(
    event: dict[str, Any], sent_at: Callable[[float], float], now: float
) -> float | None:
    """Finals: from the end of the last word (end of speech) as sent; interims: from the
    utterance's start as sent. None for events that are not transcripts."""
    if event.get("type") != "transcript":
        return None
    if event["final"]:
        words = event.get("words") or []
        point = words[-1]["end"] if words else event["end"]
    else:
        point = event["start"]
    return now - sent_at(point)


async def replay(
    path: Path,
    url: str,
    speed: float = 1.0,
    on_event: Callable[[Received], None] | None = None,
    call_id: str | None = None,
    agent_id: str = "demo-agent",
    frame_ms: int = 20,
    key: str | None = None,
) -> ReplayResult:
    """Stream `path` to the native protocol at `url`, presenting the ingest `key`."""
    audio = read_wav(path)
    if audio.channels != 2:
        raise WavError(
            f"{path}: {audio.channels} channel(s); need stereo (customer left, agent right)"
        )
    call_id = call_id or f"replay-{uuid.uuid4().hex[:12]}"
    result = ReplayResult(call_id, speed=speed)
    step = audio.frame_bytes * audio.rate * frame_ms // 1000
    t0 = 0.0

    def sent_at(seconds: float) -> float:
        return t0 + seconds / speed

    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with connect(url, max_size=None, open_timeout=30, additional_headers=headers) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "start",
                    "version": 1,
                    "call_id": call_id,
                    "agent_id": agent_id,
                    "sample_rate": audio.rate,
                    "encoding": audio.encoding.value,
                    "channels": 2,
                    "layout": ["customer", "agent"],
                }
            )
        )
        reply = json.loads(await ws.recv())
        if reply.get("type") != "started":
            raise RuntimeError(f"server refused the call: {reply}")

        async def receive() -> None:
            try:
                async for message in ws:
                    now = time.monotonic()
                    event = json.loads(message)
                    if event.get("type") == "stopped":
                        result.stopped = event
                    got = Received(event, now, event_latency(event, sent_at, now))
                    result.received.append(got)
                    if on_event is not None:
                        on_event(got)
            except ConnectionClosed:
                pass

        receiver = asyncio.create_task(receive())
        t0 = result.started_at = time.monotonic()
        result.started_wall = time.time()
        for i, offset in enumerate(range(0, len(audio.data), step)):
            delay = t0 + i * frame_ms / 1000 / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                result.lag = max(result.lag, -delay)
            await ws.send(audio.data[offset : offset + step])
        await ws.send(json.dumps({"type": "stop"}))
        await receiver
        result.close_code = ws.close_code
        result.close_reason = ws.close_reason or ""
    return result
