"""The panels in a real browser (Debian's headless Chromium via Playwright) against the real
service: real Redis, real models, real WebSockets.

A frustrated call (the bundled sample, real time) must reach the wall board as a tile with a
critical alert, and the agent panel as a critical coaching card with a knowledge suggestion; a
page whose socket is cut mid-call must show, once it is back, exactly what a page that never lost
its socket shows, and what Redis holds. A calm call must raise no critical alert anywhere.
The time from the triggering utterance's end to the alert on the wall board is printed (measured
properly, over repeated runs, by `loadtest/bench_alerts.py`).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from agent_assist.replay import replay
from coach_ui.auth import Role
from loadtest.browser import alert_seen, launch, open_panel, page_errors, panel_text
from pipeline.bus.redis_bus import call_state

CALM = Path(__file__).parent / "data" / "calm_call.wav"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await launch(p)
        yield chromium
        await chromium.close()


async def ended(page: Page) -> None:
    # locators, not wait_for_function: the pages' CSP allows no script from a string
    await page.locator("#call-info", has_text="call ended").wait_for(timeout=60_000)


def get_json(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def test_frustrated_call_on_the_panels_survives_a_cut_socket(
    service, browser, sample_path, keys, capsys
):
    panels = service.panels
    token = panels.mint("supervisor-1", Role.SUPERVISOR)
    call, agent = "panel-frustrated", "panel-agent"
    board = await open_panel(browser, panels.url("/wallboard"), token)
    cut = await open_panel(browser, panels.url(f"/agent/{agent}"), token)
    steady = await open_panel(browser, panels.url(f"/agent/{agent}"), token)
    assert await cut.is_visible("#no-call")  # no call yet

    streaming = asyncio.create_task(
        replay(sample_path, service.url, 1.0, call_id=call, agent_id=agent, key=service.ingest_key)
    )
    tile = board.locator(f'.tile[data-call-id="{call}"]')
    await tile.wait_for(timeout=30_000)
    critical = board.locator(f'.alert-item[data-severity="critical"][data-call-id="{call}"]')
    await critical.first.wait_for(timeout=60_000)
    await cut.locator('.card[data-severity="critical"]').first.wait_for(timeout=10_000)
    await cut.locator(".suggestion").first.wait_for(timeout=10_000)
    assert "CRITICAL" in await critical.first.inner_text()  # a word, not only a colour
    needs_help = board.locator(f'.tile[data-call-id="{call}"]', has_text="NEEDS HELP")
    await needs_help.wait_for(timeout=10_000)
    assert "HIGH" in await tile.inner_text()  # the frustration gauge says it in words
    await tile.locator('.feeling:not([data-feeling=""])').wait_for(timeout=10_000)
    await cut.locator('#mood .feeling:not([data-feeling=""])').wait_for(timeout=10_000)

    # The click-through: the tile opens the call's live transcript.
    href = await tile.locator("a").get_attribute("href")
    assert href == f"/call/{call}"
    detail = await board.context.new_page()
    await detail.goto(panels.base + href)
    await detail.locator("#transcript .line.final").first.wait_for(timeout=10_000)

    # Cut every panel socket for a few seconds of the call, then let them back.
    panels.paused = True
    assert await panels.drop_clients() >= 4
    await cut.wait_for_selector('#status[data-state="reconnecting"]', timeout=5_000)
    await asyncio.sleep(6)
    panels.paused = False
    await cut.wait_for_selector('#status[data-state="live"]', timeout=15_000)
    await board.wait_for_selector('#status[data-state="live"]', timeout=15_000)

    result = await streaming
    await ended(cut)
    await ended(steady)
    assert await panel_text(cut) == await panel_text(steady)

    _, stored = await call_state(service.bus.redis, keys, call, mood=True)
    events = [e.to_dict() for e in stored]
    finals = [e for e in events if e["type"] == "transcript" and e["text"]]
    alerts = [e for e in events if e["type"] == "alert"]
    assert await cut.locator("#transcript .line.final").count() == len(finals) >= 10
    assert await cut.locator("#transcript .line.interim").count() == 0
    critical_alerts = [a for a in alerts if a["severity"] == "critical"]
    assert await cut.locator('.card[data-severity="critical"]').count() == len(critical_alerts)
    assert {a["rule"] for a in critical_alerts} >= {"frustrated-customer", "cancellation-intent"}
    assert await board.locator(f'.alert-item[data-call-id="{call}"]').count() == len(alerts)
    feelings = [e for e in events if e["type"] == "feeling"]
    assert feelings and all(f["channel"] == "customer" for f in feelings)
    shown = await cut.locator("#mood .feeling").get_attribute("data-feeling")
    assert shown == feelings[-1]["label"]  # the newest turn's feeling, in words
    assert feelings[-1]["label"] in await cut.locator("#mood .feeling").inner_text()
    for page in (board, cut, steady, detail):
        assert not page_errors(page), page_errors(page)

    seen = await alert_seen(board)
    with capsys.disabled():
        for a in critical_alerts:
            lag = seen[f"{call}:{a['seq']}"] - (result.started_wall + a["end"])
            print(f"\n  {a['rule']}: utterance end -> alert on the wall board {lag:.2f} s")


async def test_calm_call_raises_no_critical_alert(service, browser, keys):
    panels = service.panels
    token = panels.mint("supervisor-1", Role.SUPERVISOR)
    call, agent = "panel-calm", "calm-agent"
    board = await open_panel(browser, panels.url("/wallboard"), token)
    page = await open_panel(browser, panels.url(f"/agent/{agent}"), token)
    streaming = asyncio.create_task(
        replay(CALM, service.url, 2.0, call_id=call, agent_id=agent, key=service.ingest_key)
    )
    await board.locator(f'.tile[data-call-id="{call}"]').wait_for(timeout=30_000)
    await streaming
    await ended(page)
    assert await page.locator("#transcript .line.final").count() >= 10
    assert await page.locator('.card[data-severity="critical"]').count() == 0
    critical = f'.alert-item[data-severity="critical"][data-call-id="{call}"]'
    assert await board.locator(critical).count() == 0

    status, record = await asyncio.to_thread(
        get_json, f"{panels.base}/api/calls/{call}/record", token
    )
    assert status == 200 and record["type"] == "call_record" and record["agent_id"] == agent
    assert [a for a in record["alerts"] if a["severity"] == "critical"] == []
    assert len(record["transcript"]) >= 10 and 2 <= len(record["summary"]) <= 4
    first = next(t for t in record["transcript"] if t["channel"] == "customer")
    assert {"channel": "customer", "utterance": first["utterance"], "start": first["start"],
            "text": first["text"]} in record["summary"]  # why they called  # fmt: skip
    assert await service.bus.redis.ttl(keys.record(call)) > service.settings.call_ttl_s
