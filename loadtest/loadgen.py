"""Load generator: how many simultaneous real-time calls a server carries at a latency target.

    python -m loadtest.loadgen                                   # batched vs baseline, 2 s target
    python -m loadtest.loadgen --schedulers batched --calls 4 8 12 --protocols native
    python -m loadtest.loadgen --server-args "--device cuda --compute-type float16" --target 1

For each scheduler (`--schedulers`), a fresh `agent-assist serve` process (its own model, the
scheduler under test) runs against one Redis. `batched` is the server as it ships (batches across
calls, finals first, adaptive interims, a 20 s encoder window: `--min-window`); `baseline` is the
policy of open streaming-whisper servers (each pass on its own, first come first served, a fixed
interim cadence, whisper's full 30 s window), on the same pipeline otherwise. Then for each step N
of `--calls`, N calls stream at real-time pace, their starts spread over `--ramp` seconds, each
through one protocol of `--protocols` in turn (the native WebSocket, Twilio Media Streams, Genesys
AudioHook: the real wire formats, from `agent_assist.clients`). The calls are drawn in turn from a
set of scripted calls: the sample call (72 s, a customer growing frustrated, so alerts fire) and
calls of real telephone speech made of Asterisk prompts, the parties taking turns.

Every event is read from Redis pub/sub (`aa:events`) as a panel would, and timed against the
moment its audio was sent:

- **final**: end of speech -> its final on Redis. End of speech is the end of the utterance as
  the VAD cut it (the `end` of the final: its last voiced frame plus a 0.3 s pad), at the moment
  the client sent that audio. The capacity target applies to this figure. The VAD closes an
  utterance after 0.5 s of silence, so 0.2 s of waiting for the speaker is inside it.
- **last word**: the same from the end of the utterance's last word as whisper timed it: what
  a listener perceives, the whole 0.5 s hang-over inside (reported, no target).
- **first interim**: start of the utterance as sent -> its first interim on Redis.
- **sentiment**: a final on Redis -> the sentiment event of the same utterance.
- **alert**: end of the utterance that triggered an alert -> the alert on Redis (and the same for
  frustration onsets).

A step *keeps up* when every call ran to its end, no final was dropped (each final the server
stored was also published, and none failed), no sender fell more than `--max-lag` behind real
time (the server reads what it is sent), and latency did not grow across a call (the median
final latency of each call's last third is within `--growth` of its first third). It *meets the
target* when, besides, the p95 final latency is at most `--target`. A scheduler's series stops
at its first step that misses the target (`--all-steps` runs them all). The capacity of a
scheduler is its largest step that met the target.

Writes `report.json`, `steps.csv` and `latency.png` (latency percentiles against calls, one line
per scheduler) to `--out`. Prints a progress line while a step runs and a table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from redis.asyncio import Redis
from tqdm import tqdm

from agent_assist.cli import sample_call
from agent_assist.embedded_redis import EmbeddedRedis
from agent_assist.replay import replay
from loadtest import bench_spine
from loadtest.bench_spine import pct, scrape, server
from loadtest.clients import LOCAL, Pacer, audiohook_call, stereo_pcm, twilio_call
from loadtest.protocols import resample, write_wav

PROTOCOLS = ("native", "twilio", "audiohook")
RESULTS = Path(__file__).resolve().parent / "results" / "loadgen"


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    wav: Path  # stereo 8 kHz: customer left, agent right
    pcm: np.ndarray
    seconds: float


def scripted_calls(workdir: Path, count: int, seconds: float) -> list[ScriptedCall]:
    """The sample call, then up to `count - 1` calls of about `seconds` of Asterisk prompts each
    (prompts longer than 20 s left out: no caller speaks that long without a pause)."""
    pcm, rate = stereo_pcm(sample_call())
    pcm8 = resample(pcm, rate, 8000) if rate != 8000 else pcm
    calls = [ScriptedCall("sample", write_wav(workdir / "sample.wav", pcm8, 8000), pcm8, 0.0)]
    if bench_spine.TRANSCRIPTS.exists():
        chunk: list[tuple[Path, str]] = []
        length = 0.0
        for path, text in bench_spine.prompts(None):
            if len(calls) >= count:
                break
            seconds_of_speech = len(bench_spine.read_mono(path)) / 8000  # read each prompt once
            if seconds_of_speech > 20:
                continue
            chunk.append((path, text))
            length += seconds_of_speech + 0.8
            if length >= seconds:
                wav, _ = bench_spine.prompt_call(chunk, workdir / f"asterisk-{len(calls)}.wav")
                calls.append(ScriptedCall(wav.stem, wav, stereo_pcm(wav)[0], 0.0))
                chunk, length = [], 0.0
    return [ScriptedCall(c.name, c.wav, c.pcm, len(c.pcm) / 8000) for c in calls]


@dataclass
class CallRun:
    call_id: str
    protocol: str
    script: str
    t0: float = 0.0  # monotonic time its first audio went out (known once it ended)
    launched: float = 0.0  # when its client started (for the progress line)
    lag: float = 0.0  # furthest its sender fell behind real time
    done: bool = False
    error: str = ""


async def run_call(url: str, call: ScriptedCall, protocol: str, run: CallRun) -> None:
    base = url.rsplit("/v1/", 1)[0]
    pacer = Pacer()
    try:
        if protocol == "native":
            result = await replay(
                call.wav, url, call_id=run.call_id, agent_id="load-agent", key=LOCAL.key.secret
            )
            run.t0, run.lag = result.started_at, result.lag
        elif protocol == "twilio":
            params = {"call_id": run.call_id, "agent_id": "load-agent"}
            sid = "CA" + uuid.uuid4().hex
            twilio = f"{base}/twilio"
            await twilio_call(
                twilio, call.pcm, sid, params, headers=LOCAL.twilio(twilio), pacer=pacer
            )
            run.t0, run.lag = pacer.start, pacer.lag
        else:
            await audiohook_call(
                f"{base}/audiohook",
                call.pcm,
                run.call_id,
                agent_id="load-agent",
                api_key=LOCAL.audiohook_api_key,
                pacer=pacer,
            )
            run.t0, run.lag = pacer.start, pacer.lag
        run.done = True
    except Exception as exc:  # a call that failed is reported, and fails its step
        run.error = f"{type(exc).__name__}: {exc}"


@dataclass
class Step:
    scheduler: str
    calls: int
    final_p50: float
    final_p95: float
    final_max: float
    last_word_p50: float
    last_word_p95: float
    first_interim_p50: float
    first_interim_p95: float
    sentiment_p50: float
    sentiment_p95: float
    alert_p50: float
    alert_p95: float
    frustration_alert_p50: float
    finals: int
    dropped: int
    failed_calls: int
    max_lag_s: float
    growth_s: float
    interims_shed: float
    interims: int
    mean_batch: float
    keeps_up: bool
    meets_target: bool
    notes: list[str] = field(default_factory=list)


class Capture:
    """Every event on the bus, with the monotonic time it arrived."""

    def __init__(self, redis: Redis, prefix: str = "aa") -> None:
        self.redis = redis
        self.channel = f"{prefix}:events"
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Capture:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._read(pubsub))
        return self

    async def _read(self, pubsub: Any) -> None:
        async with pubsub:
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is not None:
                    self.events.append((time.monotonic(), json.loads(msg["data"])))

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(1.0)  # the last events in flight
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def analyse(
    scheduler: str,
    runs: list[CallRun],
    events: list[tuple[float, dict[str, Any]]],
    stored: dict[str, int],
    server_delta: dict[str, float],
    args: argparse.Namespace,
) -> Step:
    by_call = {r.call_id: r for r in runs}
    finals: list[float] = []
    last_word: list[float] = []
    firsts: list[float] = []
    sentiment: list[float] = []
    alerts: list[float] = []
    frustration: list[float] = []
    final_at: dict[tuple[str, str, int], float] = {}
    seen_interim: set[tuple[str, str, int]] = set()
    per_call: dict[str, list[float]] = {}
    published: dict[str, int] = {}
    onsets: dict[str, float] = {}
    interims = 0
    for at, e in events:
        run = by_call.get(e.get("call_id", ""))
        if run is None or not run.t0:
            continue
        kind = e.get("type")
        if kind == "transcript":
            key = (run.call_id, e["channel"], e["utterance"])
            if e["final"]:
                words = e.get("words") or []
                latency = at - (run.t0 + e["end"])
                finals.append(latency)
                last_word.append(at - (run.t0 + (words[-1]["end"] if words else e["end"])))
                per_call.setdefault(run.call_id, []).append(latency)
                final_at[key] = at
                published[run.call_id] = published.get(run.call_id, 0) + 1
            else:
                interims += 1
                if key not in seen_interim:
                    seen_interim.add(key)
                    firsts.append(at - (run.t0 + e["start"]))
        elif kind == "sentiment":
            key = (run.call_id, e["channel"], e["utterance"])
            if key in final_at:
                sentiment.append(at - final_at[key])
        elif kind == "frustration" and e.get("onset"):
            onsets.setdefault(run.call_id, e["end"])
        elif kind == "alert":
            alerts.append(at - (run.t0 + e["end"]))
            if "frustrat" in e.get("rule", "") and run.call_id in onsets:
                frustration.append(at - (run.t0 + onsets.pop(run.call_id)))
    dropped = sum(max(0, n - published.get(c, 0)) for c, n in stored.items())
    dropped += int(server_delta.get("final_errors", 0))
    growth = []
    for lat in per_call.values():
        third = max(1, len(lat) // 3)
        growth.append(statistics.median(lat[-third:]) - statistics.median(lat[:third]))
    failed = [r for r in runs if not r.done]
    max_lag = max((r.lag for r in runs), default=0.0)
    notes = [f"{r.call_id} ({r.protocol}): {r.error}" for r in failed]
    keeps_up = (
        not failed
        and dropped == 0
        and max_lag <= args.max_lag
        and (max(growth) if growth else 0.0) <= args.growth
        and bool(finals)
    )
    return Step(
        scheduler=scheduler,
        calls=len(runs),
        final_p50=pct(finals, 0.5),
        final_p95=pct(finals, 0.95),
        final_max=max(finals, default=math.nan),
        last_word_p50=pct(last_word, 0.5),
        last_word_p95=pct(last_word, 0.95),
        first_interim_p50=pct(firsts, 0.5),
        first_interim_p95=pct(firsts, 0.95),
        sentiment_p50=pct(sentiment, 0.5),
        sentiment_p95=pct(sentiment, 0.95),
        alert_p50=pct(alerts, 0.5),
        alert_p95=pct(alerts, 0.95),
        frustration_alert_p50=pct(frustration, 0.5),
        finals=len(finals),
        dropped=dropped,
        failed_calls=len(failed),
        max_lag_s=max_lag,
        growth_s=max(growth) if growth else math.nan,
        interims_shed=server_delta.get("shed", 0.0),
        interims=interims,
        mean_batch=server_delta.get("mean_batch", math.nan),
        keeps_up=keeps_up,
        meets_target=keeps_up and pct(finals, 0.95) <= args.target,
        notes=notes,
    )


def server_counters(port: int) -> dict[str, float]:
    return {
        "shed": scrape(port, "agent_assist_interims_shed_total"),
        "final_errors": scrape(port, 'agent_assist_errors_total{kind="final"}'),
        "batch_sum": scrape(port, "agent_assist_asr_batch_size_sum"),
        "batch_count": scrape(port, "agent_assist_asr_batch_size_count"),
    }


async def run_step(
    scheduler: str,
    n: int,
    url: str,
    port: int,
    redis: Redis,
    calls: list[ScriptedCall],
    args: argparse.Namespace,
) -> Step:
    protocols = args.protocols
    runs = [
        CallRun(str(uuid.uuid4()), protocols[i % len(protocols)], calls[i % len(calls)].name)
        for i in range(n)
    ]
    script = {c.name: c for c in calls}
    before = await asyncio.to_thread(server_counters, port)
    longest = max(script[r.script].seconds for r in runs) + args.ramp
    async with Capture(redis) as capture:

        async def one(i: int, run: CallRun) -> None:
            await asyncio.sleep(i * args.ramp / n)
            run.launched = time.monotonic()
            await run_call(url, script[run.script], run.protocol, run)

        tasks = [asyncio.create_task(one(i, r)) for i, r in enumerate(runs)]
        launched = {r.call_id: r for r in runs}
        with tqdm(
            total=round(longest), desc=f"{scheduler} x{n}", unit="s", file=sys.stderr,
            leave=False, disable=None, mininterval=2.0,
        ) as bar:  # fmt: skip
            started = time.monotonic()
            while not all(t.done() for t in tasks):
                await asyncio.wait(tasks, timeout=2.0)
                live = sum(1 for r in runs if r.launched and not r.done and not r.error)
                recent = [  # approximate: from the client's start, not its first audio
                    at - (launched[e["call_id"]].launched + e["end"])
                    for at, e in capture.events[-300:]
                    if e.get("type") == "transcript" and e.get("final")
                    and e.get("call_id") in launched
                ]  # fmt: skip
                bar.update(min(bar.total, round(time.monotonic() - started)) - bar.n)
                finals = sum(1 for _, e in capture.events[-300:] if e.get("final"))
                bar.set_postfix_str(
                    f"live {live}/{n}, recent finals {finals}"
                    f", recent final p95 ~{pct(recent, 0.95):.1f}s"
                )
    after = await asyncio.to_thread(server_counters, port)
    delta = {k: after[k] - before[k] for k in after}
    delta["mean_batch"] = (
        delta["batch_sum"] / delta["batch_count"] if delta["batch_count"] else math.nan
    )
    stored = {}
    for r in runs:
        stored[r.call_id] = await redis.llen(f"aa:call:{r.call_id}:transcript")
    return analyse(scheduler, runs, capture.events, stored, delta, args)


def print_row(s: Step) -> None:
    print(
        f"{s.scheduler:>9} {s.calls:>5} {s.final_p50:>8.2f}s {s.final_p95:>8.2f}s "
        f"{s.last_word_p95:>8.2f}s "
        f"{s.first_interim_p50:>8.2f}s {s.first_interim_p95:>7.2f}s "
        f"{s.sentiment_p50:>7.2f}s {s.alert_p50:>7.2f}s {s.interims_shed:>6.0f} "
        f"{s.mean_batch:>5.1f} {s.max_lag_s:>6.2f}s {s.growth_s:>+6.2f}s {s.dropped:>4} "
        f"{'yes' if s.keeps_up else 'no':>5} {'yes' if s.meets_target else 'no':>6}",
        flush=True,
    )
    for note in s.notes:
        print(f"          {note}")


HEADER = (
    f"{'scheduler':>9} {'calls':>5} {'final p50':>9} {'p95':>9} {'word p95':>9} "
    f"{'1st int p50':>9} {'p95':>8} "
    f"{'sentim':>8} {'alert':>8} {'shed':>6} {'batch':>5} {'lag':>7} {'growth':>7} {'drop':>4} "
    f"{'keeps':>5} {'target':>6}"
)


def markdown(steps: list[Step]) -> str:
    """The table the README shows."""
    rows = [
        "| scheduler | calls | final p50 / p95 | last word p95 | first interim p50 / p95 "
        "| final to sentiment p50 | alert p50 | interims shed | keeps up | p95 final <= target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        rows.append(
            f"| {s.scheduler} | {s.calls} | {s.final_p50:.2f} / {s.final_p95:.2f} s "
            f"| {s.last_word_p95:.2f} s | {s.first_interim_p50:.2f} / {s.first_interim_p95:.2f} s "
            f"| {1000 * s.sentiment_p50:.0f} ms | {s.alert_p50:.2f} s | {s.interims_shed:.0f} "
            f"| {'yes' if s.keeps_up else 'no'} | {'yes' if s.meets_target else 'no'} |"
        )
    return "\n".join(rows) + "\n"


def plot(steps: list[Step], target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for scheduler, color in (("batched", "tab:blue"), ("baseline", "tab:red")):
        rows = [s for s in steps if s.scheduler == scheduler]
        if not rows:
            continue
        x = [s.calls for s in rows]
        ax.plot(x, [s.final_p95 for s in rows], "o-", color=color, label=f"{scheduler} p95 final")
        ax.plot(
            x,
            [s.final_p50 for s in rows],
            "o--",
            color=color,
            alpha=0.6,
            label=f"{scheduler} p50 final",
        )
    ax.axhline(target, color="grey", linestyle=":", label=f"target {target:g} s")
    ax.set_xlabel("simultaneous real-time calls")
    ax.set_ylabel("end of speech -> final on Redis (s)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Final transcript latency against load")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


async def main_async(args: argparse.Namespace) -> list[Step]:
    workdir = Path(tempfile.mkdtemp(prefix="loadgen-"))
    calls = scripted_calls(workdir, args.scripts, args.call_seconds)
    print(
        f"scripted calls: {', '.join(f'{c.name} ({c.seconds:.0f} s)' for c in calls)}; "
        f"protocols: {', '.join(args.protocols)}; target p95 final <= {args.target:g} s; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    steps: list[Step] = []
    embedded = await asyncio.to_thread(EmbeddedRedis().start)
    try:
        redis = Redis.from_url(embedded.url, decode_responses=True)
        for scheduler in args.schedulers:
            extra = [
                "--redis-url", embedded.url, "--scheduler", scheduler,
                "--min-window-s", "30" if scheduler == "baseline" else str(args.min_window),
                "--interim-min-window-s",
                "30" if scheduler == "baseline" else str(args.interim_window),
                "--panel-port", "0", "--webrtc-port", "0", "--audiosocket-port", "0",
                "--model", args.model, *shlex.split(args.server_args),
            ]  # fmt: skip
            with server(extra) as (url, port):
                print(HEADER, flush=True)
                for n in args.calls:
                    step = await run_step(scheduler, n, url, port, redis, calls, args)
                    steps.append(step)
                    print_row(step)
                    if not step.meets_target and not args.all_steps:
                        break
        await redis.aclose()
    finally:
        embedded.stop()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedulers", nargs="+", default=["batched", "baseline"])
    parser.add_argument(
        "--calls", nargs="+", type=int, default=[1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20]
    )
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--target", type=float, default=2.0, help="p95 final latency, s")
    parser.add_argument("--ramp", type=float, default=20.0, help="call starts spread over, s")
    parser.add_argument("--growth", type=float, default=1.0, help="latency growth allowed, s")
    parser.add_argument("--max-lag", type=float, default=1.0, help="sender lag allowed, s")
    parser.add_argument("--scripts", type=int, default=6, help="scripted calls to draw from")
    parser.add_argument(
        "--call-seconds", type=float, default=60.0, help="length of the Asterisk calls, s"
    )
    parser.add_argument("--model", default="base")
    parser.add_argument(
        "--min-window", type=float, default=20.0, help="the batched server's encoder window, s"
    )
    parser.add_argument(
        "--interim-window",
        type=float,
        default=20.0,
        help="the batched server's encoder window of interim passes, s",
    )
    parser.add_argument("--server-args", default="", help="more `agent-assist serve` flags")
    parser.add_argument("--all-steps", action="store_true", help="run every step of --calls")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    steps = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    capacity = {
        s: max((x.calls for x in steps if x.scheduler == s and x.meets_target), default=0)
        for s in args.schedulers
    }
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "capacity": capacity,
        "steps": [asdict(s) for s in steps],
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    with open(args.out / "steps.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in asdict(steps[0]) if k != "notes"])
        writer.writeheader()
        for s in steps:
            writer.writerow({k: v for k, v in asdict(s).items() if k != "notes"})
    (args.out / "steps.md").write_text(markdown(steps))
    plot(steps, args.target, args.out / "latency.png")
    print(f"\ncalls sustained with p95 final <= {args.target:g} s:")
    for scheduler, n in capacity.items():
        print(f"  {scheduler:>9}: {n}")
    if capacity.get("baseline"):
        ratio = capacity.get("batched", 0) / capacity["baseline"]
        print(f"  batched / baseline: {ratio:.1f}x")
    print(f"report: {args.out}/report.json, steps.csv, steps.md, latency.png")


if __name__ == "__main__":
    main()
