"""The gateway: every WebSocket ingest protocol on one port, plus `/metrics` and `/healthz`.

| path           | protocol |
|----------------|----------|
| `/v1/stream`   | native (`gateway.native`) |
| `/twilio`      | Twilio Media Streams (`gateway.twilio`) |
| `/audiohook`   | Genesys Cloud AudioHook v2 (`gateway.audiohook`) |
| `/audiofork`   | FreeSWITCH mod_audio_fork / mod_audio_stream (`gateway.audiofork`) |

Asterisk AudioSocket (TCP, `gateway.audiosocket`) and WebRTC (HTTP offer/answer,
`gateway.webrtc`) listen on ports of their own when configured.

Each connection is one call. Whatever a connection does wrong, it alone is closed in its
protocol's own way, the failure is logged and counted, and every other call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.audiofork import SUBPROTOCOL, AudioForkAdapter
from gateway.audiohook import AudioHookAdapter
from gateway.audiosocket import AudioSocketServer
from gateway.calls import CallHub, GatewayConfig
from gateway.ingest import Adapter, Refusal, WsClose, refused
from gateway.native import NativeAdapter
from gateway.twilio import TwilioAdapter
from gateway.webrtc import WebRtcServer
from pipeline.bus.redis_bus import RedisBus
from pipeline.runtime import metrics
from pipeline.session import Stages

__all__ = ["STREAM_PATH", "Gateway", "GatewayConfig"]

log = logging.getLogger(__name__)

STREAM_PATH = NativeAdapter.path
ADAPTERS: tuple[type[Adapter], ...] = (
    NativeAdapter,
    TwilioAdapter,
    AudioHookAdapter,
    AudioForkAdapter,
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def unprotected(config: GatewayConfig) -> list[str]:
    """Each ingest served without its credential, with the setting that would give it one."""
    kinds = [k for k in ADAPTERS if k.protocol in config.ingests]
    out = [f"{k.path} ({m})" for k in kinds if (m := k.missing(config)) is not None]
    if config.webrtc_port is not None and not config.ingest_keys:
        out.append("WebRTC (--ingest-keys)")
    return out


def exposure(config: GatewayConfig) -> str | None:
    """Why the gateway must not start as configured: an ingest without a credential on a
    non-loopback address, unless `insecure`. None when it may."""
    gaps = unprotected(config)
    if not gaps or config.insecure or is_loopback(config.host):
        return None
    return (
        f"refusing to listen on {config.host}: ingests without a credential: {', '.join(gaps)}. "
        "Configure each (README, Security), serve fewer (--ingests), or pass --insecure to let "
        "anyone stream to them"
    )


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        bus: RedisBus,
        stages: Stages,
    ) -> None:
        self.config = config
        self.hub = CallHub(bus, stages)
        self.adapters: dict[str, Adapter] = {
            kind.path: kind(self.hub, config)
            for kind in ADAPTERS
            if kind.protocol in config.ingests
        }
        self.audiosocket = (
            AudioSocketServer(self.hub, config) if config.audiosocket_port is not None else None
        )
        self.webrtc = WebRtcServer(self.hub, config) if config.webrtc_port is not None else None
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The native protocol's URL."""
        return self.url_for(STREAM_PATH)

    def url_for(self, path: str) -> str:
        scheme = "wss" if self.config.tls is not None else "ws"
        return f"{scheme}://{self.config.host}:{self.port}{path}"

    async def start(self) -> None:
        if (problem := exposure(self.config)) is not None:
            raise ValueError(problem)
        if gaps := ", ".join(unprotected(self.config)):
            if self.config.insecure:
                log.warning("INSECURE (--insecure): these ingests take anyone: %s", gaps)
            else:
                log.info("closed until their credential is configured: %s", gaps)
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._http,
            select_subprotocol=_subprotocol,
            max_size=self.config.max_frame_bytes * 4,  # hard stop; the rules give the clear error
            max_queue=32,
            ssl=self.config.tls,
        )
        log.info("gateway listening on %s", self.url_for(""))
        if self.audiosocket is not None:
            await self.audiosocket.start()
        if self.webrtc is not None:
            await self.webrtc.start()

    async def stop(self) -> None:
        """Stop accepting, let calls in progress finish for up to the drain timeout, then close."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        others = [s for s in (self.audiosocket, self.webrtc) if s is not None]
        try:
            async with asyncio.timeout(self.config.drain_timeout_s):
                await asyncio.gather(self._server.wait_closed(), *(s.stop() for s in others))
        except TimeoutError:
            log.warning("calls still open after %.0f s: closing them", self.config.drain_timeout_s)
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            for s in others:
                await s.stop(force=True)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        adapter = self.adapters.get(path)
        if adapter is not None:
            try:
                refusal = adapter.admit(request)
            except (LookupError, ValueError) as exc:  # a repeated or undecodable header
                reason = f"malformed request headers: {type(exc).__name__}"
                refusal = Refusal(HTTPStatus.BAD_REQUEST, "bad_request", reason)
            if refusal is None:
                return None
            refused(adapter.protocol, refusal.kind, refusal.reason, connection.remote_address)
            return connection.respond(HTTPStatus(refusal.code), refusal.reason + "\n")
        if path == "/metrics":
            response = connection.respond(HTTPStatus.OK, generate_latest().decode())
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        paths = ", ".join(sorted(self.adapters))
        return connection.respond(HTTPStatus.NOT_FOUND, f"no such endpoint; stream to {paths}\n")

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        adapter = self.adapters[ws.request.path.split("?", 1)[0]]
        try:
            await adapter.handle(ws)
        except Exception:
            log.exception("%s call failed", adapter.protocol)
            metrics.ERRORS.labels("call").inc()
            with contextlib.suppress(ConnectionClosed):
                await ws.close(WsClose.INTERNAL, "internal error")


def _subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """mod_audio_fork offers `audio.drachtio.org`; every other client offers none."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
