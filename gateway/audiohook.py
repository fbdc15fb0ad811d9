"""Genesys Cloud AudioHook v2 (Monitor): the session protocol, then the WebSocket edge.

Genesys (the client) connects with `Audiohook-Organization-Id`, `Audiohook-Correlation-Id`,
`Audiohook-Session-Id` and `X-API-KEY` headers, signed (RFC 9421 style, hmac-sha256 with the
base64 client secret) when a client secret is configured. Then, in JSON text messages numbered by
`seq` (each side its own, from 1; the client echoes our last as `serverseq`, we echo its last as
`clientseq`):

    open (media offers) -> opened (the one we pick)     ping -> pong
    paused / resumed (the client's own, or after our pause / resume)     discarded
    update -> updated          close -> (last events) closed          error: logged
    binary frames: interleaved samples of the picked media, in its `channels` order
    (`external` the customer, `internal` the agent), PCMU or L16 (little-endian) at 8 kHz

While the call is live we send `event` messages with a `transcript` entity per interim and final
(channelId: the index in the picked `channels`) and an `agentassist` entity with the final
utterance and any knowledge suggestions (type `faq`). Any violation (bad sequence, wrong id,
audio while paused or before `opened`, no two-channel media offered, ...) gets one `disconnect`
(reason `error`, with `info`), after which we wait for the client's `close` and answer `closed`;
bad credentials are refused with HTTP 401 before the upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from gateway.calls import Adapter, CallInUse, LiveCall, refused
from pipeline.speech.audio import MULAW_TO_PCM16
from pipeline.types import PCM, CallInfo, Channel, Encoding, Event, SuggestionEvent, TranscriptEvent

log = logging.getLogger(__name__)

VERSION = "2"
RATE = 8000
MAX_TEXT = 65535
MAX_DISCARD_S = 3600.0
NULL_UUID = "00000000-0000-0000-0000-000000000000"
SIGNED = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DURATION = re.compile(r"^PT(\d*\.?\d+)S$")
PARTY = {"external": Channel.CUSTOMER, "internal": Channel.AGENT}


class State(enum.Enum):
    PREPARING = "preparing"  # before open
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSING = "closing"  # close received, closed not yet sent
    CLOSED = "closed"


class AudioHookError(Exception):
    """A violation answered with `disconnect` (`reason`: error or unauthorized)."""

    def __init__(self, kind: str, info: str, reason: str = "error") -> None:
        super().__init__(info)
        self.kind, self.info, self.reason = kind, info[:200], reason


@dataclass(frozen=True, slots=True)
class Media:
    format: str  # PCMU or L16
    channels: tuple[str, ...]
    rate: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "audio",
            "format": self.format,
            "channels": list(self.channels),
            "rate": self.rate,
        }


@dataclass(frozen=True, slots=True)
class Open:
    conversation_id: str
    organization_id: str
    media: Media | None  # None: a connection probe, or nothing we can use
    language: str
    custom: dict[str, Any]

    @property
    def probe(self) -> bool:
        return self.conversation_id == NULL_UUID


def duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") + "S"


def seconds(value: Any, name: str) -> float:
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None:
        raise AudioHookError("bad_message", f"{name} must be a duration like PT1.5S")
    return float(m.group(1))


def pick_media(offers: Any) -> Media | None:
    """Two-channel (external + internal) PCMU at 8 kHz first, then L16; None if neither."""
    if not isinstance(offers, list):
        raise AudioHookError("bad_open", "open.parameters.media must be an array")
    usable = []
    for offer in offers:
        if not isinstance(offer, dict):
            raise AudioHookError("bad_open", "each media offer must be an object")
        channels = offer.get("channels")
        if (
            offer.get("type") == "audio"
            and offer.get("format") in ("PCMU", "L16")
            and offer.get("rate") == RATE
            and isinstance(channels, list)
            and sorted(channels) == ["external", "internal"]
        ):
            usable.append(Media(offer["format"], tuple(channels), RATE))
    usable.sort(key=lambda m: m.format != "PCMU")
    return usable[0] if usable else None


class AudioHookSession:
    """One AudioHook session's protocol state, free of I/O: messages in, messages out."""

    def __init__(self, session_id: str, organization_id: str | None = None) -> None:
        self.id = session_id
        self.organization_id = organization_id
        self.state = State.PREPARING
        self.seq = 0  # our last seq
        self.client_seq = 0  # the client's last seq
        self.media: Media | None = None
        self.signalled = False  # a disconnect was sent: only close is awaited now
        self.samples = 0  # audio received, per channel

    def message(self, kind: str, **parameters: Any) -> dict[str, Any]:
        """The next server message (numbered)."""
        self.seq += 1
        return {
            "version": VERSION,
            "id": self.id,
            "type": kind,
            "seq": self.seq,
            "clientseq": self.client_seq,
            "parameters": parameters,
        }

    def disconnect(self, err: AudioHookError) -> dict[str, Any] | None:
        """The one `disconnect` of a session (None if it was already sent, or closing)."""
        if self.signalled or self.state in (State.CLOSING, State.CLOSED):
            return None
        self.signalled = True
        return self.message("disconnect", reason=err.reason, info=err.info)

    def parse(self, text: str) -> tuple[str, dict[str, Any]]:
        """Check one client text message's envelope and sequence: (type, parameters)."""
        if len(text) > MAX_TEXT:
            raise AudioHookError("message_too_large", "Client Error: text message over 64K")
        try:
            msg = json.loads(text)
        except ValueError:
            raise AudioHookError("bad_json", "Client Error: text message not valid JSON") from None
        if not isinstance(msg, dict) or msg.get("version") != VERSION:
            raise AudioHookError("bad_message", 'Client Error: version must be "2"')
        kind, seq, params = msg.get("type"), msg.get("seq"), msg.get("parameters", {})
        serverseq = msg.get("serverseq", 0)
        if not isinstance(kind, str) or not isinstance(params, dict):
            raise AudioHookError("bad_message", "Client Error: type and parameters required")
        if not isinstance(seq, int) or not _int(seq) or not _int(serverseq):
            raise AudioHookError("bad_message", "Client Error: seq and serverseq must be integers")
        if msg.get("id") != self.id:
            raise AudioHookError("bad_sequence", "Client Error: session identifier mismatch")
        if self.signalled:  # after our disconnect only the client's close matters
            self.client_seq = seq
            return kind, params
        if seq != self.client_seq + 1:
            raise AudioHookError(
                "bad_sequence", f"Client Error: seq {seq} after {self.client_seq} (not +1)"
            )
        if serverseq > self.seq:
            raise AudioHookError("bad_sequence", f"Client Error: serverseq {serverseq} unseen")
        if "position" in msg:
            seconds(msg["position"], "position")
        self.client_seq = seq
        return kind, params

    def open(self, params: dict[str, Any]) -> Open:
        if self.state is not State.PREPARING:
            raise AudioHookError("out_of_order", "Client Error: open after the session opened")
        conversation = params.get("conversationId")
        organization = params.get("organizationId")
        if not isinstance(conversation, str) or not _UUID.match(conversation):
            raise AudioHookError("bad_open", "Client Error: conversationId must be a UUID")
        if self.organization_id is not None and organization != self.organization_id:
            raise AudioHookError(
                "unauthorized",
                "organizationId does not match the Audiohook-Organization-Id header",
                reason="unauthorized",
            )
        media = pick_media(params.get("media", []))
        custom = params.get("customConfig") or {}
        language = params.get("language") or ""
        opened = Open(
            conversation,
            str(organization),
            media,
            language if isinstance(language, str) else "",
            custom if isinstance(custom, dict) else {},
        )
        if media is None and not opened.probe:
            offered = json.dumps(params.get("media"))[:100]
            raise AudioHookError(
                "unsupported_media",
                f"Client Error: need 8 kHz PCMU or L16 with external and internal, got {offered}",
            )
        self.media = None if opened.probe else media
        self.state = State.ACTIVE
        return opened

    def audio(self, data: bytes, max_bytes: int) -> PCM:
        """A binary frame as (n, 2) int16, customer first."""
        if self.state is not State.ACTIVE or self.media is None:
            raise AudioHookError(
                "out_of_order", f"Client Error: audio received in state {self.state.value}"
            )
        width = 1 if self.media.format == "PCMU" else 2
        frame = width * len(self.media.channels)
        if len(data) > max_bytes:
            raise AudioHookError("frame_too_large", f"Client Error: {len(data)}-byte audio frame")
        if len(data) % frame:
            raise AudioHookError("partial_frame", "Client Error: binary data not whole frames")
        if width == 1:
            pcm = MULAW_TO_PCM16[np.frombuffer(data, np.uint8)]
        else:
            pcm = np.frombuffer(data, "<i2").astype(np.int16)
        pcm = pcm.reshape(-1, len(self.media.channels))
        self.samples += len(pcm)
        order = [self.media.channels.index(p) for p in ("external", "internal")]
        return pcm[:, order]

    def channel_id(self, channel: Channel) -> int:
        assert self.media is not None
        party = "external" if channel is Channel.CUSTOMER else "internal"
        return self.media.channels.index(party)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- request authentication ---------------------------------------------------------------------


def signature_base(headers: Headers, target: str, signature_input: str) -> str:
    """The RFC 9421 signature base AudioHook signs, from `Signature-Input`'s `sig1` value."""
    label, _, params = signature_input.partition("=")
    m = re.match(r"^\(([^)]*)\)", params)
    if label.strip() != "sig1" or m is None:
        raise ValueError("Signature-Input must be sig1=(...)")
    components = re.findall(r'"([^"]+)"', m.group(1))
    if sorted(components) != sorted(SIGNED):
        raise ValueError("the signature must cover " + " ".join(SIGNED))
    lines = []
    for name in components:
        if name == "@request-target":
            value = target
        elif name == "@authority":
            value = headers.get("Host", "")
        else:
            value = ", ".join(v.strip() for v in headers.get_all(name))
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines)


def sign(secret_b64: str, base: str) -> str:
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


def verify(
    headers: Headers,
    target: str,
    api_key: str | None,
    secret_b64: str | None,
    now: Callable[[], float] = time.time,
) -> str | None:
    """Why the request is not authentic, or None."""
    key = headers.get("X-API-KEY", "")
    if api_key is not None and not hmac.compare_digest(key.encode(), api_key.encode()):
        return "X-API-KEY is missing or wrong"
    if not secret_b64:
        return None
    sig, sig_input = headers.get("Signature", ""), headers.get("Signature-Input", "")
    if not sig or not sig_input:
        return "the request is not signed"
    params = dict(re.findall(r';(\w+)=("[^"]*"|\d+)', sig_input))
    if params.get("alg", '"hmac-sha256"') != '"hmac-sha256"':
        return "signature alg must be hmac-sha256"
    if params.get("keyid", "").strip('"') != key:
        return "signature keyid does not match X-API-KEY"
    try:
        created, expires = int(params["created"]), int(params["expires"])
    except (KeyError, ValueError):
        return "signature needs created and expires"
    t = now()
    if created > t + 3 or expires < t or created + 60 < t:
        return "signature is not fresh"
    try:
        expected = sign(secret_b64, signature_base(headers, target, sig_input))
    except (ValueError, binascii.Error) as exc:
        return f"signature: {exc}"
    m = re.match(r"^sig1=:([A-Za-z0-9+/=]+):$", sig.strip())
    if m is None or not hmac.compare_digest(m.group(1).encode(), expected.encode()):
        return "signature does not verify"
    return None


# --- the WebSocket edge -------------------------------------------------------------------------


class AudioHookAdapter(Adapter):
    protocol = "audiohook"
    path = "/audiohook"

    def check(self, request: Request) -> tuple[HTTPStatus, str] | None:
        h = request.headers
        for name in ("Audiohook-Session-Id", "Audiohook-Organization-Id"):
            if not _UUID.match(h.get(name, "")):
                return HTTPStatus.BAD_REQUEST, f"{name} header must be a UUID"
        why = verify(
            h, request.path, self.config.audiohook_api_key, self.config.audiohook_client_secret
        )
        if why is not None:
            return HTTPStatus.UNAUTHORIZED, f"AudioHook authentication failed: {why}"
        return None

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        session = AudioHookSession(
            headers["Audiohook-Session-Id"], headers.get("Audiohook-Organization-Id")
        )
        lock = asyncio.Lock()  # messages go out in seq order

        async def send(kind: str, **parameters: Any) -> None:
            async with lock:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps(session.message(kind, **parameters)))

        async def forward(event: Event) -> None:
            entities = entities_for(event, session)
            if entities and session.state is not State.CLOSED:
                await send("event", entities=entities)

        call: LiveCall | None = None
        async with contextlib.AsyncExitStack() as stack:
            try:
                while session.state is not State.CLOSED:
                    timeout = (
                        self.config.start_timeout_s if session.state is State.PREPARING else None
                    )
                    try:
                        message = await asyncio.wait_for(ws.recv(), timeout)
                    except TimeoutError:
                        raise AudioHookError("open_timeout", "no open message in time") from None
                    try:
                        if isinstance(message, bytes):
                            if session.signalled:
                                continue  # after our disconnect only close matters
                            if call is not None:
                                await call.feed_pcm(
                                    session.audio(message, self.config.max_frame_bytes)
                                )
                            else:
                                session.audio(message, self.config.max_frame_bytes)
                            continue
                        kind, params = session.parse(message)
                        if kind == "close":
                            session.state = State.CLOSING
                            if call is not None:
                                await call.finish()  # the last finals go out before closed
                            await send("closed")
                            session.state = State.CLOSED
                        elif session.signalled:
                            continue
                        elif kind == "open":
                            opened = session.open(params)
                            if session.media is not None:
                                call = await stack.enter_async_context(
                                    self._call(session, opened, forward)
                                )
                            media = [session.media.to_dict()] if session.media else []
                            await send("opened", media=media, startPaused=False)
                        else:
                            await self._control(session, kind, params, call, send)
                    except AudioHookError as err:
                        if call is not None:
                            call.ended = "error"
                        refused(self.protocol, err.kind, err.info, ws.remote_address, session.id)
                        out = session.disconnect(err)
                        if out is not None:
                            async with lock:
                                await ws.send(json.dumps(out))
            except AudioHookError as err:  # no open in time
                refused(self.protocol, err.kind, err.info, ws.remote_address, session.id)
                with contextlib.suppress(ConnectionClosed):
                    await ws.close(1008, err.info[:120])
            except ConnectionClosed:
                if call is not None and session.state is not State.CLOSED:
                    call.ended = "disconnect"
                    log.warning("AudioHook client vanished", extra={"call_id": session.id})
        if session.state is State.CLOSED:
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(ws.wait_closed(), 10)  # the client closes after closed
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1000, "session closed")

    @contextlib.asynccontextmanager
    async def _call(self, session: AudioHookSession, opened: Open, forward: Any) -> Any:
        custom = opened.custom
        agent = custom.get("agent_id") or custom.get("agentId") or ""
        info = CallInfo(opened.conversation_id, str(agent)[:128], RATE, Encoding.PCM16)
        meta = {
            "session_id": session.id,
            "organization_id": opened.organization_id,
            "language": opened.language,
        }
        try:
            async with self.hub.call(info, self.protocol, forward, meta) as call:
                yield call
        except CallInUse:
            raise AudioHookError(
                "call_in_use", f"Client Error: conversation {opened.conversation_id} is streaming"
            ) from None

    async def _control(
        self,
        session: AudioHookSession,
        kind: str,
        params: dict[str, Any],
        call: LiveCall | None,
        send: Callable[..., Any],
    ) -> None:
        if session.state is State.PREPARING:
            raise AudioHookError("out_of_order", f"Client Error: {kind} before open")
        if kind == "ping":
            await send("pong")
        elif kind == "paused":
            session.state = State.PAUSED
        elif kind == "resumed":
            session.state = State.ACTIVE
            if "discarded" in params:
                await self._gap(call, seconds(params["discarded"], "discarded"))
        elif kind == "discarded":
            await self._gap(call, seconds(params.get("discarded"), "discarded"))
        elif kind == "update":
            await send("updated")
        elif kind == "error":
            log.warning("AudioHook client error: %.200s", json.dumps(params))
        else:
            raise AudioHookError(
                "unknown_message", f"Client Error: {kind!r} is not a client message"
            )

    async def _gap(self, call: LiveCall | None, gap: float) -> None:
        """Audio the client did not send (paused, discarded): silence keeps the timeline."""
        if gap > MAX_DISCARD_S:
            raise AudioHookError("bad_message", "Client Error: discarded over an hour")
        if call is not None and gap > 0:
            await call.feed_pcm(np.zeros((round(gap * RATE), 2), dtype=np.int16))


def entities_for(event: Event, session: AudioHookSession) -> list[dict[str, Any]]:
    """The AudioHook `event` entities for one pipeline event (none for most kinds)."""
    if session.media is None:
        return []
    if isinstance(event, TranscriptEvent):
        party = "external" if event.channel is Channel.CUSTOMER else "internal"
        key = f"{party}/{event.utterance}"  # interims and the final of an utterance share an id
        words = [
            {
                "type": "word",
                "value": w.text,
                "confidence": round(w.probability, 3),
                "offset": duration(w.start),
                "duration": duration(w.end - w.start),
            }
            for w in event.words
        ]
        confidence = min((w.probability for w in event.words), default=0.8)
        interpretation: dict[str, Any] = {"type": "display", "transcript": event.text}
        if words:
            interpretation["tokens"] = words
        out = [
            {
                "type": "transcript",
                "data": {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.call_id}/{key}")),
                    "channelId": session.channel_id(event.channel),
                    "isFinal": event.final,
                    "offset": duration(event.start),
                    "duration": duration(event.end - event.start),
                    "alternatives": [
                        {"confidence": round(confidence, 3), "interpretations": [interpretation]}
                    ],
                },
            }
        ]
        if event.final:
            utterance = {
                "id": str(uuid.uuid4()),
                "position": duration(event.start),
                "duration": duration(event.end - event.start),
                "text": event.text,
                "language": "en-US",
                "confidence": round(confidence, 3),
                "channel": party,
                "isFinal": True,
            }
            out.append(
                {
                    "type": "agentassist",
                    "data": {"id": str(uuid.uuid4()), "utterances": [utterance]},
                }
            )
        return out
    if isinstance(event, SuggestionEvent) and event.items:
        suggestions = [
            {
                "type": "faq",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, item.id)),
                "confidence": round(item.score, 3),
                "question": item.title,
                "answer": item.answer,
            }
            for item in event.items
        ]
        return [
            {"type": "agentassist", "data": {"id": str(uuid.uuid4()), "suggestions": suggestions}}
        ]
    return []
