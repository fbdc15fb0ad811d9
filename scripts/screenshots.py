"""Screenshots of the panels for the README: `docs/wallboard.png` and `docs/agent-panel.png`.

    .venv/bin/python scripts/screenshots.py

Runs the service, streams three calls at once at real time (the frustrated sample call, the calm
billing call and the payment call of the tests, each with its own agent), and photographs the
wall board and the sample call's agent panel in Debian's headless Chromium once the sample call's
cancellation alert has fired.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_assist.app import Service  # noqa: E402
from agent_assist.cli import sample_call  # noqa: E402
from agent_assist.replay import replay  # noqa: E402
from agent_assist.settings import Settings  # noqa: E402
from coach_ui.auth import Role  # noqa: E402
from loadtest.browser import launch, open_panel  # noqa: E402
from loadtest.clients import LOCAL  # noqa: E402

CALLS = [
    (sample_call(), "call-7431", "maria"),
    (ROOT / "tests" / "data" / "calm_call.wav", "call-7432", "omar"),
    (ROOT / "tests" / "data" / "payment_call.wav", "call-7433", "li"),
]


async def main() -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    settings = Settings(port=0, panel_port=0, log_level="WARNING", **LOCAL.settings())
    async with Service(settings) as service:
        assert service.panels is not None
        token = service.panels.mint("screenshots", Role.SUPERVISOR)
        async with async_playwright() as p:
            browser = await launch(p)
            board = await open_panel(browser, service.panels.url("/wallboard"), token, 1600, 900)
            agent = await open_panel(browser, service.panels.url("/agent/maria"), token, 1400, 900)
            calls = [
                asyncio.create_task(
                    replay(path, service.url, 1.0, call_id=c, agent_id=a, key=service.ingest_key)
                )
                for path, c, a in CALLS
            ]
            await board.locator(
                '.alert-item[data-rule="cancellation-intent"][data-call-id="call-7431"]'
            ).wait_for(timeout=120_000)
            await asyncio.sleep(2.0)
            await board.screenshot(path=str(docs / "wallboard.png"))
            await agent.screenshot(path=str(docs / "agent-panel.png"))
            print("wrote docs/wallboard.png and docs/agent-panel.png")
            await asyncio.gather(*calls)
            await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
