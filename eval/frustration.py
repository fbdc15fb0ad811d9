"""Frustration detection on scripted two-voice calls, through the whole pipeline.

    python -m eval.frustration [--speed 2] [--calls 'eval/calls/*.tsv']

Each script in `eval/calls/` is rendered with espeak-ng and sox (`eval/render.py`) and streamed
through a real service (gateway, whisper base, sentiment model, prosody, embedded Redis) over the
native protocol. The script labels every customer turn frustrated or not; a run of frustrated
customer turns is an *episode*. Judged on the events the client receives:

- precision: the share of frustration onsets (`onset: true`) that fall inside an episode, from its
  first turn's start to 5 s after its last turn's end;
- recall: the share of episodes during which frustration is active at some point (an onset in the
  episode, or frustration still active from before it);
- delay: from the end of the episode's first turn to frustration being active, on the audio clock
  (0 when already active) and on the wall clock as the client sees the event;
- calm calls: calls without an episode that raised frustration anyway.

THE CALLS ARE SYNTHETIC (espeak-ng voices, prosody varied by pitch, rate and volume): these
figures prove the plumbing and the fusion logic, not accuracy on real callers.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_assist.app import Service
from agent_assist.replay import replay
from agent_assist.settings import Settings
from eval.render import Turn, render

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "eval" / "results"
GRACE_S = 5.0


@dataclass
class Episode:
    first: Turn
    last: Turn
    detected_at: float | None = None  # audio clock
    wall_delay: float | None = None

    def contains(self, t: float) -> bool:
        return self.first.start <= t <= self.last.end + GRACE_S


@dataclass
class CallResult:
    name: str
    description: str
    episodes: list[Episode]
    onsets: list[tuple[float, bool]] = field(default_factory=list)  # (audio time, inside)
    scores: list[tuple[float, float]] = field(default_factory=list)  # (audio time, score)


def episodes_of(turns: list[Turn]) -> list[Episode]:
    out: list[Episode] = []
    current: Episode | None = None
    for t in turns:
        if t.speaker != "customer":
            continue
        if t.frustrated:
            if current is None:
                current = Episode(t, t)
                out.append(current)
            else:
                current.last = t
        else:
            current = None
    return out


async def run(
    paths: list[Path], speed: float, work: Path, on: float, off: float
) -> list[CallResult]:
    settings = Settings(port=0, log_level="WARNING", frustration_on=on, frustration_off=off)
    results = []
    async with Service(settings) as service:
        for path in paths:
            wav = work / f"{path.stem}.wav"
            turns = render(path, wav)
            description = path.read_text().splitlines()[0].lstrip("# ")
            result = CallResult(path.stem, description, episodes_of(turns))
            replayed = await replay(wav, service.url, speed, call_id=f"eval-{path.stem}")
            active = False
            for got in replayed.received:
                e = got.event
                if e.get("type") != "frustration":
                    continue
                t = float(e["end"])
                result.scores.append((t, float(e["score"])))
                if e["onset"]:
                    inside = any(ep.contains(t) for ep in result.episodes)
                    result.onsets.append((t, inside))
                for ep in result.episodes:
                    if ep.detected_at is None and e["active"] and ep.contains(t):
                        already = active and t <= ep.first.end
                        ep.detected_at = ep.first.end if already else t
                        ep.wall_delay = max(0.0, got.at - replayed.sent_at(ep.first.end))
                active = bool(e["active"])
            results.append(result)
            mark = " ".join(
                "hit" if ep.detected_at is not None else "MISS" for ep in result.episodes
            )
            print(
                f"  {path.stem:32} episodes {len(result.episodes)}  onsets "
                f"{len(result.onsets)} ({sum(i for _, i in result.onsets)} inside)  {mark}",
                flush=True,
            )
    return results


def summarise(results: list[CallResult]) -> dict[str, Any]:
    onsets = [inside for r in results for _, inside in r.onsets]
    episodes = [ep for r in results for ep in r.episodes]
    hits = [ep for ep in episodes if ep.detected_at is not None]
    delays = [ep.detected_at - ep.first.end for ep in hits if ep.detected_at is not None]
    walls = [ep.wall_delay for ep in hits if ep.wall_delay is not None]
    calm = [r for r in results if not r.episodes]
    return {
        "calls": len(results),
        "episodes": len(episodes),
        "onsets": len(onsets),
        "precision": sum(onsets) / len(onsets) if onsets else float("nan"),
        "recall": len(hits) / len(episodes) if episodes else float("nan"),
        "delay_audio_median_s": statistics.median(delays) if delays else None,
        "delay_audio_max_s": max(delays) if delays else None,
        "delay_wall_median_s": statistics.median(walls) if walls else None,
        "delay_wall_max_s": max(walls) if walls else None,
        "calm_calls": len(calm),
        "calm_calls_with_onsets": sum(bool(r.onsets) for r in calm),
        "per_call": [
            {
                "call": r.name,
                "description": r.description,
                "episodes": [
                    {
                        "first_turn": [ep.first.start, ep.first.end],
                        "last_turn_end": ep.last.end,
                        "detected_at": ep.detected_at,
                        "wall_delay_s": ep.wall_delay,
                    }
                    for ep in r.episodes
                ],
                "onsets": [{"at": t, "inside_episode": inside} for t, inside in r.onsets],
                "scores": r.scores,
            }
            for r in results
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speed", type=float, default=2.0, help="replay speed (1 = real time)")
    parser.add_argument("--calls", default=str(ROOT / "eval" / "calls" / "*.tsv"))
    parser.add_argument("--on", type=float, default=0.6, help="frustration_on setting")
    parser.add_argument("--off", type=float, default=0.4, help="frustration_off setting")
    parser.add_argument("--out", default="frustration.json", help="report name in eval/results")
    args = parser.parse_args()
    paths = sorted(Path(p) for p in glob.glob(args.calls))
    work = RESULTS / "calls"
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"Frustration on {len(paths)} scripted calls (SYNTHETIC speech), replayed at {args.speed}x"
    )
    t0 = time.monotonic()
    results = asyncio.run(run(paths, args.speed, work, args.on, args.off))
    s = summarise(results)
    print(
        f"precision {s['precision']:.2f} ({s['onsets']} onsets)   recall {s['recall']:.2f} "
        f"({s['episodes']} episodes)   calm calls raising frustration: "
        f"{s['calm_calls_with_onsets']} of {s['calm_calls']}"
    )
    if s["delay_audio_median_s"] is not None:
        print(
            f"delay from the end of an episode's first turn: audio clock median "
            f"{s['delay_audio_median_s']:.1f} s (max {s['delay_audio_max_s']:.1f} s); "
            f"wall clock median {s['delay_wall_median_s']:.1f} s "
            f"(max {s['delay_wall_max_s']:.1f} s)"
        )
    print(f"({time.monotonic() - t0:.0f} s)")
    out = RESULTS / args.out
    out.write_text(json.dumps(s, indent=2, default=str))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
