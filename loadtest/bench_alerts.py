"""Time from a triggering utterance's end to its alert on the supervisor wall board and on the
agent panel, in a real browser, over repeated real-time replays of a call.

    python -m loadtest.bench_alerts --runs 5            # the bundled sample call
    python -m loadtest.bench_alerts --file my_call.wav  # any stereo call

One service (embedded Redis, real models, panels) runs for all replays; each run opens a fresh
wall board and agent panel in Debian's headless Chromium, streams the call at real time and reads
back when each alert first reached each page (`AA.alertSeen`, the page's wall clock). The
utterance's end is the alert's `end` on the call's audio clock, placed on the wall clock by the
moment the first audio frame was sent; so the figure includes the VAD's end-of-utterance
hang-over, recognition, the mood stage, the rules, Redis and the browser. Prints the figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from agent_assist.app import Service
from agent_assist.cli import sample_call
from agent_assist.replay import replay
from agent_assist.settings import Settings
from coach_ui.auth import Role
from loadtest.browser import alert_seen, launch, open_panel
from loadtest.clients import LOCAL


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(path: Path, runs: int, speed: float) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    settings = Settings(port=0, panel_port=0, log_level="WARNING", **LOCAL.settings())
    async with Service(settings) as service, async_playwright() as p:
        assert service.panels is not None
        panels = service.panels
        token = panels.mint("bench-alerts", Role.SUPERVISOR)
        browser = await launch(p)
        for run in range(runs):
            call, agent = f"bench-alerts-{run}", f"bench-agent-{run}"
            board = await open_panel(browser, panels.url("/wallboard"), token)
            panel = await open_panel(browser, panels.url(f"/agent/{agent}"), token)
            result = await replay(
                path, service.url, speed, call_id=call, agent_id=agent, key=service.ingest_key
            )
            await asyncio.sleep(1.0)  # the last alerts in flight
            seen = {"wallboard": await alert_seen(board), "agent": await alert_seen(panel)}
            for got in result.events:
                if got.get("type") != "alert":
                    continue
                spoken = result.started_wall + got["end"] / speed
                row = {"run": run, "rule": got["rule"], "severity": got["severity"]}
                for page, times in seen.items():
                    at = times.get(f"{call}:{got['seq']}")
                    row[page] = None if at is None else at - spoken
                rows.append(row)
            await board.context.close()
            await panel.context.close()
            print(f"run {run + 1}/{runs}: {sum(r['run'] == run for r in rows)} alerts", flush=True)
        await browser.close()
    return {"rows": rows}


def report(rows: list[dict[str, Any]]) -> None:
    print("\nutterance end -> alert on the page (seconds), real time, this machine:")
    print(f"{'alerts':<22} {'page':<10} {'n':>3} {'p50':>6} {'p95':>6} {'max':>6}")
    groups = {
        "critical": [r for r in rows if r["severity"] == "critical"],
        "all": rows,
    }
    for name, group in groups.items():
        for page in ("wallboard", "agent"):
            lags = [r[page] for r in group if r[page] is not None]
            missing = sum(r[page] is None for r in group)
            if not lags:
                continue
            print(
                f"{name:<22} {page:<10} {len(lags):>3} {statistics.median(lags):>6.2f} "
                f"{pct(lags, 0.95):>6.2f} {max(lags):>6.2f}"
                + (f"  ({missing} never shown)" if missing else "")
            )
    print("\nper rule (wall board, median):")
    for rule in sorted({r["rule"] for r in rows}):
        lags = [r["wallboard"] for r in rows if r["rule"] == rule and r["wallboard"] is not None]
        if lags:
            print(f"  {rule:<24} n={len(lags):<3} {statistics.median(lags):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--file", type=Path, default=None, help="stereo WAV (default: sample)")
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(bench(args.file or sample_call(), args.runs, args.speed))
    report(result["rows"])


if __name__ == "__main__":
    main()
