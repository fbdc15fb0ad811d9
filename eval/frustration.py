"""Frustration detection and its alerts on scripted two-voice calls, through the whole pipeline.

    python -m eval.frustration [--speed 2] [--calls 'eval/calls/*.tsv']
                               [--engine espeak|flite|kokoro|both|all]

Each script is rendered with a speech synthesizer and sox (`eval/render.py`) and streamed
through a real service (gateway, whisper base, sentiment model, prosody, embedded Redis) over the
native protocol. The script labels every customer turn frustrated or not; a run of frustrated
customer turns is an *episode*, and its window runs from its first turn's start to 5 s after its
last turn's end. Judged on the events the client receives:

- critical alerts (any rule): precision, the share inside an episode's window; recall, the share
  of episodes with a critical alert in their window, over the calls whose frustration shows in
  words (a script saying `# alert: coaching` is frustrated in tone only, which alone raises no
  more than a coaching alert: its episodes count as caught by a coaching alert instead); a later
  episode also counts when frustration stays active from a critical alert still cooling down;
  delay, from the *start* of the episode's first frustrated turn to the alert, on the audio
  clock; early, critical alerts before a call's first frustrated turn starts; calm calls with a
  critical alert;
- frustration onsets (`onset: true`): the same precision and recall, and the delay from the end
  of the episode's first turn to frustration being active, on the audio and wall clocks;
- customer turns: whether each turn's `turn_sentiment` reads negative (score below -0.3) exactly
  when the script labels the turn frustrated, end to end (what whisper heard), and the same on
  the script's own text through the sentiment model (text alone). Tone-only calls are left out.
  The scripts label frustration, not three-way sentiment: this is a two-way agreement.

THE CALLS ARE SYNTHETIC (espeak-ng and flite voices, prosody varied by pitch, rate and volume):
these figures prove the plumbing and the fusion logic, not accuracy on real callers.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_assist.app import Service
from agent_assist.replay import replay
from agent_assist.settings import Settings
from eval.render import ENGINES, NEURAL, Turn, render
from gateway.calls import IngestKey
from pipeline.mood.sentiment import SentimentService

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "eval" / "results"
GRACE_S = 5.0


@dataclass
class Episode:
    first: Turn
    last: Turn
    detected_at: float | None = None  # audio clock
    wall_delay: float | None = None
    alerted_at: float | None = None  # the first critical alert in its window, audio clock
    coached_at: float | None = None  # the first alert of coaching or higher in its window

    def contains(self, t: float) -> bool:
        return self.first.start <= t <= self.last.end + GRACE_S


@dataclass
class CallResult:
    name: str
    description: str
    episodes: list[Episode]
    onsets: list[tuple[float, bool]] = field(default_factory=list)  # (audio time, inside)
    scores: list[tuple[float, float]] = field(default_factory=list)  # (audio time, score)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # at, severity, rule, inside
    expect: str = "critical"  # "coaching": frustrated in tone only (`# alert: coaching`)
    turns: list[tuple[bool, bool | None, bool]] = field(default_factory=list)  # turn_negativity

    def critical(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["severity"] == "critical"]

    def early(self) -> list[dict[str, Any]]:
        """Critical alerts before the call's first frustrated turn starts (all, in a calm call)."""
        first = self.episodes[0].first.start if self.episodes else float("inf")
        return [a for a in self.critical() if a["at"] < first]


NEGATIVE = -0.3  # a turn's sentiment score below this reads as negative


def turn_negativity(
    turns: list[Turn], events: list[dict[str, Any]], expect: str, text_only: list[bool]
) -> list[tuple[bool, bool | None, bool]]:
    """Per customer turn of the script: (labelled frustrated, judged negative end to end by the
    `turn_sentiment` covering most of it or None if none did, judged negative on the script's
    text alone). Tone-only calls are left out: their frustrated turns say nothing negative."""
    if expect == "coaching":
        return []
    judged = [e for e in events if e["type"] == "turn_sentiment" and e["channel"] == "customer"]
    out = []
    customer = [t for t in turns if t.speaker == "customer"]
    for turn, plain in zip(customer, text_only, strict=True):
        overlap = [(min(turn.end, e["end"]) - max(turn.start, e["start"]), e) for e in judged]
        best = max(overlap, key=lambda o: o[0], default=(0.0, None))
        score = best[1]["score"] if best[1] is not None and best[0] > 0 else None
        out.append((bool(turn.frustrated), None if score is None else score < NEGATIVE, plain))
    return out


async def text_alone(sentiment: SentimentService, turns: list[Turn]) -> list[bool]:
    """Whether each customer turn of the script reads negative on its own text."""
    texts = [t.text for t in turns if t.speaker == "customer"]
    judged = await asyncio.gather(*(sentiment.submit(t) for t in texts))
    return [s.score < NEGATIVE for s in judged]


def expected(script: Path) -> str:
    """The most severe alert the call's episodes should raise: critical unless the script says
    `# alert: coaching` (frustration in tone only, which alone raises a coaching alert)."""
    lines = script.read_text().splitlines()
    return "coaching" if any(x.startswith("# alert: coaching") for x in lines) else "critical"


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


COOLDOWN_S = 120.0  # the longest cooldown of the default critical rules


async def run(
    paths: list[Path], speed: float, work: Path, on: float, off: float, engines: list[str]
) -> list[CallResult]:
    key = IngestKey("eval", secrets.token_urlsafe(32)).text()
    settings = Settings(port=0, panel_port=0, log_level="WARNING", frustration_on=on,
                        frustration_off=off, ingest_keys=key)  # fmt: skip
    results = []
    async with Service(settings) as service:
        for path, engine in [(p, e) for e in engines for p in paths]:
            name = f"{path.stem}.{engine}"
            wav = work / f"{name}.wav"
            turns = render(path, wav, engine=engine)
            description = path.read_text().splitlines()[0].lstrip("# ")
            result = CallResult(name, description, episodes_of(turns), expect=expected(path))
            assert service.mood is not None and service.mood.sentiment is not None
            text_only = await text_alone(service.mood.sentiment, turns)
            replayed = await replay(
                wav, service.url, speed, call_id=f"eval-{name.replace('.', '-')}",
                key=service.ingest_key,
            )  # fmt: skip
            kept = ("transcript", "sentiment", "turn_sentiment", "emotion", "frustration",
                    "alert", "talkover", "dead_air")  # fmt: skip
            events = [g.event for g in replayed.received if g.event.get("type") in kept]
            result.turns = turn_negativity(turns, events, result.expect, text_only)
            (work / f"{name}.events.json").write_text(
                json.dumps([e for e in events if e["type"] != "transcript" or e["final"]])
            )
            judge(result, [(g.event, g.at) for g in replayed.received], replayed.sent_at)
            results.append(result)
            print_call(result)
    return results


def judge(
    result: CallResult,
    received: list[tuple[dict[str, Any], float | None]],
    sent_at: Callable[[float], float] | None,
) -> None:
    """Fill `result`'s alerts, onsets, scores and episode hits from a call's events, in order,
    each with the wall-clock time it arrived (None: not timed)."""
    active = False
    for e, wall in received:
        if e.get("type") == "alert":
            t = float(e["end"])
            inside = any(ep.contains(t) for ep in result.episodes)
            alert = {"at": t, "severity": e["severity"], "rule": e["rule"],
                     "inside": inside}  # fmt: skip
            result.alerts.append(alert)
            for ep in result.episodes:
                if ep.coached_at is None and ep.contains(t) and e["severity"] != "info":
                    ep.coached_at = t
                if ep.alerted_at is None and e["severity"] == "critical":
                    if ep.contains(t):
                        ep.alerted_at = t
                    elif active and 0 <= ep.first.start - t <= COOLDOWN_S:
                        ep.alerted_at = ep.first.start  # still frustrated, cooling
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
                if wall is not None and sent_at is not None:
                    ep.wall_delay = max(0.0, wall - sent_at(ep.first.end))
        active = bool(e["active"])
    for ep in result.episodes:  # an alert cooling down counts only if it stayed active
        if ep.alerted_at == ep.first.start and ep.detected_at is None:
            ep.alerted_at = None


def print_call(result: CallResult) -> None:
    caught = "coached_at" if result.expect == "coaching" else "alerted_at"
    mark = " ".join(
        (f"hit {getattr(ep, caught) - ep.first.start:.1f} s" if getattr(ep, caught) else "MISS")
        + (" (coaching)" if result.expect == "coaching" else "")
        for ep in result.episodes
    )
    crit = result.critical()
    print(
        f"  {result.name:38} episodes {len(result.episodes)}  critical alerts {len(crit)} "
        f"({sum(a['inside'] for a in crit)} inside, {len(result.early())} early)  {mark}",
        flush=True,
    )


def turn_figures(turns: list[tuple[bool, bool | None, bool]]) -> dict[str, Any]:
    """Agreement of customer turns' negativity with their labels (frustrated: negative)."""
    heard = [(want, got) for want, got, _ in turns if got is not None]
    return {
        "turns": len(turns),
        "turns_judged": len(heard),
        "turn_agreement_e2e": sum(w == g for w, g in heard) / len(heard) if heard else None,
        "turn_agreement_text": (
            sum(w == plain for w, _, plain in turns) / len(turns) if turns else None
        ),
    }


def summarise(results: list[CallResult]) -> dict[str, Any]:
    onsets = [inside for r in results for _, inside in r.onsets]
    episodes = [ep for r in results for ep in r.episodes]
    hits = [ep for ep in episodes if ep.detected_at is not None]
    delays = [ep.detected_at - ep.first.end for ep in hits if ep.detected_at is not None]
    walls = [ep.wall_delay for ep in hits if ep.wall_delay is not None]
    calm = [r for r in results if not r.episodes]
    critical = [a for r in results for a in r.critical()]
    wanted = [ep for r in results if r.expect == "critical" for ep in r.episodes]
    alerted = [ep for ep in wanted if ep.alerted_at is not None]
    toned = [ep for r in results if r.expect == "coaching" for ep in r.episodes]
    alert_delays = [ep.alerted_at - ep.first.start for ep in alerted if ep.alerted_at is not None]
    return {
        "critical_alerts": len(critical),
        "critical_precision": (
            sum(a["inside"] for a in critical) / len(critical) if critical else float("nan")
        ),
        "critical_recall": len(alerted) / len(wanted) if wanted else float("nan"),
        "critical_episodes": len(wanted),
        "tone_only_episodes": len(toned),
        "tone_only_coached": sum(ep.coached_at is not None for ep in toned),
        "critical_delay_median_s": statistics.median(alert_delays) if alert_delays else None,
        "critical_delay_max_s": max(alert_delays) if alert_delays else None,
        "critical_early": sum(len(r.early()) for r in results),
        "calm_calls_with_critical": sum(bool(r.critical()) for r in calm),
        "coaching_alerts": sum(a["severity"] == "coaching" for r in results for a in r.alerts),
        **turn_figures([t for r in results for t in r.turns]),
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
                        "alerted_at": ep.alerted_at,
                        "coached_at": ep.coached_at,
                    }
                    for ep in r.episodes
                ],
                "onsets": [{"at": t, "inside_episode": inside} for t, inside in r.onsets],
                "alerts": r.alerts,
                "scores": r.scores,
            }
            for r in results
        ],
    }


def print_summary(s: dict[str, Any]) -> None:
    print(
        f"critical alerts: precision {s['critical_precision']:.2f} ({s['critical_alerts']})   "
        f"recall {s['critical_recall']:.2f} ({s['critical_episodes']} episodes)   early "
        f"{s['critical_early']}   calm calls with one: {s['calm_calls_with_critical']} of "
        f"{s['calm_calls']}"
    )
    print(
        f"  tone-only episodes (coaching expected): {s['tone_only_coached']} of "
        f"{s['tone_only_episodes']} coached"
    )
    if s["critical_delay_median_s"] is not None:
        print(
            f"  delay from the start of an episode's first turn: median "
            f"{s['critical_delay_median_s']:.1f} s, worst {s['critical_delay_max_s']:.1f} s"
        )
    print(
        f"precision {s['precision']:.2f} ({s['onsets']} onsets)   recall {s['recall']:.2f} "
        f"({s['episodes']} episodes)   calm calls raising frustration: "
        f"{s['calm_calls_with_onsets']} of {s['calm_calls']}"
    )
    if s["delay_audio_median_s"] is not None:
        wall = (
            f"; wall clock median {s['delay_wall_median_s']:.1f} s "
            f"(max {s['delay_wall_max_s']:.1f} s)"
            if s["delay_wall_median_s"] is not None
            else ""
        )
        print(
            f"delay from the end of an episode's first turn: audio clock median "
            f"{s['delay_audio_median_s']:.1f} s (max {s['delay_audio_max_s']:.1f} s){wall}"
        )
    if s["turn_agreement_e2e"] is not None:
        print(
            f"customer turns negative when labelled frustrated, else not: end to end "
            f"{100 * s['turn_agreement_e2e']:.1f} % ({s['turns_judged']} of {s['turns']} turns "
            f"judged), script text alone {100 * s['turn_agreement_text']:.1f} %"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speed", type=float, default=2.0, help="replay speed (1 = real time)")
    parser.add_argument("--calls", default=str(ROOT / "eval" / "calls" / "*.tsv"))
    parser.add_argument("--on", type=float, default=0.6, help="frustration_on setting")
    parser.add_argument("--off", type=float, default=0.4, help="frustration_off setting")
    parser.add_argument("--out", default="frustration.json", help="report name in eval/results")
    parser.add_argument("--engine", choices=[*ENGINES, *NEURAL, "both", "all"], default="both",
                        help="speech synthesizer the calls are rendered with")  # fmt: skip
    args = parser.parse_args()
    engines = {"both": list(ENGINES), "all": [*ENGINES, *NEURAL]}.get(args.engine, [args.engine])
    paths = sorted(Path(p) for p in glob.glob(args.calls))
    work = RESULTS / "calls"
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"Frustration on {len(paths)} scripted calls x {len(engines)} synthesizers (SYNTHETIC "
        f"speech), replayed at {args.speed}x"
    )
    t0 = time.monotonic()
    results = asyncio.run(run(paths, args.speed, work, args.on, args.off, engines))
    s = summarise(results)
    print_summary(s)
    print(f"({time.monotonic() - t0:.0f} s)")
    out = RESULTS / args.out
    out.write_text(json.dumps(s, indent=2, default=str))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
