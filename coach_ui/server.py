"""The panel server: the agent panel and the supervisor wall board, live from Redis, on aiohttp.

| path                         | what                                          | who            |
|------------------------------|-----------------------------------------------|----------------|
| `/login`, `/logout`          | sign in with a token (a session cookie), out  | anyone         |
| `/`                          | links to the panels                           | signed in      |
| `/wallboard`                 | supervisor wall board page                    | supervisor     |
| `/agent/{agent_id}`          | agent panel: follows the agent's current call | that agent (*) |
| `/call/{call_id}`            | one call's transcript, mood and coaching      | its agent (*)  |
| `/static/*`                  | the pages' scripts and style                  | anyone         |
| `/api/calls`                 | the wall board's current state (JSON)         | supervisor     |
| `/api/calls/{call_id}`       | a live call's stored metadata and events      | its agent (*)  |
| `/api/calls/{call_id}/record`| a finished call's post-call record            | its agent (*)  |
| `/ws/wallboard`, `/ws/agent/{agent_id}`, `/ws/call/{call_id}`: the pages' live feeds, as pages |

(*) and supervisors; an admin may do all a supervisor may.

Who is who comes from a signed token (`coach_ui.auth`): `Authorization: Bearer TOKEN` on the API
and the feeds, or the session cookie that `/login` sets from one (HttpOnly, SameSite=Strict,
Secure under TLS; it lives as long as the token). A token in a URL's query is refused, never
read: URLs land in logs and histories. `/login#token=...` (a fragment, which browsers never
send) signs in at once: how the demo opens its panels. Pages without a session redirect to
`/login`; the API answers 401 (no or bad token) or 403 (a role that may not); a feed closes
with 4401 or 4403. A WebSocket upgrade from a page of another origin is refused with 403 (a
page elsewhere cannot ride the cookie). Every response carries a strict Content-Security-Policy.

Each feed starts with a `snapshot` of the stored state, then relays live messages; every
(re)connection gets a fresh snapshot, so a page that lost its socket shows the same state as one
that never did. The server holds no call state of its own: any number of panel servers can run
against one Redis. One of them at a time (a Redis lock) publishes the wall-board summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import WSCloseCode, web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from coach_ui.access import HEADERS, IDENTITY, Access, Handler
from coach_ui.auth import AuthConfig, Identity, Role, Verifier
from coach_ui.live import LiveState
from pipeline.bus.redis_bus import Keys, call_state
from pipeline.runtime import metrics
from pipeline.types import dumps

log = logging.getLogger(__name__)

UNAUTHORIZED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404
STATIC = {
    "panel.css": "text/css; charset=utf-8",
    "panel.js": "text/javascript; charset=utf-8",
    "wallboard.js": "text/javascript; charset=utf-8",
    "agent.js": "text/javascript; charset=utf-8",
    "index.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class PanelConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    auth: AuthConfig = field(default_factory=AuthConfig)  # empty secret: a random one per start
    origins: tuple[str, ...] = ()  # more origins whose pages may open the feeds (a proxy's)
    tls: ssl.SSLContext | None = None
    board_interval_s: float = 1.0


def _asset(name: str) -> bytes:
    return (resources.files("coach_ui") / "static" / name).read_bytes()


class PanelServer:
    def __init__(
        self, config: PanelConfig, redis: Redis, keys: Keys, board_redis: Redis | None = None
    ) -> None:
        """`redis` may be a read-only user's (`pipeline.bus.acl`): the wall-board summary is
        published through `board_redis` (the gateway's client) when given."""
        self.config = config
        self.verifier = (
            Verifier(config.auth)
            if config.auth.secret or config.auth.oidc_issuer
            else Verifier.random()
        )
        self.access = Access(self.verifier, config.origins, secure=config.tls is not None)
        self.redis = redis
        self.keys = keys
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._board_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.live = LiveState(redis, keys, config.board_interval_s)
        self._publisher = LiveState(board_redis or redis, keys, config.board_interval_s)
        self.paused = False  # refuse feeds (tests cut sockets with this)
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def base(self) -> str:
        scheme = "https" if self.config.tls is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def login_url(self, token: str, path: str = "/") -> str:
        """A link that signs in with `token` and opens `path`: the token rides in the fragment,
        which the browser keeps to itself (the page posts it, then drops it from the address)."""
        return f"{self.base}/login?next={quote(path)}#token={token}"

    def mint(self, subject: str, role: Role, agent_id: str = "", ttl_s: float = 8 * 3600) -> str:
        return self.verifier.mint(subject, role, agent_id, ttl_s)

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=16 * 1024)
        r = app.router
        r.add_get("/healthz", self._health)
        r.add_get("/login", self._login_page)
        r.add_post("/login", self.access.login)
        r.add_post("/logout", self.access.logout)
        r.add_get("/static/{name}", self._static)
        r.add_get("/", self._page)
        r.add_get("/wallboard", self._page)
        r.add_get("/agent/{ident}", self._page)
        r.add_get("/call/{ident}", self._page)
        r.add_get("/api/calls", self._board)
        r.add_get("/api/calls/{call_id}", self._call)
        r.add_get("/api/calls/{call_id}/record", self._record)
        r.add_get("/ws/{kind}", self._feed)
        r.add_get("/ws/{kind}/{ident}", self._feed)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, ssl_context=self.config.tls
        )
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self._board_task = asyncio.create_task(self._publisher.publish_board(self._stopping))
        mode = "OIDC " + self.config.auth.oidc_issuer if self.verifier.oidc else "shared secret"
        log.info("panels on %s (tokens: %s)", self.base, mode)

    async def stop(self) -> None:
        if self._board_task is not None:
            # redis-py's get_message(timeout=...) can swallow a cancellation: ask it to stop
            # and let its current wait (one interval at most) run out.
            self._stopping.set()
            try:
                await asyncio.wait_for(self._board_task, self.config.board_interval_s * 5)
            except TimeoutError:
                log.warning("wall board publisher did not stop in time")
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drop_clients(self) -> int:
        """Close every panel socket (they reconnect and re-sync); returns how many."""
        sockets = list(self._sockets)
        for ws in sockets:
            await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"server restarting")
        return len(sockets)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """`Access.check` (identity, headers), and Redis trouble answered with a 503."""
        try:
            return await self.access.check(request, handler)
        except RedisError as exc:
            log.warning("panel request %s: redis failed: %s", request.path, exc)
            metrics.BUS_ERRORS.labels("panel").inc()
            response = _json({"error": "redis unavailable"}, HTTPStatus.SERVICE_UNAVAILABLE)
            response.headers.update(HEADERS)
            return response

    async def _may_see_call(self, request: web.Request, call_id: str) -> dict[str, str]:
        """The call's stored metadata, when the caller may see the call (else 403)."""
        ident = _who(request)
        stored = await self.redis.hgetall(self.keys.call(call_id)) if call_id else {}
        meta = {str(k): str(v) for k, v in stored.items()}
        self.access.allow(
            request, ident.may_see_agent(meta.get("agent_id", "")), "another agent's call"
        )
        return meta

    # --- pages and login -----------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            metrics.PANEL_REFUSED.labels("not_found").inc()
            raise web.HTTPNotFound(text="no such file\n")
        return web.Response(body=_asset(name), headers={"Content-Type": STATIC[name]})

    async def _page(self, request: web.Request) -> web.StreamResponse:
        ident = _who(request)
        kind = request.path.strip("/").split("/")[0] or "index"
        if kind == "wallboard":
            self.access.allow(request, ident.may_see_board, "the wall board is for supervisors")
        elif kind == "agent":
            self.access.allow(
                request, ident.may_see_agent(request.match_info["ident"]), "another agent"
            )
        elif kind == "call":
            await self._may_see_call(request, request.match_info["ident"])
        page = {"index": "index.html", "wallboard": "wallboard.html"}.get(kind, "agent.html")
        return _html(_asset(page))

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        return _html(_asset("login.html"))

    # --- the API -------------------------------------------------------------------------------
    async def _board(self, request: web.Request) -> web.StreamResponse:
        self.access.allow(request, _who(request).may_see_board, "the wall board is for supervisors")
        return _json(await self.live.board())

    async def _call(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        await self._may_see_call(request, call_id)
        meta, events = await call_state(self.redis, self.keys, call_id, mood=True)
        if not meta:
            return _json({"error": "no such call"}, HTTPStatus.NOT_FOUND)
        return _json({"call": meta, "events": [e.to_dict() for e in events]})

    async def _record(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        meta = await self._may_see_call(request, call_id)
        record = await self.redis.get(self.keys.record(call_id))
        if record is not None:
            if not meta:  # the live hash is gone: the record says whose call it was
                data = json.loads(record)
                self.access.allow(
                    request,
                    _who(request).may_see_agent(str(data.get("agent_id", ""))),
                    "another agent's call",
                )
            return web.Response(body=record, content_type="application/json")
        why = "still in progress" if meta.get("status") == "active" else "not found"
        return _json({"error": f"no record: call {why}"}, HTTPStatus.NOT_FOUND)

    # --- feeds ---------------------------------------------------------------------------------
    async def _feed(self, request: web.Request) -> web.StreamResponse:
        ident: Identity | None = request[IDENTITY]
        kind, target = request.match_info["kind"], request.match_info.get("ident", "")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.access.origins(request):
            raise self.access.refusal(request, HTTPStatus.FORBIDDEN, "bad_origin")
        if self.paused:
            raise web.HTTPServiceUnavailable(text="panels paused\n")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
        await ws.prepare(request)
        if ident is None:
            await ws.close(code=UNAUTHORIZED, message=b"sign in: a token is required")
            return ws
        want = {"wallboard": "", "agent": "ident", "call": "ident"}
        if kind not in want or bool(target) != bool(want[kind]):
            metrics.PANEL_REFUSED.labels("not_found").inc()
            await ws.close(code=NOT_FOUND, message=b"no such feed")
            return ws
        if kind == "wallboard":
            allowed = ident.may_see_board
        elif kind == "agent":
            allowed = ident.may_see_agent(target)
        else:
            owner = await self.redis.hget(self.keys.call(target), "agent_id")
            allowed = ident.may_see_agent(str(owner or ""))
        if not allowed:
            metrics.PANEL_REFUSED.labels("forbidden").inc()
            await ws.close(code=FORBIDDEN, message=b"your role may not see this feed")
            return ws
        await self._relay(ws, kind, target, request.path)
        return ws

    async def _relay(self, ws: web.WebSocketResponse, kind: str, target: str, path: str) -> None:
        metrics.PANEL_CLIENTS.labels(kind).inc()
        self._sockets.add(ws)
        pubsub = self.redis.pubsub()
        relay = asyncio.create_task(
            self.live.wallboard(ws.send_str, pubsub)
            if kind == "wallboard"
            else self.live.call_feed(ws.send_str, pubsub, target, follow_agent=kind == "agent")
        )
        gone = asyncio.create_task(_until_closed(ws))  # the relay may be waiting on Redis
        try:
            await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (relay, gone):
                task.cancel()
            await asyncio.gather(relay, gone, return_exceptions=True)
            if relay.done() and not relay.cancelled() and relay.exception() is not None:
                raise relay.exception()  # type: ignore[misc]
        except ConnectionResetError:
            pass
        except (RedisError, OSError) as exc:
            metrics.BUS_ERRORS.labels("panel").inc()
            log.warning("panel feed %s: redis failed: %s", path, exc)
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"redis unavailable")
        finally:
            self._sockets.discard(ws)
            metrics.PANEL_CLIENTS.labels(kind).dec()
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _who(request: web.Request) -> Identity:
    """The caller of a page or the API (`Access.check` found one, or refused)."""
    ident = request[IDENTITY]
    assert ident is not None
    return ident


async def _until_closed(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the page sends until it goes."""
    async for _ in ws:
        pass


def _html(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="text/html", charset="utf-8")


def _json(data: Any, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
    return web.Response(body=dumps(data).encode(), status=status, content_type="application/json")
