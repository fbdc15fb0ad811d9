"""The AudioHook WebSocket edge: the handshake's credentials, one method per client message,
and the `event` messages (transcripts, agent assist) sent back while the call is live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from gateway.audiohook.auth import Nonces, verify
from gateway.audiohook.session import (
    MAX_DISCARD_S,
    RATE,
    UUID_RE,
    AudioHookError,
    AudioHookSession,
    Open,
    State,
    duration,
    seconds,
)
from gateway.calls import CallHub, CallInUse, GatewayConfig, LiveCall
from gateway.ingest import (
    Adapter,
    Refusal,
    WsClose,
    agent_id_of,
    id_problem,
    refused,
)
from pipeline.types import CallInfo, Channel, Encoding, Event, SuggestionEvent, TranscriptEvent

log = logging.getLogger(__name__)


class AudioHookAdapter(Adapter):
    protocol = "audiohook"
    path = "/audiohook"

    def __init__(self, hub: CallHub, config: GatewayConfig) -> None:
        super().__init__(hub, config)
        self.nonces = Nonces()

    def check(self, request: Request) -> Refusal | None:
        h = request.headers
        for name in ("Audiohook-Session-Id", "Audiohook-Organization-Id"):
            if not UUID_RE.match(h.get(name, "")):
                return Refusal(HTTPStatus.BAD_REQUEST, "bad_request", f"{name} must be a UUID")
        api_key = self.config.audiohook_api_key
        if not api_key:  # only under --insecure: `admit` refuses otherwise
            return None
        why = verify(h, request.path, api_key, self.config.audiohook_client_secret, self.nonces)
        if why is not None:
            reason = f"AudioHook authentication failed: {why}"
            return Refusal(HTTPStatus.UNAUTHORIZED, "unauthorized", reason, limit=300)
        return None

    @classmethod
    def missing(cls, config: GatewayConfig) -> str | None:
        return None if config.audiohook_api_key else "--audiohook-api-key"

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        session = AudioHookSession(
            headers["Audiohook-Session-Id"], headers.get("Audiohook-Organization-Id")
        )
        async with contextlib.AsyncExitStack() as stack:
            conn = _Connection(self, ws, session, stack)
            try:
                while session.state is not State.CLOSED:
                    message = await conn.receive()
                    try:
                        await conn.dispatch(message)
                    except AudioHookError as err:
                        await conn.fail(err)
            except AudioHookError as err:  # no open in time
                await self.close(ws, err, session.id)
            except ConnectionClosed:
                if conn.call is not None and session.state is not State.CLOSED:
                    conn.call.ended = "disconnect"
                    log.warning("AudioHook client vanished", extra={"call_id": session.id})
        if session.state is State.CLOSED:
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(ws.wait_closed(), 10)  # the client closes after closed
            with contextlib.suppress(ConnectionClosed):
                await ws.close(WsClose.NORMAL, "session closed")


class _Connection:
    """One AudioHook connection at the edge: its session, socket and call, one method per
    client message."""

    def __init__(
        self,
        adapter: AudioHookAdapter,
        ws: ServerConnection,
        session: AudioHookSession,
        stack: contextlib.AsyncExitStack,
    ) -> None:
        self.adapter, self.config = adapter, adapter.config
        self.ws, self.session, self.stack = ws, session, stack
        self.call: LiveCall | None = None
        self._lock = asyncio.Lock()  # messages go out in seq order
        self._controls: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "ping": self.ping,
            "paused": self.paused,
            "resumed": self.resumed,
            "discarded": self.discarded,
            "update": self.update,
            "error": self.error,
        }

    async def receive(self) -> str | bytes:
        preparing = self.session.state is State.PREPARING
        try:
            return await asyncio.wait_for(
                self.ws.recv(), self.config.start_timeout_s if preparing else None
            )
        except TimeoutError:
            raise AudioHookError("open_timeout", "no open message in time") from None

    async def send(self, kind: str, **parameters: Any) -> None:
        async with self._lock:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(json.dumps(self.session.message(kind, **parameters)))

    async def forward(self, event: Event) -> None:
        entities = entities_for(event, self.session)
        if entities and self.session.state is not State.CLOSED:
            await self.send("event", entities=entities)

    async def fail(self, err: AudioHookError) -> None:
        """A violation: the call ends in error, the client is told once (`disconnect`)."""
        if self.call is not None:
            self.call.ended = "error"
        refused(
            self.adapter.protocol, err.kind, err.reason, self.ws.remote_address, self.session.id
        )
        out = self.session.disconnect(err)
        if out is not None:
            async with self._lock:
                await self.ws.send(json.dumps(out))

    async def dispatch(self, message: str | bytes) -> None:
        session = self.session
        if isinstance(message, bytes):
            if not session.signalled:  # after our disconnect only close matters
                await self.audio(message)
            return
        kind, params = session.parse(message)
        if kind == "close":
            await self.close()
        elif session.signalled:
            return
        elif kind == "open":
            await self.open(params)
        elif session.state is State.PREPARING:
            raise AudioHookError("out_of_order", f"Client Error: {kind} before open")
        elif (control := self._controls.get(kind)) is not None:
            await control(params)
        else:
            raise AudioHookError(
                "unknown_message", f"Client Error: {kind!r} is not a client message"
            )

    async def audio(self, data: bytes) -> None:
        pcm = self.session.audio(data, self.config.max_frame_bytes)
        if self.call is not None:
            await self.call.feed_pcm(pcm)

    async def open(self, params: dict[str, Any]) -> None:
        session = self.session
        opened = session.open(params)
        if session.media is not None:
            self.call = await self.stack.enter_async_context(self._call(opened))
        media = [session.media.to_dict()] if session.media else []
        await self.send("opened", media=media, startPaused=False)

    async def close(self) -> None:
        self.session.state = State.CLOSING
        if self.call is not None:
            await self.call.finish()  # the last finals go out before closed
        await self.send("closed")
        self.session.state = State.CLOSED

    async def ping(self, params: dict[str, Any]) -> None:
        await self.send("pong")

    async def paused(self, params: dict[str, Any]) -> None:
        self.session.state = State.PAUSED

    async def resumed(self, params: dict[str, Any]) -> None:
        self.session.state = State.ACTIVE
        if "discarded" in params:
            await self._gap(seconds(params["discarded"], "discarded"))

    async def discarded(self, params: dict[str, Any]) -> None:
        await self._gap(seconds(params.get("discarded"), "discarded"))

    async def update(self, params: dict[str, Any]) -> None:
        await self.send("updated")

    async def error(self, params: dict[str, Any]) -> None:
        log.warning("AudioHook client error: %.200s", json.dumps(params))

    async def _gap(self, gap: float) -> None:
        """Audio the client did not send (paused, discarded): silence keeps the timeline."""
        if gap > MAX_DISCARD_S:
            raise AudioHookError("bad_message", "Client Error: discarded over an hour")
        if self.call is not None and gap > 0:
            await self.call.feed_pcm(np.zeros((round(gap * RATE), 2), dtype=np.int16))

    @contextlib.asynccontextmanager
    async def _call(self, opened: Open) -> AsyncIterator[LiveCall]:
        agent_id = agent_id_of(opened.custom)
        if (problem := id_problem(opened.conversation_id, agent_id)) is not None:
            raise AudioHookError("bad_open", f"Client Error: {problem}")
        info = CallInfo(opened.conversation_id, agent_id, RATE, Encoding.PCM16)
        meta = {
            "session_id": self.session.id,
            "organization_id": opened.organization_id,
            "language": opened.language,
        } | self.adapter.call_meta(None, opened.participant | opened.custom)
        try:
            async with self.adapter.hub.call(
                info, self.adapter.protocol, self.forward, meta
            ) as call:
                yield call
        except CallInUse:
            raise AudioHookError(
                "call_in_use", f"Client Error: conversation {opened.conversation_id} is streaming"
            ) from None


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
