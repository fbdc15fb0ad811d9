"""Twilio Media Streams (`<Start><Stream track="both_tracks">`), as Twilio documents them.

    connected -> start (callSid, tracks, customParameters, mediaFormat) -> media ... -> stop
    (dtmf and mark may come between; all numbers arrive as strings)

`inbound` (what the caller says) is the customer, `outbound` (what the caller hears) the agent.
Each track's 20 ms base64 mu-law chunks are placed by `media.timestamp` (ms since the stream
started), so reordered chunks land in place and a timestamp gap is silence, never shifted audio.
`customParameters.agent_id` names the agent, and `customParameters.call_id` (your own id for
the call) is used instead of the CallSid when given. With an auth token configured the handshake's
`X-Twilio-Signature` (HMAC-SHA1 of the URL Twilio dialled, base64) must match.

A Media Stream is one-way: the server sends nothing back, so a refusal is a WebSocket close
(RFC 6455 codes: 1002 out of order, 1003 wrong media format, 1007 malformed message, 1008 bad
signature or call in use, 1009 oversized) after which Twilio ends the stream.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from gateway.calls import CallInUse, GatewayConfig, LiveCall
from gateway.ingest import (
    Adapter,
    Refusal,
    WsClose,
    agent_id_of,
    id_problem,
    load_json,
    party,
    secret_matches,
    valid_call_id,
)
from gateway.tracks import TrackAligner, TrackJump
from pipeline.runtime import metrics
from pipeline.speech.audio import MULAW_TO_PCM16
from pipeline.types import PCM, CallInfo, Encoding

log = logging.getLogger(__name__)

RATE = 8000
MAX_PAYLOAD = 8000  # bytes of mu-law in one media message: 1 s (Twilio sends 160)
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamStart:
    call_sid: str
    stream_sid: str
    tracks: tuple[int, ...]
    parameters: dict[str, str]

    @property
    def agent_id(self) -> str:
        return agent_id_of(self.parameters)

    @property
    def call_id(self) -> str:
        """`<Parameter name="call_id">` (your own call id) if given and valid, else the CallSid."""
        given = self.parameters.get("call_id", "")
        return given if valid_call_id(given) else self.call_sid


@dataclass
class TwilioStream:
    """The Media Streams state machine, free of I/O: messages in, positioned audio out."""

    start: StreamStart | None = None
    stopped: bool = False
    last_seq: int = 0
    duplicates: int = 0
    _seen: set[int] = field(default_factory=set)
    dtmf: int = 0
    aligner: TrackAligner = field(default_factory=lambda: TrackAligner(RATE))

    def receive(self, message: str | bytes) -> StreamStart | PCM | None:
        """One WebSocket message: the start (once), audio ready to feed, or None."""
        if isinstance(message, bytes):
            raise Refusal(WsClose.INVALID, "binary_frame", "Media Streams messages are JSON text")
        if len(message) > MAX_MESSAGE:
            raise Refusal(WsClose.TOO_BIG, "message_too_large", "message over 64 KiB")
        try:
            data = load_json(message)
        except ValueError:
            raise Refusal(WsClose.INVALID, "bad_json", "message is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            raise Refusal(WsClose.INVALID, "bad_message", "message must be an object with an event")
        event = data["event"]
        if self.stopped:
            raise Refusal(WsClose.PROTOCOL_ERROR, "message_after_stop", f"{event} after stop")
        if event == "connected":
            if self.start is not None:
                raise Refusal(WsClose.PROTOCOL_ERROR, "out_of_order", "connected after start")
            return None
        if event == "start":
            if self.start is not None:
                raise Refusal(WsClose.PROTOCOL_ERROR, "second_start", "stream already started")
            self._sequence(data)
            self.start = parse_start(data)
            self.aligner = TrackAligner(RATE, tracks=self.start.tracks)
            return self.start
        if self.start is None:
            raise Refusal(WsClose.PROTOCOL_ERROR, "out_of_order", f"{event} before start")
        if not self._sequence(data):
            return None  # a duplicate
        if event == "media":
            self._media(data)
            return self.aligner.pop()
        if event == "stop":
            self.stopped = True
            return self.aligner.flush()
        if event == "dtmf":
            self.dtmf += 1  # the digit is never published: keypads carry card numbers
            return None
        if event == "mark":
            return None
        raise Refusal(WsClose.INVALID, "unknown_event", f"unknown event {event!r}")

    def _sequence(self, data: dict[str, Any]) -> bool:
        """False for a message seen before (a repeated sequence number); out of order is fine."""
        raw = data.get("sequenceNumber")
        if raw is None:
            return True
        try:
            seq = int(raw)
        except (TypeError, ValueError):
            raise Refusal(
                WsClose.INVALID, "bad_sequence", "sequenceNumber is not a number"
            ) from None
        if seq in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(seq)
        if len(self._seen) > 1024:  # a window well beyond any reordering
            self._seen.discard(min(self._seen))
        self.last_seq = max(self.last_seq, seq)
        return True

    def _media(self, data: dict[str, Any]) -> None:
        media = data.get("media")
        if not isinstance(media, dict):
            raise Refusal(WsClose.INVALID, "bad_media", "media message without a media object")
        track = party(media.get("track", "inbound"))
        if track is None:
            raise Refusal(WsClose.INVALID, "bad_media", f"unknown track {media.get('track')!r}")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise Refusal(WsClose.INVALID, "bad_media", "media.payload must be base64 text")
        if len(payload) > MAX_PAYLOAD * 4 // 3 + 4:
            raise Refusal(WsClose.TOO_BIG, "frame_too_large", "media payload over 1 s of audio")
        try:
            audio = base64.b64decode(payload, validate=True)
            stamp = int(media["timestamp"]) if "timestamp" in media else None
        except (binascii.Error, ValueError, TypeError):
            raise Refusal(WsClose.INVALID, "bad_media", "bad base64 payload or timestamp") from None
        if stamp is not None and stamp < 0:
            raise Refusal(WsClose.INVALID, "bad_media", "negative timestamp")
        start = None if stamp is None else stamp * RATE // 1000
        try:
            self.aligner.put(track.value, MULAW_TO_PCM16[np.frombuffer(audio, np.uint8)], start)
        except TrackJump as exc:
            raise Refusal(WsClose.INVALID, "bad_timestamp", f"media.timestamp: {exc}") from None


def parse_start(data: dict[str, Any]) -> StreamStart:
    start = data.get("start")
    if not isinstance(start, dict):
        raise Refusal(WsClose.INVALID, "bad_start", "start message without a start object")
    fmt = start.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise Refusal(WsClose.INVALID, "bad_start", "mediaFormat must be an object")
    encoding, rate = fmt.get("encoding", "audio/x-mulaw"), str(fmt.get("sampleRate", RATE))
    if encoding != "audio/x-mulaw" or rate != str(RATE) or str(fmt.get("channels", 1)) != "1":
        raise Refusal(
            WsClose.UNSUPPORTED,
            "unsupported_media",
            f"need audio/x-mulaw 8000 Hz mono, got {encoding} {rate} Hz",
        )
    call_sid = start.get("callSid") or data.get("streamSid") or start.get("streamSid")
    if not isinstance(call_sid, str) or not valid_call_id(call_sid):
        raise Refusal(WsClose.INVALID, "bad_start", "start needs a callSid of A-Z a-z 0-9 . _ -")
    tracks = start.get("tracks", ["inbound"])
    parties = [party(t) for t in tracks] if isinstance(tracks, list) else []
    if not parties or None in parties:
        raise Refusal(WsClose.INVALID, "bad_start", f"tracks must be inbound/outbound: {tracks!r}")
    params = start.get("customParameters") or {}
    if not isinstance(params, dict):
        raise Refusal(WsClose.INVALID, "bad_start", "customParameters must be an object")
    parsed = StreamStart(
        call_sid=call_sid,
        stream_sid=str(data.get("streamSid") or start.get("streamSid") or ""),
        tracks=tuple(p.value for p in parties if p is not None),
        parameters={str(k): str(v)[:256] for k, v in params.items()},
    )
    if (problem := id_problem(parsed.call_id, parsed.agent_id)) is not None:
        raise Refusal(WsClose.INVALID, "bad_start", problem)
    return parsed


def signature(auth_token: str, url: str) -> str:
    """Twilio's request signature of a GET (the WebSocket handshake): HMAC-SHA1 of the URL."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_urls(public_url: str, target: str) -> list[str]:
    """The URL Twilio signed, with and without the default port (Twilio's own validator tries
    both), for `target` (the request's path and query) on the public base URL."""
    base = urlsplit(public_url)
    path, _, query = target.partition("?")
    url = urlsplit(urlunsplit((base.scheme, base.netloc, path, query, "")))
    default = {"wss": 443, "https": 443, "ws": 80, "http": 80}.get(url.scheme)
    host = url.hostname or ""
    with_port = f"{host}:{url.port or default}"
    return [
        urlunsplit(url._replace(netloc=netloc))
        for netloc in dict.fromkeys((url.netloc, host, with_port))
    ]


class TwilioAdapter(Adapter):
    protocol = "twilio"
    path = "/twilio"

    def check(self, request: Request) -> Refusal | None:
        token = self.config.twilio_auth_token
        if not token:  # only under --insecure: `admit` refuses otherwise
            return None
        given = request.headers.get("X-Twilio-Signature", "")
        base = self.config.public_url or f"ws://{request.headers.get('Host', '')}"
        expected = [signature(token, url) for url in signed_urls(base, request.path)]
        if any(secret_matches(given, e) for e in expected):
            return None
        return Refusal(HTTPStatus.FORBIDDEN, "forbidden", "X-Twilio-Signature does not match")

    @classmethod
    def missing(cls, config: GatewayConfig) -> str | None:
        return None if config.twilio_auth_token else "--twilio-auth-token"

    async def handle(self, ws: ServerConnection) -> None:
        stream = TwilioStream()
        call: LiveCall | None = None
        async with contextlib.AsyncExitStack() as stack:
            try:
                async for message in ws:
                    out = stream.receive(message)
                    if isinstance(out, StreamStart):
                        info = CallInfo(out.call_id, out.agent_id, RATE, Encoding.PCM16)
                        meta = {
                            "call_sid": out.call_sid,
                            "stream_sid": out.stream_sid,
                            "tracks": len(out.tracks),
                        } | self.call_meta(None, out.parameters)
                        try:
                            call = await stack.enter_async_context(
                                self.hub.call(info, self.protocol, meta=meta)
                            )
                        except CallInUse:
                            raise Refusal(
                                WsClose.POLICY,
                                "call_in_use",
                                f"call {out.call_id} is already streaming",
                            ) from None
                    elif out is not None and call is not None:
                        await call.feed_pcm(out)
                    if stream.stopped:
                        break
                else:
                    if call is not None:
                        call.ended = "disconnect"
            except Refusal as err:
                if call is not None:
                    call.ended = "error"
                await self.close(ws, err, call_id(call))
            except ConnectionClosed:
                if call is not None:
                    call.ended = "disconnect"
            if call is not None and not stream.stopped:
                log.warning("stream ended without stop", extra={"call_id": call_id(call)})
                await call.feed_pcm(stream.aligner.flush())  # what was said still counts
            self._count(stream)
        if stream.stopped:
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1000, "stream stopped")

    def _count(self, stream: TwilioStream) -> None:
        metrics.MEDIA_GAPS.labels(self.protocol).inc(stream.aligner.take_lost())


def call_id(call: LiveCall | None) -> str | None:
    return call.info.call_id if call is not None else None
