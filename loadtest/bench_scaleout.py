"""What the Redis Streams hop costs: the sample call through one process, then through a gateway
and workers (`serve --role gateway` + `agent-assist worker`), on one shared redis-server.

    python -m loadtest.bench_scaleout [--workers 1] [--calls 1] [--speed 1]

Prints, per shape, the end of speech to final on the client (median, p95), with the number of
finals and, for the split shape, the job round trip the gateway measured. Synthetic speech: this
measures plumbing, not accuracy. All processes share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from agent_assist.cli import sample_call
from agent_assist.embedded_redis import EmbeddedRedis
from agent_assist.replay import replay
from loadtest.bench_spine import free_port, pct, scrape, wait_http
from loadtest.clients import LOCAL

QUIET = ["--panels", "false", "--webrtc-port", "-1", "--audiosocket-port", "-1"]


@contextlib.contextmanager
def processes(redis_url: str, workers: int, logs: Path) -> Iterator[int]:
    """A gateway (one process when `workers` is 0, else `--role gateway`) and its workers."""
    env = os.environ | LOCAL.env() | {"REDIS_URL": redis_url, "AGENT_ASSIST_LOG_LEVEL": "WARNING"}
    cli = [sys.executable, "-m", "agent_assist.cli"]
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for i in range(workers):
            port = free_port()
            with open(logs / f"worker{i}.log", "wb") as log:
                proc = subprocess.Popen(
                    [*cli, "worker", "--port", str(port), "--worker-name", f"bench-{i}"],
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            procs.append((proc, port))
        port = free_port()
        role = ["--role", "gateway"] if workers else []
        with open(logs / "gateway.log", "wb") as log:
            gateway = subprocess.Popen(
                [*cli, "serve", "--port", str(port), *role, *QUIET], env=env, stdout=log, stderr=log
            )
        procs.append((gateway, port))
        for proc, p in procs:
            wait_http(p, "/metrics", proc)
        yield port
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(120)


async def calls(port: int, n: int, speed: float) -> list[float]:
    url = f"ws://127.0.0.1:{port}/v1/stream"
    results = await asyncio.gather(
        *(
            replay(
                Path(sample_call()),
                url,
                speed,
                call_id=f"bench-{uuid.uuid4().hex}",
                key=LOCAL.key.secret,
            )
            for _ in range(n)
        )
    )
    return [
        r.latency
        for result in results
        for r in result.received
        if r.event.get("final") and r.latency is not None
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="workers in the split shape")
    parser.add_argument("--calls", type=int, default=1, help="sample calls streamed at once")
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    redis = EmbeddedRedis().start()
    try:
        with tempfile.TemporaryDirectory() as logs:
            for workers in (0, args.workers):
                shape = f"gateway + {workers} worker(s)" if workers else "one process"
                with processes(redis.url, workers, Path(logs)) as port:
                    lags = asyncio.run(calls(port, args.calls, args.speed))
                    trip = scrape(port, "agent_assist_job_seconds_sum") / max(
                        1.0, scrape(port, "agent_assist_job_seconds_count")
                    )
                print(
                    f"{shape:>24}: {len(lags)} finals, end of speech to final "
                    f"median {statistics.median(lags):.3f} s, p95 {pct(lags, 0.95):.3f} s, "
                    f"mean {statistics.fmean(lags):.3f} s"
                    + (f"; mean job round trip (all kinds) {trip:.2f} s" if workers else ""),
                    flush=True,
                )
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
