"""Who is asking the panel server, and what it answers those who may not (see `coach_ui.server`).

`Access.check` runs before every handler: a token in a URL's query is refused (400), the caller's
identity is found from `Authorization: Bearer` or the session cookie (a page without one goes to
`/login`, the API gets 401, a feed is marked to close with 4401), and every response gets the
security headers (a strict CSP first). `login` turns a token into the session cookie (HttpOnly,
SameSite=Strict, Secure under TLS, for the token's life); `logout` drops it. Every refusal is
counted in `agent_assist_panel_refused_total{reason}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import quote, urlsplit

from aiohttp import web

from coach_ui.auth import AuthError, Identity, Verifier
from pipeline.runtime import metrics
from pipeline.types import dumps

log = logging.getLogger(__name__)

COOKIE = "aa_session"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the Origin of a form "null"
    "Cache-Control": "no-store",
}
# the request's `Identity`; None on a feed without one (it closes with 4401)
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
OPEN = ("/healthz", "/login", "/logout", "/static/")  # paths anyone may ask for
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WHY = {
    "no_token": "sign in: a token is required (Authorization: Bearer, or /login)",
    "bad_token": "token refused",
    "token_in_url": "a token is never accepted in a URL: use Authorization or /login",
    "forbidden": "your role may not see this",
    "bad_origin": "a page of another origin may not do this",
}


class Access:
    def __init__(self, verifier: Verifier, origins: tuple[str, ...], secure: bool) -> None:
        self.verifier = verifier
        self.extra_origins = origins
        self.secure = secure  # TLS: the cookie is Secure

    async def check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if "token" in request.query:
                raise self.refusal(request, HTTPStatus.BAD_REQUEST, "token_in_url")
            if request.path.startswith("/ws/"):  # a feed says no in its own way: close 4401
                try:
                    request[IDENTITY] = await self.identity(request)
                except web.HTTPUnauthorized:
                    request[IDENTITY] = None
            elif not request.path.startswith(OPEN):
                request[IDENTITY] = await self.identity(request)
            response = await handler(request)
        except web.HTTPException as exc:  # raised, never returned (aiohttp's rule)
            exc.headers.update(HEADERS)
            raise
        if not response.prepared:
            response.headers.update(HEADERS)
        return response

    async def identity(self, request: web.Request) -> Identity:
        auth = request.headers.getall("Authorization", [])
        if len(auth) > 1:
            raise self.refusal(request, HTTPStatus.BAD_REQUEST, "bad_token", "one Authorization")
        scheme, _, token = (auth[0] if auth else "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
        if not token:
            raise self.refusal(request, HTTPStatus.UNAUTHORIZED, "no_token")
        try:
            return await asyncio.to_thread(self.verifier.verify, token)
        except AuthError as exc:
            log.info("panel %s from %s: %s", request.path, request.remote, exc)
            raise self.refusal(request, HTTPStatus.UNAUTHORIZED, "bad_token", str(exc)) from None

    def refusal(
        self, request: web.Request, status: HTTPStatus, reason: str, detail: str = ""
    ) -> web.HTTPException:
        """A refusal to raise, counted: a page without a session goes to the login page; the
        rest get JSON with the reason."""
        metrics.PANEL_REFUSED.labels(reason).inc()
        page = request.method == "GET" and not request.path.startswith(("/api/", "/ws/"))
        if status == HTTPStatus.UNAUTHORIZED and page:
            return web.HTTPSeeOther(f"/login?next={quote(request.path)}")
        body = dumps({"error": reason, "reason": WHY[reason] + (f": {detail}" if detail else "")})
        kind = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden}
        return kind[status](text=body, content_type="application/json")

    def allow(self, request: web.Request, allowed: bool, what: str) -> None:
        if not allowed:
            raise self.refusal(request, HTTPStatus.FORBIDDEN, "forbidden", what)

    def origins(self, request: web.Request) -> set[str]:
        """This server's own origin (as the browser addressed it) and the configured ones."""
        return {f"{request.scheme}://{request.host}", *self.extra_origins}

    def same_origin(self, request: web.Request) -> None:
        """Refuse a browser request sent by a page of another origin (no Origin: a program)."""
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins(request):
            raise self.refusal(request, HTTPStatus.FORBIDDEN, "bad_origin")

    async def login(self, request: web.Request) -> web.StreamResponse:
        self.same_origin(request)
        form = await request.post()
        token, target = str(form.get("token", "")).strip(), str(form.get("next", "/"))
        try:
            ident = await asyncio.to_thread(self.verifier.verify, token)
        except AuthError as exc:
            metrics.PANEL_REFUSED.labels("bad_token").inc()
            log.info("panel login from %s: %s", request.remote, exc)
            raise web.HTTPSeeOther("/login?failed=1") from None
        log.info("panel login: %s as %s", ident.subject, ident.role.name.lower())
        done = web.HTTPSeeOther(_local(target))
        done.set_cookie(
            COOKIE,
            token,
            max_age=max(0, int(ident.expires - time.time())),
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="Strict",
        )
        raise done

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.same_origin(request)
        done = web.HTTPSeeOther("/login")
        done.del_cookie(COOKIE, path="/")
        raise done


def _local(target: str) -> str:
    """Where to go after signing in: a path on this server only (never another site)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
