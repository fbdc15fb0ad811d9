"""Cost of the mood stage per utterance: sentiment and prosody. Prints figures; asserts nothing.

    python -m loadtest.bench_mood [--rounds 10] [--calls 1 8 16] [--e2e 1 4]

1. Stage cost: the sample call's utterances (text and 16 kHz audio of each turn) go through the
   real `MoodServices` (the batching sentiment owner, the prosody thread) the way `CallMood` sends
   them: sentiment and prosody at once, per utterance. With N calls, N utterances land together
   each round (the worst case: every call finishing a sentence at the same moment). Reports p50 /
   p95 of each stage and of the two together (the time a final waits for its mood).
2. With `--e2e N`: N real-time replays of the sample call through a real service; the time from
   each final transcript reaching the client to its mood event (the customer's `frustration`,
   the agent's `talk_stats`) reaching the client. This includes ASR competing for the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist.cli import sample_call
from agent_assist.replay import read_wav, replay
from loadtest.bench_spine import pct, server
from loadtest.clients import LOCAL
from pipeline.mood.call_mood import MoodConfig, MoodServices
from pipeline.mood.prosody import measure
from pipeline.mood.sentiment import SentimentConfig
from pipeline.speech.audio import MULAW_TO_PCM16, Resampler
from pipeline.types import Word

RESULTS = Path(__file__).resolve().parent / "results"


def utterances() -> list[tuple[str, np.ndarray, list[Word]]]:
    """(text, 16 kHz float audio, evenly spread words) of each turn of the sample call."""
    wav = read_wav(sample_call())
    stereo = MULAW_TO_PCM16[np.frombuffer(wav.data, np.uint8)].reshape(-1, 2)
    tracks = []
    for ch in (0, 1):
        r = Resampler(8000)
        pcm = np.concatenate([r.push(stereo[:, ch].copy()), r.flush()])
        tracks.append(pcm.astype(np.float32) / 32768)
    out = []
    timeline = sample_call().with_name("sample_call.timeline.tsv").read_text().splitlines()
    for line in timeline:
        speaker, a, b, text = line.split("\t")
        start, end = float(a), float(b)
        audio = tracks[speaker == "agent"][int((start - 0.3) * 16000) : int((end + 0.3) * 16000)]
        n = len(text.split())
        words = [Word(w, 0.3 + i * (end - start) / n, 0.3 + (i + 1) * (end - start) / n)
                 for i, w in enumerate(text.split())]  # fmt: skip
        out.append((text, audio, words))
    return out


async def stage_cost(services: MoodServices, calls: int, rounds: int) -> dict[str, Any]:
    items = utterances()
    loop = asyncio.get_running_loop()
    times: dict[str, list[float]] = {"sentiment": [], "prosody": [], "together": []}

    async def timed(kind: str, work: Any) -> None:
        t0 = time.perf_counter()
        await work
        times[kind].append(time.perf_counter() - t0)

    async def one(text: str, audio: np.ndarray, words: list[Word]) -> None:
        assert services.sentiment is not None
        t0 = time.perf_counter()
        await asyncio.gather(
            timed("sentiment", services.sentiment.submit(text)),
            timed("prosody", loop.run_in_executor(services.prosody, measure, audio, words)),
        )
        times["together"].append(time.perf_counter() - t0)

    for _ in range(rounds):
        for text, audio, words in items:
            await asyncio.gather(*(one(text, audio, words) for _ in range(calls)))
    return {
        k: {"p50_ms": 1000 * pct(v, 0.5), "p95_ms": 1000 * pct(v, 0.95), "n": len(v)}
        for k, v in times.items()
    }


async def e2e(url: str, calls: int) -> list[float]:
    async def one(i: int) -> list[float]:
        await asyncio.sleep(i * 2.3)
        result = await replay(
            sample_call(), url, 1.0, call_id=f"mood-{calls}-{i}", key=LOCAL.key.secret
        )
        finals: dict[tuple[str, int], float] = {}
        lags = []
        for r in result.received:
            e = r.event
            if e.get("type") == "transcript" and e["final"]:
                finals[(e["channel"], e["utterance"])] = r.at
            mood = (e.get("type") == "frustration" and e.get("utterance") is not None) or (
                e.get("type") == "talk_stats" and e["channel"] == "agent"
            )
            if mood:
                key = (
                    e["channel"],
                    e.get("utterance") or max(u for c, u in finals if c == "agent"),
                )
                if key in finals:
                    lags.append(r.at - finals[key])
        return lags

    return [lag for lags in await asyncio.gather(*(one(i) for i in range(calls))) for lag in lags]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--e2e", type=int, nargs="*", default=[])
    args = parser.parse_args()
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"), "stage": {}, "e2e": {}}
    services = MoodServices.load(MoodConfig(), SentimentConfig())
    print("Mood stage cost per utterance (sample call turns, real models), milliseconds")
    print(f"  {'calls':>5} {'sentiment p50':>14} {'p95':>6} {'prosody p50':>12} {'p95':>6} "
          f"{'both p50':>9} {'p95':>6}")  # fmt: skip
    try:
        for n in args.calls:
            r = asyncio.run(stage_cost(services, n, args.rounds))
            report["stage"][n] = r
            print(
                f"  {n:>5} {r['sentiment']['p50_ms']:>14.1f} {r['sentiment']['p95_ms']:>6.1f} "
                f"{r['prosody']['p50_ms']:>12.1f} {r['prosody']['p95_ms']:>6.1f} "
                f"{r['together']['p50_ms']:>9.1f} {r['together']['p95_ms']:>6.1f}"
            )
    finally:
        services.close()
    if args.e2e:
        print("Final transcript -> its mood event at the client, real-time calls with ASR running")
        with server([]) as (url, _):
            for n in args.e2e:
                lags = asyncio.run(e2e(url, n))
                report["e2e"][n] = {
                    "p50_ms": 1000 * pct(lags, 0.5),
                    "p95_ms": 1000 * pct(lags, 0.95),
                }
                print(f"  {n:>3} calls: p50 {1000 * pct(lags, 0.5):.0f} ms, "
                      f"p95 {1000 * pct(lags, 0.95):.0f} ms ({len(lags)} utterances)")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "mood.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
