"""Real panels in a real browser: Debian's headless Chromium driven by Playwright.

Shared by the browser tests (`tests/test_panels.py`) and the alert-latency benchmark
(`loadtest/bench_alerts.py`). Never `playwright install`: the browser is the Debian package
`chromium` (`apt-get install chromium`), which `make test` installs when it is missing.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, Playwright

_ERRORS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()
CHROMIUM = Path(os.environ.get("AGENT_ASSIST_CHROMIUM", "/usr/bin/chromium"))


def chromium() -> str:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium), "
            "or point AGENT_ASSIST_CHROMIUM at a Chromium binary"
        )
    return str(CHROMIUM)


async def launch(playwright: Playwright, *args: str) -> Browser:
    # --no-sandbox: CI and these machines run as root, where Chromium's sandbox cannot start.
    return await playwright.chromium.launch(
        executable_path=chromium(), args=["--no-sandbox", *args]
    )


def fake_microphone(wav: Path) -> list[str]:
    """Chromium flags that make `wav` (16-bit PCM) the microphone, played once, for a WebRTC
    call to a server on this machine."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]


async def open_panel(
    browser: Browser, url: str, token: str, width: int = 1400, height: int = 900
) -> Page:
    """A page in its own browser context (own cookies, own sockets), signed in with `token` (the
    session cookie `/login` would set), loaded and live."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    base = "/".join(url.split("/")[:3])
    await context.add_cookies(
        [
            {
                "name": "aa_session",
                "value": token,
                "url": base,
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    page = await context.new_page()
    errors = _ERRORS.setdefault(page, [])
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector('#status[data-state="live"]')
    return page


def page_errors(page: Page) -> list[str]:
    """Uncaught script errors of a page opened with `open_panel`."""
    return _ERRORS.get(page, [])


async def alert_seen(page: Page) -> dict[str, float]:
    """When each alert (`call_id:seq`) first reached the page, epoch seconds."""
    seen: dict[str, Any] = await page.evaluate("AA.alertSeen")
    return {key: ms / 1000 for key, ms in seen.items()}


async def panel_text(page: Page) -> dict[str, str]:
    """What an agent panel shows, section by section, as text."""
    out: dict[str, str] = {}
    for section in ("transcript", "mood", "cards", "suggestions", "call-info"):
        out[section] = await page.inner_text(f"#{section}")
    return out
