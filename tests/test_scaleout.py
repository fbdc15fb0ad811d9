"""Scale-out over Redis Streams, with real processes: a gateway started with `--role gateway`
and two `agent-assist worker` processes (whisper base and the sentiment model each) share one
redis-server. While the sample call streams, one worker is killed with SIGKILL at a moment it
holds a final; the other claims its pending work, and every final arrives, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_assist.cli import sample_call
from agent_assist.embedded_redis import EmbeddedRedis
from agent_assist.replay import replay
from loadtest.bench_spine import free_port, scrape, wait_http
from loadtest.clients import LOCAL
from pipeline.bus.client import connect
from pipeline.bus.jobs import JobsConfig
from pipeline.bus.redis_bus import Keys, call_state
from tests.conftest import script_lines, wer

pytestmark = pytest.mark.slow

CALL_ID = "scaleout-call"
SPEED = 1.5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    logs = tmp_path_factory.mktemp("scaleout")
    redis = EmbeddedRedis().start()
    env = (
        os.environ
        | LOCAL.env()
        | {
            "REDIS_URL": redis.url,
            "AGENT_ASSIST_LOG_LEVEL": "INFO",
            "AGENT_ASSIST_CLAIM_IDLE_S": "2",
        }
    )
    cli = [sys.executable, "-m", "agent_assist.cli"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}

    def start(name: str, args: list[str]) -> None:
        ports[name] = free_port()
        with open(logs / f"{name}.log", "wb") as log:
            procs[name] = subprocess.Popen(
                [*cli, *args, "--port", str(ports[name])], env=env, stdout=log, stderr=log
            )

    try:
        for name in ("w1", "w2"):
            start(name, ["worker", "--worker-name", name])
        start(
            "gateway",
            ["serve", "--role", "gateway", "--panels", "false", "--webrtc-port", "-1",
             "--audiosocket-port", "-1"],
        )  # fmt: skip
        wait_http(ports["gateway"], "/healthz", procs["gateway"], within=180)
        for name in ("w1", "w2"):
            wait_http(ports[name], "/metrics", procs[name], within=180)
        yield {"redis": redis, "procs": procs, "ports": ports, "logs": logs}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(60)
        redis.stop()


async def kill_when_holding_a_final(redis_url: str, proc: subprocess.Popen[bytes], name: str):
    """SIGKILL the worker `name` at a moment it has a final job taken and unanswered."""
    config = JobsConfig()
    client = connect(redis_url, decode=False)
    try:
        await asyncio.sleep(10 / SPEED)  # a few finals through both workers first
        while True:
            with contextlib.suppress(Exception):  # the group appears with the first job
                pending = await client.xpending_range(
                    config.stream("final"), config.group, "-", "+", 16, consumername=name
                )
                if pending:
                    os.kill(proc.pid, signal.SIGKILL)
                    return time.monotonic()
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def test_a_worker_killed_mid_call_loses_no_final_and_duplicates_none(cluster):
    procs = cluster["procs"]
    ports = cluster["ports"]
    redis_url = cluster["redis"].url  # type: ignore[attr-defined]
    port = ports["gateway"]  # type: ignore[index]
    url = f"ws://127.0.0.1:{port}/v1/stream"
    killer = asyncio.create_task(kill_when_holding_a_final(redis_url, procs["w1"], "w1"))
    result = await replay(Path(sample_call()), url, SPEED, call_id=CALL_ID, key=LOCAL.key.secret)
    killed_at = await asyncio.wait_for(killer, 1)  # it happened during the call
    assert killed_at < time.monotonic()
    assert procs["w1"].wait(5) == -signal.SIGKILL

    # every line of the script came back as exactly one final, on the socket and in Redis
    assert result.close_code == 1000
    finals = [e.event for e in result.received if e.event.get("final")]
    seen = Counter((e["channel"], e["utterance"]) for e in finals)
    assert max(seen.values()) == 1, seen
    assert len(finals) == len(script_lines()) == result.stopped["finals"]
    redis = connect(redis_url)
    try:
        _meta, events = await call_state(redis, Keys("aa"), CALL_ID)
        stored = [e.to_dict() for e in events]
    finally:
        await redis.aclose()
    assert [(e["channel"], e["utterance"]) for e in stored] == [
        (e["channel"], e["utterance"]) for e in finals
    ]
    for channel in ("customer", "agent"):
        reference = " ".join(text for who, text in script_lines() if who == channel)
        hypothesis = " ".join(e["text"] for e in finals if e["channel"] == channel)
        assert wer(reference, hypothesis) <= 0.15, hypothesis
    # the mood stage's sentiment model ran in the workers too
    sentiments = [e.event for e in result.received if e.event.get("type") == "sentiment"]
    assert len(sentiments) == len(finals)

    # the survivor took over what the killed worker held; the gateway waited for nothing in vain
    assert scrape(ports["w2"], "agent_assist_jobs_claimed_total", kind="final") >= 1
    assert scrape(port, "agent_assist_job_timeouts_total", kind="final") == 0
    assert scrape(port, "agent_assist_errors_total", kind="final") == 0
    assert scrape(port, "agent_assist_jobs_sent_total", kind="final") >= len(finals)
    log = (cluster["logs"] / "w2.log").read_text()  # type: ignore[operator]
    assert "claimed a final job left by w1" in log
    print(
        json.dumps(
            {"finals": len(finals), "killed_s_into_call": round(killed_at - result.started_at, 1)}
        )
    )
