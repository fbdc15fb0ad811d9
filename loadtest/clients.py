"""Clients of the telephony protocols, written from their published specifications.

Each streams a stereo call (customer, agent) the way the platform would, paced in real time or
faster, and returns what the gateway sent back. The tests and the load generator use them; the
Twilio tests also use the real simulator (`streamdouble`) and the WebRTC tests a real browser.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fractions
import json
import secrets
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent_assist.replay import read_wav
from gateway.audiofork import SUBPROTOCOL
from gateway.audiohook import SIGNED, sign
from gateway.calls import IngestKey
from gateway.twilio import signature
from pipeline.speech.audio import MULAW_TO_PCM16, encode_mulaw
from pipeline.types import PCM, Encoding


@dataclass(frozen=True)
class Credentials:
    """The credentials of a local server that a benchmark or test starts (fresh each run), and
    how its clients present them."""

    key: IngestKey = field(default_factory=lambda: IngestKey("loadtest", secrets.token_urlsafe(24)))
    twilio_token: str = field(default_factory=lambda: secrets.token_hex(16))
    audiohook_api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def env(self) -> dict[str, str]:
        """The server process's variables that configure them."""
        return {
            "AGENT_ASSIST_INGEST_KEYS": self.key.text(),
            "TWILIO_AUTH_TOKEN": self.twilio_token,
            "AGENT_ASSIST_AUDIOHOOK_API_KEY": self.audiohook_api_key,
        }

    def settings(self) -> dict[str, str]:
        """The same as `Settings` fields, for a server started in this process."""
        return {
            "ingest_keys": self.key.text(),
            "twilio_auth_token": self.twilio_token,
            "audiohook_api_key": self.audiohook_api_key,
        }

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.secret}"}

    def twilio(self, url: str) -> dict[str, str]:
        """The upgrade's `X-Twilio-Signature`, as Twilio signs a Media Stream to `url`."""
        return {"X-Twilio-Signature": signature(self.twilio_token, url)}


LOCAL = Credentials()  # this process's local servers


def stereo_pcm(path: Path) -> tuple[PCM, int]:
    """A stereo WAV (16-bit or mu-law) as (n, 2) int16 and its rate."""
    wav = read_wav(path)
    if wav.encoding is Encoding.MULAW:
        pcm = MULAW_TO_PCM16[np.frombuffer(wav.data, np.uint8)]
    else:
        pcm = np.frombuffer(wav.data, "<i2").astype(np.int16)
    return pcm.reshape(-1, wav.channels), wav.rate


def chunks(pcm: PCM, rate: int, ms: int) -> Iterator[tuple[float, PCM]]:
    """(seconds into the call, frames) of `ms` each."""
    step = rate * ms // 1000
    for i in range(0, len(pcm), step):
        yield i / rate, pcm[i : i + step]


class Pacer:
    """Sleeps so that audio at `t` seconds goes out at t / speed after the start.

    `start` is when the first audio went out (a load generator reads it to time what comes
    back); `lag` is the furthest the sender fell behind its schedule, which happens when the
    server stops reading (back-pressure) or the client machine is overloaded.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.start = time.monotonic()
        self.lag = 0.0

    def begin(self) -> None:
        self.start = time.monotonic()

    async def at(self, t: float) -> None:
        delay = self.start + t / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self.lag = max(self.lag, -delay)


@dataclass
class Session:
    """What a client saw: the messages back, and how the connection ended."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""


async def _collect(ws: ClientConnection, session: Session) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            if isinstance(message, str):
                with contextlib.suppress(ValueError):
                    session.messages.append(json.loads(message))


# --- Twilio Media Streams -----------------------------------------------------------------------


def twilio_messages(
    pcm: PCM, call_sid: str, parameters: dict[str, str] | None = None, ms: int = 20
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(seconds into the call, message) of a `both_tracks` fork, as Twilio sends them."""
    stream_sid = "MZ" + uuid.uuid4().hex
    seq = 0

    def msg(event: str, **body: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {"event": event, "sequenceNumber": str(seq), **body, "streamSid": stream_sid}

    yield 0.0, {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = {
        "accountSid": "AC" + "0" * 32,
        "streamSid": stream_sid,
        "callSid": call_sid,
        "tracks": ["inbound", "outbound"],
        "customParameters": parameters or {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    yield 0.0, msg("start", start=start)
    chunk = 0
    for t, frames in chunks(pcm, 8000, ms):
        for track, column in (("inbound", 0), ("outbound", 1)):
            chunk += 1
            payload = base64.b64encode(encode_mulaw(frames[:, column])).decode()
            media = {
                "track": track,
                "chunk": str(chunk),
                "timestamp": str(round(t * 1000)),
                "payload": payload,
            }
            yield t, msg("media", media=media)
    yield (
        len(pcm) / 8000,
        msg("stop", stop={"accountSid": start["accountSid"], "callSid": call_sid}),
    )


async def twilio_call(
    url: str,
    pcm: PCM,
    call_sid: str,
    parameters: dict[str, str] | None = None,
    speed: float = 1.0,
    headers: dict[str, str] | None = None,
    pacer: Pacer | None = None,
) -> Session:
    session = Session()
    async with connect(url, additional_headers=headers) as ws:
        reader = asyncio.create_task(_collect(ws, session))
        pacer = pacer or Pacer(speed)
        pacer.begin()
        with contextlib.suppress(ConnectionClosed):
            for t, message in twilio_messages(pcm, call_sid, parameters):
                await pacer.at(t)
                await ws.send(json.dumps(message))
        await reader
        session.close_code, session.close_reason = ws.close_code, ws.close_reason or ""
    return session


# --- FreeSWITCH mod_audio_fork ------------------------------------------------------------------


async def audiofork_call(
    url: str,
    pcm: PCM,
    rate: int,
    metadata: str | None,
    speed: float = 1.0,
    headers: dict[str, str] | None = None,
    ms: int = 20,
) -> Session:
    """`uuid_audio_fork <uuid> start <url> stereo <rate> <metadata>`, as the module streams it."""
    session = Session()
    async with connect(url, subprotocols=[SUBPROTOCOL], additional_headers=headers) as ws:
        reader = asyncio.create_task(_collect(ws, session))
        pacer = Pacer(speed)
        with contextlib.suppress(ConnectionClosed):
            if metadata:
                await ws.send(metadata)
            for t, frames in chunks(pcm, rate, ms):
                await pacer.at(t)
                await ws.send(frames.astype("<i2").tobytes())
            await ws.close(1000, "fork stopped")
        await reader
        session.close_code, session.close_reason = ws.close_code, ws.close_reason or ""
    return session


# --- Genesys AudioHook --------------------------------------------------------------------------


def audiohook_headers(
    target: str,
    authority: str,
    session_id: str,
    organization_id: str,
    api_key: str,
    client_secret: str | None = None,
    created: int | None = None,
) -> dict[str, str]:
    """The upgrade request's headers, signed as Genesys signs them when a secret is set."""
    headers = {
        "Audiohook-Organization-Id": organization_id,
        "Audiohook-Correlation-Id": str(uuid.uuid4()),
        "Audiohook-Session-Id": session_id,
        "X-API-KEY": api_key,
    }
    if client_secret:
        now = int(time.time()) if created is None else created
        nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        components = " ".join(f'"{c}"' for c in SIGNED)
        params = (
            f'({components});keyid="{api_key}";nonce="{nonce}";alg="hmac-sha256";'
            f"created={now};expires={now + 30}"
        )
        values = {
            "@request-target": target,
            "@authority": authority,
            **{k.lower(): v for k, v in headers.items()},
        }
        base = "\n".join(f'"{c}": {values[c]}' for c in SIGNED)
        base += f'\n"@signature-params": {params}'
        headers["Signature-Input"] = f"sig1={params}"
        headers["Signature"] = f"sig1=:{sign(client_secret, base)}:"
    return headers


class AudioHookClient:
    """The Genesys side of one AudioHook session: numbered messages, audio, ping, close."""

    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self.ws = ws
        self.id = session_id
        self.seq = 0
        self.server_seq = 0
        self.position = 0.0
        self.received: list[dict[str, Any]] = []
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(self, kind: str, **parameters: Any) -> None:
        self.seq += 1
        await self.ws.send(
            json.dumps(
                {
                    "version": "2",
                    "id": self.id,
                    "type": kind,
                    "seq": self.seq,
                    "serverseq": self.server_seq,
                    "position": f"PT{self.position:.3f}S",
                    "parameters": parameters,
                }
            )
        )

    async def expect(self, kind: str, within: float = 30.0) -> dict[str, Any]:
        for message in self.received:
            if message.get("type") == kind:
                return message
        future = self._waiters.setdefault(kind, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(future), within)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, bytes):
                    continue
                data = json.loads(message)
                self.received.append(data)
                self.server_seq = max(self.server_seq, int(data.get("seq", 0)))
                waiter = self._waiters.pop(data.get("type", ""), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(data)

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == "event"]

    async def done(self) -> None:
        await self._reader


def open_parameters(
    conversation_id: str,
    organization_id: str,
    media: list[dict[str, Any]] | None = None,
    custom: dict[str, Any] | None = None,
) -> dict[str, Any]:
    offers = media or [
        {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000},
        {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
    ]
    return {
        "organizationId": organization_id,
        "conversationId": conversation_id,
        "participant": {
            "id": str(uuid.uuid4()),
            "ani": "+15555550100",
            "aniName": "Test Caller",
            "dnis": "+18005550199",
        },
        "media": offers,
        "language": "en-US",
        "customConfig": custom or {},
    }


@contextlib.asynccontextmanager
async def audiohook_session(
    url: str,
    api_key: str = "test-api-key",
    client_secret: str | None = None,
    session_id: str | None = None,
    organization_id: str | None = None,
) -> AsyncIterator[AudioHookClient]:
    session_id = session_id or str(uuid.uuid4())
    organization_id = organization_id or str(uuid.uuid4())
    target = "/" + url.split("/", 3)[3]
    authority = url.split("/")[2]
    headers = audiohook_headers(
        target, authority, session_id, organization_id, api_key, client_secret
    )
    async with connect(url, additional_headers=headers, max_size=2**20) as ws:
        client = AudioHookClient(ws, session_id)
        client.organization_id = organization_id  # type: ignore[attr-defined]
        yield client


@dataclass
class AudioHookResult:
    received: list[dict[str, Any]]  # every server message
    live: int  # how many of them came before the client sent close

    def transcripts(self, live_only: bool = False) -> list[dict[str, Any]]:
        return [
            entity["data"]
            for m in self.received[: self.live if live_only else None]
            if m.get("type") == "event"
            for entity in m["parameters"]["entities"]
            if entity["type"] == "transcript"
        ]


async def audiohook_call(
    url: str,
    pcm: PCM,
    conversation_id: str,
    speed: float = 1.0,
    agent_id: str = "",
    frame_ms: int = 200,
    api_key: str = "test-api-key",
    client_secret: str | None = None,
    pacer: Pacer | None = None,
) -> AudioHookResult:
    """One monitored conversation, from open to closed."""
    async with audiohook_session(url, api_key, client_secret) as client:
        org = client.organization_id  # type: ignore[attr-defined]
        custom = {"agent_id": agent_id} if agent_id else {}
        await client.send("open", **open_parameters(conversation_id, org, custom=custom))
        opened = await client.expect("opened")
        channels = opened["parameters"]["media"][0]["channels"]
        order = [0 if c == "external" else 1 for c in channels]
        pacer = pacer or Pacer(speed)
        pacer.begin()
        next_ping = 1.0
        for t, frames in chunks(pcm, 8000, frame_ms):
            await pacer.at(t)
            await client.ws.send(encode_mulaw(frames[:, order].reshape(-1)))
            client.position = t + len(frames) / 8000
            if t >= next_ping:
                await client.send("ping")
                next_ping += 5.0
        live = len(client.received)
        await client.send("close", reason="end")
        await client.expect("closed", within=120)
        await client.ws.close()
        await client.done()
        return AudioHookResult(client.received, live)


# --- Asterisk AudioSocket -----------------------------------------------------------------------


def audiosocket_frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


async def audiosocket_leg(
    host: str, port: int, call_uuid: uuid.UUID, pcm: PCM, speed: float = 1.0
) -> bytes:
    """One leg as Asterisk's AudioSocket() sends it: UUID, 20 ms slin frames, hang-up.
    Returns whatever the server sent back."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(audiosocket_frame(0x01, call_uuid.bytes))
        pacer = Pacer(speed)
        for t, frames in chunks(pcm, 8000, 20):
            await pacer.at(t)
            writer.write(audiosocket_frame(0x10, frames.astype("<i2").tobytes()))
            await writer.drain()
        writer.write(audiosocket_frame(0x00))
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def audiosocket_call(
    host: str, ports: tuple[int, int], call_uuid: uuid.UUID, pcm: PCM, speed: float = 1.0
) -> None:
    """Both legs of a call: the customer's to the first port, the agent's to the second."""
    await asyncio.gather(
        *(audiosocket_leg(host, ports[c], call_uuid, pcm[:, c].copy(), speed) for c in (0, 1))
    )


# --- WebRTC -------------------------------------------------------------------------------------


class PcmTrack(MediaStreamTrack):
    """An audio track that plays mono 48 kHz samples in real time, then silence."""

    kind = "audio"

    def __init__(self, pcm: PCM) -> None:
        super().__init__()
        self.pcm = pcm
        self.pos = 0
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = 960  # 20 ms
        if self.start is None:
            self.start = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self.start + self.pos / 48000 - time.monotonic()))
        chunk = np.zeros(n, dtype=np.int16)
        part = self.pcm[self.pos : self.pos + n]
        chunk[: len(part)] = part
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.pos
        frame.time_base = fractions.Fraction(1, 48000)
        self.pos += n
        return frame


async def webrtc_offer(
    url: str, tracks: list[PCM], call_id: str, layout: str, token: str | None = None
) -> tuple[RTCPeerConnection, int, dict[str, Any]]:
    """Offer `tracks` (mono 48 kHz each) to `url` (…/webrtc/offer) as a browser would; returns
    the connection, the HTTP status and the JSON reply (the answer is applied when it is one)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for pcm in tracks:
        pc.addTrack(PcmTrack(pcm))
    await pc.setLocalDescription(await pc.createOffer())
    body = {"type": "offer", "sdp": pc.localDescription.sdp, "call_id": call_id, "layout": layout}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        reply = await r.json()
        if r.status == 200:
            await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        return pc, r.status, reply
