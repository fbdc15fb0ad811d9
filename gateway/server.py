"""The WebSocket gateway: native protocol on `/v1/stream`, plus `/metrics` and `/healthz`.

Each connection is one call. Whatever a connection does wrong, it alone is closed (with a code and
reason from `gateway.native`), the failure is logged and counted, and every other call goes on.
A client that vanishes mid-call still gets its last utterance finalised and published.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.native import (
    PROTOCOL_VERSION,
    CloseCode,
    FrameRules,
    ProtocolError,
    parse_control,
    parse_start,
)
from pipeline import metrics
from pipeline.asr import ModelOwner
from pipeline.assist import AssistServices
from pipeline.bus import RedisBus
from pipeline.events import Event, TranscriptEvent, dumps
from pipeline.mood import MoodServices
from pipeline.session import CallInfo, CallSession
from pipeline.stream import StreamConfig
from pipeline.vad import VadConfig

log = logging.getLogger(__name__)

STREAM_PATH = "/v1/stream"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_frame_bytes: int = 65536
    start_timeout_s: float = 10.0
    drain_timeout_s: float = 30.0


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        owner: ModelOwner,
        bus: RedisBus,
        vad: VadConfig,
        stream: StreamConfig,
        mood: MoodServices | None = None,
        assist: AssistServices | None = None,
    ) -> None:
        self.config = config
        self._mood = mood
        self._assist = assist
        self._owner = owner
        self._bus = bus
        self._vad = vad
        self._stream = stream
        self._server: Server | None = None
        self._active: set[str] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}{STREAM_PATH}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._http,
            max_size=self.config.max_frame_bytes * 4,  # hard stop; the rules give the clear error
            max_queue=32,
        )
        log.info("gateway listening on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting, let calls in progress finish for up to the drain timeout, then close."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        try:
            await asyncio.wait_for(self._server.wait_closed(), self.config.drain_timeout_s)
        except TimeoutError:
            log.warning("calls still open after %.0f s: closing them", self.config.drain_timeout_s)
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == STREAM_PATH:
            return None
        if path == "/metrics":
            response = connection.respond(HTTPStatus.OK, generate_latest().decode())
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        return connection.respond(
            HTTPStatus.NOT_FOUND, f"no such endpoint; stream to {STREAM_PATH}\n"
        )

    async def _handle(self, ws: ServerConnection) -> None:
        peer = ws.remote_address
        try:
            first = await asyncio.wait_for(ws.recv(), self.config.start_timeout_s)
            info = parse_start(first)
            if info.call_id in self._active:
                raise ProtocolError(
                    CloseCode.CONFLICT, "call_in_use", "call_id is already streaming"
                )
        except TimeoutError:
            await self._refuse(
                ws,
                ProtocolError(CloseCode.TIMEOUT, "start_timeout", "no start message in time"),
                None,
            )
            return
        except ProtocolError as err:
            await self._refuse(ws, err, None)
            return
        except ConnectionClosed:
            return
        self._active.add(info.call_id)
        metrics.CALLS.inc()
        metrics.ACTIVE_CALLS.inc()
        log.info("call started from %s", peer, extra={"call_id": info.call_id})
        try:
            await self._run_call(ws, info)
        except Exception:
            log.exception("call failed", extra={"call_id": info.call_id})
            metrics.ERRORS.labels("call").inc()
            with contextlib.suppress(ConnectionClosed):
                await ws.close(CloseCode.INTERNAL, "internal error")
        finally:
            self._active.discard(info.call_id)
            metrics.ACTIVE_CALLS.dec()

    async def _run_call(self, ws: ServerConnection, info: CallInfo) -> None:
        rules = FrameRules(info.frame_bytes, self.config.max_frame_bytes)
        finals = 0

        async def sink(event: Event) -> None:
            nonlocal finals
            finals += isinstance(event, TranscriptEvent) and event.final
            message = event.to_dict()
            await self._bus.publish(message, info.agent_id)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(dumps(message))

        await self._bus.call_started(
            info.call_id,
            info.agent_id,
            sample_rate=info.sample_rate,
            encoding=info.encoding.value,
        )
        error: ProtocolError | None = None
        ended = "stop"
        async with CallSession(
            info, self._owner, sink, self._vad, self._stream, self._mood, self._assist
        ) as session:
            await ws.send(
                json.dumps(
                    {"type": "started", "version": PROTOCOL_VERSION, "call_id": info.call_id}
                )
            )
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        rules.check(message)
                        await session.feed(message)
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
                    ended = "disconnect"  # closed without a stop: finish what was said
            except ProtocolError as err:
                error, ended = err, "error"
            except ConnectionClosed:
                ended = "disconnect"

            if ended == "disconnect":
                metrics.DISCONNECTS.inc()
                log.warning("client vanished mid-call; finalising", extra={"call_id": info.call_id})
            if error is not None:
                await self._refuse(ws, error, info.call_id)
                await session.finish()
            else:
                # Keep reading while the finals are worked out: anything after stop is an error.
                after_stop = asyncio.create_task(ws.recv())
                await session.finish()
                error = _late_message(after_stop)
                if error is not None:
                    ended = "error"
                    await self._refuse(ws, error, info.call_id)

        await self._bus.call_ended(
            info.call_id,
            info.agent_id,
            duration=round(session.duration, 3),
            finals=finals,
            ended=ended,
        )
        log.info(
            "call ended (%s) after %.1f s, %d finals",
            ended,
            session.duration,
            finals,
            extra={"call_id": info.call_id},
        )
        if ended == "stop" and ws.close_code is None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(
                    json.dumps(
                        {
                            "type": "stopped",
                            "call_id": info.call_id,
                            "duration": round(session.duration, 3),
                            "finals": finals,
                        }
                    )
                )
                await ws.close(CloseCode.NORMAL, "call stopped")

    async def _refuse(self, ws: ServerConnection, err: ProtocolError, call_id: str | None) -> None:
        metrics.PROTOCOL_ERRORS.labels(err.kind).inc()
        log.warning(
            "closing %s: %s (%s)",
            ws.remote_address,
            err.reason,
            err.kind,
            extra={"call_id": call_id},
        )
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
