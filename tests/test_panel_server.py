"""The panel server's HTTP and WebSocket edges on the real service: the access token, the pages,
the API, and bad requests refused with a clear status or close code."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def panels(service):
    return service.panels


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(fetch, url, headers)


async def test_pages_need_the_token(panels):
    status, _, body = await get(f"{panels.base}/wallboard")
    assert status == 401 and b"access token required" in body
    assert (await get(f"{panels.base}/wallboard?token=wrong"))[0] == 401
    assert (await get(f"{panels.base}/api/calls", Authorization="Bearer wrong"))[0] == 401
    assert (await get(f"{panels.base}/healthz"))[0] == 200


async def test_token_in_the_url_becomes_a_cookie(panels):
    status, headers, _ = await get(panels.url("/agent/a1"))
    assert status == 303 and headers["Location"] == "/agent/a1"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, headers, body = await get(f"{panels.base}/agent/a1", Cookie=cookie.split(";")[0])
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"/static/agent.js" in body


async def test_static_and_api(panels):
    auth = {"Authorization": f"Bearer {panels.token}"}
    status, headers, body = await get(f"{panels.base}/static/panel.js", **auth)
    assert status == 200 and "javascript" in headers["Content-Type"] and b"AA" in body
    status, _, body = await get(f"{panels.base}/api/calls", **auth)
    state = json.loads(body)
    assert status == 200 and state["type"] == "wallboard"
    assert set(state["aggregates"]) == {"active_calls", "negative_calls", "alerts_per_minute"}
    for path in ("/api/calls/nobody", "/api/calls/nobody/record", "/static/nothing.js", "/x"):
        assert (await get(panels.base + path, **auth))[0] == 404, path


async def test_feeds_refuse_without_token_or_with_a_bad_path(panels):
    ws_base = panels.base.replace("http", "ws")
    for url, headers, code in (
        (f"{ws_base}/ws/wallboard", {}, 4401),
        (f"{ws_base}/ws/nothing/here", {"Authorization": f"Bearer {panels.token}"}, 4404),
        (f"{ws_base}/ws/agent", {"Authorization": f"Bearer {panels.token}"}, 4404),
    ):
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_a_feed_starts_with_a_snapshot(panels):
    ws_base = panels.base.replace("http", "ws")
    headers = {"Authorization": f"Bearer {panels.token}"}
    async with connect(f"{ws_base}/ws/agent/nobody-yet", additional_headers=headers) as ws:
        snapshot = json.loads(await ws.recv())
    assert snapshot["type"] == "snapshot" and snapshot["call_id"] == ""
    assert snapshot["events"] == [] and snapshot["agent_id"] == "nobody-yet"
    async with connect(f"{ws_base}/ws/wallboard", additional_headers=headers) as ws:
        snapshot = json.loads(await ws.recv())
    assert snapshot["type"] == "snapshot" and snapshot["board"]["type"] == "wallboard"


async def test_a_token_of_any_text_is_refused_not_a_crash(panels):
    for path in ("/api/calls", "/wallboard"):
        assert (await get(f"{panels.base}{path}?token=%C3%BC%E2%82%AC"))[0] == 401, path
    assert (await get(f"{panels.base}/api/calls", Authorization="Bearer \u00fc"))[0] == 401
