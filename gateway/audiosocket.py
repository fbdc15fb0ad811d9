"""Asterisk AudioSocket (TCP): one leg per connection, the two legs of a call joined by UUID.

Frames: 1 byte type, 2 bytes big-endian payload length, the payload.

    0x01 UUID (16 bytes, first)    0x10 signed-linear 16-bit LE mono at 8 kHz (0x12: 16 kHz)
    0x03 DTMF (1 byte)             0x00 hang-up               0xff error (Asterisk's code byte)

AudioSocket carries no party, so the port says which leg it is: `audiosocket_port` takes the
customer's leg and the next port (`audiosocket_port + 1`) the agent's; both legs send the same
UUID, which becomes the call id. The first leg waits up to 0.3 s for the other, so legs that
start together are aligned from their first sample; a leg that comes later joins where the call
is, and a leg that never comes is silence.

Bad input (no UUID first, an unknown type, audio of the wrong rate or not whole samples, a frame
over `MAX_PAYLOAD`, a UUID already streaming on that leg) is refused the way Asterisk expects:
a hang-up frame (`00 00 00`), then the socket is closed. The protocol has no credential, so only
loopback and the networks in `audiosocket_allow` may connect; anyone else is hung up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import struct
import uuid
from dataclasses import dataclass, field

import numpy as np

from gateway.calls import CallHub, CallInUse, GatewayConfig, LiveCall
from gateway.ingest import Refusal, refused
from gateway.tracks import TrackAligner
from pipeline.runtime import metrics
from pipeline.types import PCM, CallInfo, Channel, Encoding

log = logging.getLogger(__name__)

PROTOCOL = "audiosocket"
HANGUP, UUID, DTMF, ERROR = 0x00, 0x01, 0x03, 0xFF
SLIN_RATES = {0x10: 8000, 0x12: 16000}
MAX_PAYLOAD = 16000  # 0.5 s at 16 kHz; Asterisk sends 20 ms frames
HANGUP_FRAME = bytes([HANGUP, 0, 0])
QUEUE_CHUNKS = 100  # aligned chunks waiting for the call: about 2 s of 20 ms frames


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    payload: bytes


def encode(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(3)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise Refusal(HANGUP, "truncated", "connection ended inside a frame header") from None
        return None
    kind, length = struct.unpack(">BH", header)
    if length > MAX_PAYLOAD:
        raise Refusal(HANGUP, "frame_too_large", f"{length}-byte payload over {MAX_PAYLOAD}")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise Refusal(HANGUP, "truncated", "connection ended inside a frame") from None
    return Frame(kind, payload)


def audio(frame: Frame, rate: int | None) -> PCM:
    """A slin frame's samples; `rate`: the leg's rate so far (None before its first audio)."""
    got = SLIN_RATES.get(frame.kind)
    if got is None:
        raise Refusal(HANGUP, "unsupported_type", f"frame type 0x{frame.kind:02x} not supported")
    if rate is not None and got != rate:
        raise Refusal(HANGUP, "rate_changed", f"audio switched from {rate} to {got} Hz")
    if len(frame.payload) % 2:
        raise Refusal(HANGUP, "partial_frame", "slin audio must be whole 16-bit samples")
    return np.frombuffer(frame.payload, "<i2").astype(np.int16)


@dataclass(eq=False)
class _Call:
    """Both legs of one call: the aligner they feed and the task that runs the call."""

    call_id: str
    rate: int
    aligner: TrackAligner
    legs: set[Channel] = field(default_factory=set)
    # bounded: when the call falls behind, the legs' reads wait (TCP pushes back on Asterisk)
    queue: asyncio.Queue[PCM | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_CHUNKS))
    task: asyncio.Task[None] | None = None

    async def send(self, pcm: PCM | None) -> None:
        """Audio ready for the call (None: both legs are gone), unless the call already ended."""
        if self.task is not None and not self.task.done() and (pcm is None or len(pcm)):
            await self.queue.put(pcm)


class AudioSocketServer:
    def __init__(self, hub: CallHub, config: GatewayConfig) -> None:
        self.hub = hub
        self.config = config
        self._servers: dict[Channel, asyncio.Server] = {}
        self._calls: dict[str, _Call] = {}
        self._conns: set[asyncio.Task[None]] = set()
        self.ports: dict[Channel, int] = {}

    async def start(self) -> None:
        base = self.config.audiosocket_port or 0
        for channel in Channel:
            port = base + channel.value if base else 0
            server = await asyncio.start_server(
                functools.partial(self._accept, channel=channel), self.config.host, port
            )
            self._servers[channel] = server
            self.ports[channel] = int(server.sockets[0].getsockname()[1])
        log.info(
            "AudioSocket: customer legs on %s:%d, agent legs on %s:%d",
            self.config.host,
            self.ports[Channel.CUSTOMER],
            self.config.host,
            self.ports[Channel.AGENT],
        )

    async def stop(self, force: bool = False) -> None:
        for server in self._servers.values():
            server.close()
        if force:
            for task in self._conns:
                task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await asyncio.gather(
            *(c.task for c in self._calls.values() if c.task), return_exceptions=True
        )

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, channel: Channel
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        peer = writer.get_extra_info("peername")
        call: _Call | None = None
        try:
            if not self._allowed(peer):
                raise Refusal(
                    HANGUP, "forbidden_peer", f"{peer[0]} may not connect (audiosocket_allow)"
                )
            call = await self._leg(reader, channel)
        except Refusal as err:
            refused(PROTOCOL, err.kind, err.reason, peer, call.call_id if call else None)
            with contextlib.suppress(ConnectionError):
                writer.write(HANGUP_FRAME)
                await writer.drain()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("AudioSocket leg from %s lost: %s", peer, exc)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _allowed(self, peer: tuple[str, int] | None) -> bool:
        """AudioSocket carries no credential: only loopback and the configured networks."""
        if not peer:
            return False
        try:
            ip = ipaddress.ip_address(peer[0])
        except ValueError:
            return False
        nets = (ipaddress.ip_network(n) for n in self.config.audiosocket_allow)
        return ip.is_loopback or any(ip in net for net in nets)

    async def _leg(self, reader: asyncio.StreamReader, channel: Channel) -> _Call | None:
        """Read one leg to its end; returns the call it fed."""
        first = await asyncio.wait_for(read_frame(reader), self.config.start_timeout_s)
        if first is None:
            return None
        if first.kind != UUID or len(first.payload) != 16:
            raise Refusal(HANGUP, "uuid_first", "the first frame must be a 16-byte UUID")
        call_id = str(uuid.UUID(bytes=first.payload))
        call: _Call | None = self._calls.get(call_id)
        if call is not None and channel in call.legs:
            raise Refusal(HANGUP, "call_in_use", f"{channel.label} leg of {call_id} is streaming")
        rate: int | None = call.rate if call is not None else None
        joined = False
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None or frame.kind == HANGUP:
                    return call
                if frame.kind == DTMF:
                    continue  # never published: keypads carry card numbers
                if frame.kind == ERROR:
                    code = frame.payload[:1].hex() or "none"
                    log.warning(
                        "AudioSocket error frame (code %s)", code, extra={"call_id": call_id}
                    )
                    continue
                pcm = audio(frame, rate)
                if call is None:
                    rate = SLIN_RATES[frame.kind]
                    call = self._open(call_id, rate)
                rate = call.rate
                if not joined:
                    if channel in call.legs:
                        raise Refusal(HANGUP, "call_in_use", f"{call_id} leg already streaming")
                    call.legs.add(channel)
                    call.aligner.join(channel.value)
                    joined = True
                call.aligner.put(channel.value, pcm)
                await call.send(call.aligner.pop())
        finally:
            if call is not None and joined:
                call.aligner.end(channel.value)
                call.legs.discard(channel)
                await call.send(call.aligner.pop() if call.legs else None)

    def _open(self, call_id: str, rate: int) -> _Call:
        if self.hub.in_use(call_id):
            raise Refusal(HANGUP, "call_in_use", f"call {call_id} is streaming elsewhere")
        call = _Call(call_id, rate, TrackAligner(rate, hold_s=0.3))
        self._calls[call_id] = call
        call.task = asyncio.create_task(self._run(call))
        return call

    async def _run(self, call: _Call) -> None:
        info = CallInfo(call.call_id, "", call.rate, Encoding.PCM16)
        try:
            async with self.hub.call(info, PROTOCOL) as live:
                await self._pump(call, live)
        except CallInUse:
            log.warning("call %s already streaming", call.call_id)
        except Exception:
            log.exception("AudioSocket call failed", extra={"call_id": call.call_id})
            metrics.ERRORS.labels("call").inc()
        finally:
            self._calls.pop(call.call_id, None)

    async def _pump(self, call: _Call, live: LiveCall) -> None:
        while (pcm := await call.queue.get()) is not None:
            await live.feed_pcm(pcm)
        await live.feed_pcm(call.aligner.flush())
        metrics.MEDIA_GAPS.labels(PROTOCOL).inc(call.aligner.take_lost())
