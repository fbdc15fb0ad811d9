"""The panel server: the agent panel and the supervisor wall board, live from Redis.

HTTP (GET only) and WebSocket on one port, with `websockets`:

| path                          | what |
|-------------------------------|------|
| `/`                           | links to the panels |
| `/wallboard`                  | supervisor wall board page |
| `/agent/{agent_id}`           | agent panel: follows the agent's current call |
| `/call/{call_id}`             | one call's live transcript, mood and coaching (click-through) |
| `/static/*`                   | the pages' script and style |
| `/api/calls`                  | the wall board's current state (JSON) |
| `/api/calls/{call_id}`        | a live call's stored state: metadata and events so far |
| `/api/calls/{call_id}/record` | a finished call's post-call record (404 once retention ends) |
| `/ws/wallboard`, `/ws/agent/{agent_id}`, `/ws/call/{call_id}` | the pages' live feeds |

Every path but `/healthz` needs the access token: `Authorization: Bearer TOKEN`, the `aa_token`
cookie, or `?token=TOKEN` on a page (which sets the cookie and redirects to the clean URL). A
WebSocket without it is closed with code 4401.

Each feed starts with a `snapshot` of the stored state, then relays live messages; every
(re)connection gets a fresh snapshot, so a page that lost its socket shows the same state as one
that never did. The server holds no call state of its own: any number of panel servers can run
against one Redis. One of them at a time (a Redis lock) publishes the wall-board summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from coach_ui.live import LiveState
from pipeline.bus.redis_bus import Keys, call_state
from pipeline.runtime import metrics
from pipeline.types import (
    dumps,
)

log = logging.getLogger(__name__)

COOKIE = "aa_token"
UNAUTHORIZED = 4401
STATIC = {
    "panel.css": "text/css; charset=utf-8",
    "panel.js": "text/javascript; charset=utf-8",
    "wallboard.js": "text/javascript; charset=utf-8",
    "agent.js": "text/javascript; charset=utf-8",
}
PAGES = {"wallboard": "wallboard.html", "agent": "agent.html", "call": "agent.html"}


@dataclass(frozen=True, slots=True)
class PanelConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    token: str = ""  # empty: a random one is made at start-up (and logged)
    board_interval_s: float = 1.0


def _asset(name: str) -> bytes:
    return (resources.files("coach_ui") / "static" / name).read_bytes()


class PanelServer:
    def __init__(self, config: PanelConfig, redis: Redis, keys: Keys) -> None:
        self.config = config
        self.token = config.token or secrets.token_urlsafe(18)
        self.redis = redis
        self.keys = keys
        self._server: Server | None = None
        self._board_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.live = LiveState(redis, keys, config.board_interval_s)
        self.paused = False  # refuse feeds (tests cut sockets with this)

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def url(self, path: str) -> str:
        """A page's address with the token, to print or open."""
        return f"{self.base}{path}?token={quote(self.token)}"

    async def start(self) -> None:
        self._server = await serve(
            self._feed, self.config.host, self.config.port, process_request=self._http
        )
        self._board_task = asyncio.create_task(self.live.publish_board(self._stopping))
        log.info("panels on %s", self.base)

    async def stop(self) -> None:
        if self._board_task is not None:
            # redis-py's get_message(timeout=...) can swallow a cancellation: ask it to stop
            # and let its current wait (one interval at most) run out.
            self._stopping.set()
            try:
                await asyncio.wait_for(self._board_task, self.config.board_interval_s * 5)
            except TimeoutError:
                log.warning("wall board publisher did not stop in time")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop_clients(self) -> int:
        """Close every panel socket (they reconnect and re-sync); returns how many."""
        assert self._server is not None
        dropped = 0
        for conn in list(self._server.connections):
            if conn.request is not None and conn.request.path.startswith("/ws/"):
                await conn.close(1012, "server restarting")
                dropped += 1
        return dropped

    # --- HTTP ----------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        try:
            given = _token(request.headers, request.path)
        except LookupError:  # a repeated Authorization or Cookie header: no credential
            return False
        return given is not None and _same(given, self.token)

    async def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path = url.path.rstrip("/") or "/"
        if path == "/healthz":
            return conn.respond(HTTPStatus.OK, "ok\n")
        if path.startswith("/ws/"):
            if self.paused:
                return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "panels paused\n")
            return None  # the feed checks the token and closes with 4401
        query = parse_qs(url.query)
        if "token" in query and _page(path) is not None:
            if not _same(query["token"][0], self.token):
                return self._refuse(conn, "bad_token")
            cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            return _response(
                HTTPStatus.SEE_OTHER, b"", "text/plain", Location=path, **{"Set-Cookie": cookie}
            )
        if not self._authorized(request):
            return self._refuse(conn, "no_token")
        try:
            return await self._route(conn, path)
        except RedisError as exc:
            log.warning("panel request %s: redis failed: %s", path, exc)
            metrics.BUS_ERRORS.labels("panel").inc()
            return _json(conn, {"error": "redis unavailable"}, HTTPStatus.SERVICE_UNAVAILABLE)

    def _refuse(self, conn: ServerConnection, reason: str) -> Response:
        metrics.PANEL_REFUSED.labels(reason).inc()
        return conn.respond(
            HTTPStatus.UNAUTHORIZED,
            "access token required: open the URL the server printed (it carries ?token=...)\n",
        )

    async def _route(self, conn: ServerConnection, path: str) -> Response:
        parts = path.strip("/").split("/")
        if path == "/":
            return _html(conn, _asset("index.html"))
        if (page := _page(path)) is not None:
            return _html(conn, _asset(page))
        if parts[0] == "static" and len(parts) == 2 and parts[1] in STATIC:
            return _response(HTTPStatus.OK, _asset(parts[1]), STATIC[parts[1]])
        if parts[:2] == ["api", "calls"]:
            if len(parts) == 2:
                return _json(conn, await self.live.board())
            meta, events = await call_state(self.redis, self.keys, parts[2], mood=True)
            if len(parts) == 3 and meta:
                return _json(conn, {"call": meta, "events": [e.to_dict() for e in events]})
            if len(parts) == 4 and parts[3] == "record":
                record = await self.redis.get(self.keys.record(parts[2]))
                if record is not None:
                    return _json(conn, json.loads(record))
                why = "still in progress" if meta.get("status") == "active" else "not found"
                return _json(conn, {"error": f"no record: call {why}"}, HTTPStatus.NOT_FOUND)
            return _json(conn, {"error": "no such call"}, HTTPStatus.NOT_FOUND)
        metrics.PANEL_REFUSED.labels("not_found").inc()
        return conn.respond(HTTPStatus.NOT_FOUND, "no such page\n")

    # --- feeds ---------------------------------------------------------------------------------
    async def _feed(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        parts = urlsplit(ws.request.path).path.strip("/").split("/")
        if not self._authorized(ws.request):
            metrics.PANEL_REFUSED.labels("no_token").inc()
            await ws.close(UNAUTHORIZED, "access token required")
            return
        kind = parts[1] if len(parts) > 1 else ""
        want = {"wallboard": 2, "agent": 3, "call": 3}
        if len(parts) != want.get(kind, 0):
            metrics.PANEL_REFUSED.labels("not_found").inc()
            await ws.close(4404, "no such feed")
            return
        metrics.PANEL_CLIENTS.labels(kind).inc()
        pubsub = self.redis.pubsub()
        relay = asyncio.create_task(
            self.live.wallboard(ws, pubsub)
            if kind == "wallboard"
            else self.live.call_feed(ws, pubsub, parts[2], follow_agent=kind == "agent")
        )
        gone = asyncio.create_task(ws.wait_closed())  # the relay may be waiting on Redis
        try:
            await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (relay, gone):
                task.cancel()
            await asyncio.gather(relay, gone, return_exceptions=True)
            if relay.done() and not relay.cancelled() and relay.exception() is not None:
                raise relay.exception()  # type: ignore[misc]
        except ConnectionClosed:
            pass
        except (RedisError, OSError) as exc:
            metrics.BUS_ERRORS.labels("panel").inc()
            log.warning("panel feed %s: redis failed: %s", ws.request.path, exc)
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1011, "redis unavailable; reconnect shortly")
        finally:
            metrics.PANEL_CLIENTS.labels(kind).dec()
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _same(given: str, token: str) -> bool:
    """A constant-time comparison that takes any text (`compare_digest` refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode(), token.encode())


def _page(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if parts[0] == "wallboard" and len(parts) == 1:
        return PAGES["wallboard"]
    if parts[0] in ("agent", "call") and len(parts) == 2 and parts[1]:
        return PAGES[parts[0]]
    return None


def _token(headers: Headers, path: str) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    cookie = SimpleCookie()
    with contextlib.suppress(Exception):
        cookie.load(headers.get("Cookie", ""))
    if COOKIE in cookie:
        return cookie[COOKIE].value
    query = parse_qs(urlsplit(path).query)
    return query["token"][0] if "token" in query else None


def _response(status: HTTPStatus, body: bytes, content_type: str, **extra: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *extra.items(),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _html(conn: ServerConnection, body: bytes) -> Response:
    return _response(HTTPStatus.OK, body, "text/html; charset=utf-8")


def _json(conn: ServerConnection, data: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return _response(status, dumps(data).encode(), "application/json")
