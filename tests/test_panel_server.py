"""The panel server's edges on the real service: who may see what (signed tokens and roles),
login and its cookie, tokens never taken from URLs, the Origin check on feeds, the CSP, the API,
and bad requests refused with a clear status or close code. OIDC mode against a local identity
provider (discovery and JWKS served on port 0); the login flow in a real Chromium."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.async_api import async_playwright
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from coach_ui.access import CSP
from coach_ui.auth import AuthConfig, Role
from coach_ui.server import PanelConfig, PanelServer
from loadtest.browser import launch


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def fetch(
    url: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(fetch, url, headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def panels(service) -> PanelServer:
    return service.panels


@pytest.fixture
def supervisor(panels) -> str:
    return panels.mint("sup-1", Role.SUPERVISOR)


@pytest.fixture
def agent(panels) -> str:
    return panels.mint("agent-a1", Role.AGENT, agent_id="a1")


async def feed_close(url: str, headers: dict[str, str]) -> int:
    async with connect(url, additional_headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_without_a_session_pages_go_to_login_and_the_api_says_401(panels):
    status, headers, _ = await get(f"{panels.base}/wallboard")
    assert status == 303 and headers["Location"] == "/login?next=/wallboard"
    status, headers, body = await get(f"{panels.base}/api/calls")
    assert status == 401 and json.loads(body)["error"] == "no_token"
    assert (await get(f"{panels.base}/api/calls", **bearer("not-a-jwt")))[0] == 401
    assert (await get(f"{panels.base}/api/calls", Authorization="Bearer \u00fc"))[0] == 401
    assert (await get(f"{panels.base}/healthz"))[0] == 200
    status, headers, body = await get(f"{panels.base}/login")
    assert status == 200 and headers["Content-Security-Policy"] == CSP and b"<form" in body


async def test_a_token_in_a_url_is_refused_even_a_good_one(panels, supervisor):
    for path in ("/api/calls", "/wallboard", "/agent/a1"):
        status, _, body = await get(f"{panels.base}{path}?token={supervisor}")
        assert status == 400 and json.loads(body)["error"] == "token_in_url", path
    ws = panels.base.replace("http", "ws")
    with pytest.raises(InvalidStatus) as exc:
        async with connect(f"{ws}/ws/wallboard?token={supervisor}"):
            pass
    assert exc.value.response.status_code == 400


async def test_login_sets_a_strict_http_only_cookie_for_the_tokens_life(panels, supervisor):
    form = urllib.parse.urlencode({"token": supervisor, "next": "/agent/a1"}).encode()
    status, headers, _ = await asyncio.to_thread(fetch, f"{panels.base}/login", None, form)
    assert status == 303 and headers["Location"] == "/agent/a1"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; under --tls-cert it is Secure
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 8 * 3600 - 60 < max_age <= 8 * 3600
    session = cookie.split(";")[0]
    status, headers, body = await get(f"{panels.base}/agent/a1", Cookie=session)
    assert status == 200 and b"/static/agent.js" in body
    assert headers["Content-Security-Policy"] == CSP and headers["X-Content-Type-Options"]
    elsewhere = urllib.parse.urlencode({"token": supervisor, "next": "//evil.example/x"})
    status, headers, _ = await asyncio.to_thread(
        fetch, f"{panels.base}/login", None, elsewhere.encode()
    )
    assert headers["Location"] == "/", "after login, never another site"
    expired = panels.mint("old", Role.SUPERVISOR, ttl_s=-120)
    form = urllib.parse.urlencode({"token": expired}).encode()
    status, headers, _ = await asyncio.to_thread(fetch, f"{panels.base}/login", None, form)
    assert status == 303 and headers["Location"] == "/login?failed=1"
    assert "Set-Cookie" not in headers


async def test_an_agent_sees_only_their_own_calls(panels, agent, supervisor, service, keys):
    redis = service.bus.redis
    await redis.hset(keys.call("roles-own"), mapping={"agent_id": "a1", "status": "active"})
    await redis.hset(keys.call("roles-other"), mapping={"agent_id": "a2", "status": "active"})
    base = panels.base
    assert (await get(f"{base}/agent/a1", **bearer(agent)))[0] == 200
    assert (await get(f"{base}/api/calls/roles-own", **bearer(agent)))[0] == 200
    for path in ("/agent/a2", "/wallboard", "/api/calls", "/call/roles-other",
                 "/api/calls/roles-other", "/api/calls/roles-other/record"):  # fmt: skip
        status, _, body = await get(base + path, **bearer(agent))
        assert status == 403, path
        assert json.loads(body)["error"] == "forbidden"
    for path in ("/wallboard", "/api/calls", "/agent/a2", "/api/calls/roles-other"):
        assert (await get(base + path, **bearer(supervisor)))[0] == 200, path
    admin = panels.mint("root", Role.ADMIN)
    assert (await get(f"{base}/api/calls", **bearer(admin)))[0] == 200

    ws = base.replace("http", "ws")
    assert await feed_close(f"{ws}/ws/wallboard", bearer(agent)) == 4403
    assert await feed_close(f"{ws}/ws/agent/a2", bearer(agent)) == 4403
    assert await feed_close(f"{ws}/ws/call/roles-other", bearer(agent)) == 4403
    assert await feed_close(f"{ws}/ws/wallboard", {}) == 4401
    async with connect(f"{ws}/ws/agent/a1", additional_headers=bearer(agent)) as feed:
        snapshot = json.loads(await feed.recv())
    assert snapshot["type"] == "snapshot" and snapshot["agent_id"] == "a1"


async def test_a_feed_refuses_a_page_of_another_origin(panels, supervisor):
    ws = panels.base.replace("http", "ws")
    with pytest.raises(InvalidStatus) as exc:
        async with connect(f"{ws}/ws/wallboard", origin="https://evil.example",  # type: ignore[arg-type]
                           additional_headers=bearer(supervisor)):  # fmt: skip
            pass
    assert exc.value.response.status_code == 403
    async with connect(f"{ws}/ws/wallboard", origin=panels.base,  # type: ignore[arg-type]
                       additional_headers=bearer(supervisor)) as feed:  # fmt: skip
        assert json.loads(await feed.recv())["type"] == "snapshot"


async def test_static_api_and_feeds(panels, supervisor):
    auth = bearer(supervisor)
    status, headers, body = await get(f"{panels.base}/static/panel.js")
    assert status == 200 and "javascript" in headers["Content-Type"] and b"AA" in body
    status, _, body = await get(f"{panels.base}/api/calls", **auth)
    state = json.loads(body)
    assert status == 200 and state["type"] == "wallboard"
    assert set(state["aggregates"]) == {"active_calls", "negative_calls", "alerts_per_minute"}
    for path in ("/api/calls/nobody", "/api/calls/nobody/record", "/static/nothing.js", "/x"):
        assert (await get(panels.base + path, **auth))[0] == 404, path
    ws = panels.base.replace("http", "ws")
    assert await feed_close(f"{ws}/ws/nothing/here", auth) == 4404
    async with connect(f"{ws}/ws/wallboard", additional_headers=auth) as feed:
        snapshot = json.loads(await feed.recv())
    assert snapshot["type"] == "snapshot" and snapshot["board"]["type"] == "wallboard"


# --- OIDC: a local identity provider ------------------------------------------------------------


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[dict[str, Any]]:
    """Discovery and JWKS on port 0, as Keycloak serves them; its signing key and a foreign one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    state: dict[str, Any] = {"key": key, "other": rsa.generate_private_key(65537, 2048)}

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"issuer": state["issuer"], "jwks_uri": state["jwks"]})

    async def jwks(request: web.Request) -> web.Response:
        state["fetched"] = state.get("fetched", 0) + 1
        return web.json_response({"keys": [jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}]})

    app = web.Application()
    app.router.add_get("/realms/cc/.well-known/openid-configuration", discovery)
    app.router.add_get("/realms/cc/protocol/openid-connect/certs", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["issuer"] = f"http://127.0.0.1:{port}/realms/cc"
    state["jwks"] = f"{state['issuer']}/protocol/openid-connect/certs"
    yield state
    await runner.cleanup()


def idp_token(idp: dict[str, Any], roles: list[str], key: Any = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": idp["issuer"], "aud": "agent-assist", "sub": "user-1", "iat": now,
            "exp": now + 300, "realm_access": {"roles": roles}, "agent_id": "a1"}  # fmt: skip
    return jwt.encode(body | claims, key or idp["key"], algorithm="RS256", headers={"kid": "k1"})


async def test_oidc_mode_takes_the_providers_tokens_and_nothing_else(service, keys, idp):
    auth = AuthConfig(
        oidc_issuer=idp["issuer"],
        oidc_audience="agent-assist",
        oidc_role_claim="realm_access.roles",
    )
    panels = PanelServer(PanelConfig(port=0, auth=auth), service.bus.redis, keys)
    await panels.start()
    try:
        good = idp_token(idp, ["offline_access", "agent-assist-supervisor"])
        assert (await get(f"{panels.base}/api/calls", **bearer(good)))[0] == 200
        agent = idp_token(idp, ["agent"])
        assert (await get(f"{panels.base}/api/calls", **bearer(agent)))[0] == 403
        assert (await get(f"{panels.base}/agent/a1", **bearer(agent)))[0] == 200
        refused = [
            idp_token(idp, ["supervisor"], key=idp["other"]),  # signed by someone else
            idp_token(idp, ["supervisor"], exp=int(time.time()) - 120),  # expired
            idp_token(idp, ["supervisor"], aud="another-app"),
            idp_token(idp, ["supervisor"], iss="https://elsewhere.example"),
            idp_token(idp, ["offline_access"]),  # no role of ours
            service.panels.mint("x", Role.SUPERVISOR),  # a shared-secret token: not here
        ]
        for token in refused:
            status, _, body = await get(f"{panels.base}/api/calls", **bearer(token))
            assert status == 401 and json.loads(body)["error"] == "bad_token"
        assert idp["fetched"] >= 1  # the keys came from the provider's JWKS
    finally:
        await panels.stop()


# --- the login flow in a real browser -----------------------------------------------------------


async def test_a_browser_signs_in_and_its_script_never_sees_the_session(panels, supervisor, agent):
    async with async_playwright() as p:
        browser = await launch(p)
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{panels.base}/wallboard")
        assert page.url.startswith(f"{panels.base}/login?next=")
        await page.fill("#token", supervisor)
        await page.click("button")
        await page.wait_for_url(f"{panels.base}/wallboard")
        await page.wait_for_selector('#status[data-state="live"]')
        assert await page.evaluate("document.cookie") == ""  # HttpOnly
        (cookie,) = await page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # the demo's link: the token in the fragment signs in, then leaves the address
        linked = await (await browser.new_context()).new_page()
        await linked.goto(panels.login_url(agent, "/agent/a1"))
        await linked.wait_for_url(f"{panels.base}/agent/a1")
        await linked.wait_for_selector('#status[data-state="live"]')
        history = await linked.evaluate("history.length")
        assert "token" not in linked.url and history <= 3
        await linked.goto(f"{panels.base}/wallboard")  # an agent on the wall board
        assert "not allowed" in (await linked.content()).lower() or "forbidden" in (
            await linked.content()
        )
        await browser.close()
