"""Re-judge saved eval calls with the current mood and rule logic, without speech recognition.

    python -m eval.rescore [--calls 'eval/calls/*.tsv'] [--engine espeak|flite|both]

A tuning aid, not a figure to report: `eval.frustration` runs each call through the whole
service (minutes per call) and saves the events it received in
`eval/results/calls/NAME.events.json`. This feeds those finals (what whisper heard, with their
word timings and probabilities) and the talk-over and dead-air signals, in time order, to a real
`CallMood` (the sentiment model, prosody measured on the final's span of the re-rendered audio)
and a real `RuleEngine` (the default rules less the semantic ones), and judges the result as
`eval.frustration` does. So a change to the fusion, the evidence rules, the prosody baseline or
the alert rules is seen on every saved call in about a minute. What it cannot see: recognition,
VAD timing, and signals (they are replayed as they were). Report figures from `eval.frustration`.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from eval.frustration import (
    RESULTS,
    ROOT,
    CallResult,
    episodes_of,
    expected,
    judge,
    print_call,
    print_summary,
    summarise,
    text_alone,
    turn_negativity,
)
from eval.render import ENGINES, NEURAL, Turn, render
from pipeline.assist.rules import Match, RuleEngine, RuleType, load_rules
from pipeline.mood.call_mood import CallMood, MoodConfig, MoodServices
from pipeline.mood.conversation import Signal, SignalKind
from pipeline.mood.frustration import FrustrationConfig
from pipeline.mood.sentiment import SentimentConfig
from pipeline.speech.audio import decode_interleaved
from pipeline.types import PIPELINE_RATE, Channel, Encoding, Event, TranscriptEvent, event_from_json

ARRIVES_S = 1.3  # a final reaches the mood stage about this long after its speech ends


def load_channels(wav: Path) -> dict[Channel, np.ndarray]:
    """The rendered stereo mu-law WAV's two channels at 16 kHz, float32 in [-1, 1]."""
    data = wav.read_bytes()
    at = data.index(b"data") + 8
    pcm = decode_interleaved(data[at:], Encoding.MULAW, 2)
    out = {}
    for ch, channel in enumerate((Channel.CUSTOMER, Channel.AGENT)):
        mono = resample_poly(pcm[:, ch].astype(np.float32) / 32768.0, PIPELINE_RATE, 8000)
        out[channel] = mono.astype(np.float32)
    return out


async def rescore_call(
    name: str, script: Path, services: MoodServices, saved: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "call.wav"
        render(script, wav, engine=name.rsplit(".", 1)[1])
        audio = load_channels(wav)
    semantic = (RuleType.PHRASE, Match.SEMANTIC)
    rules = [r for r in load_rules() if (r.type, r.match) != semantic]
    call_id = saved[0]["call_id"]
    engine = RuleEngine(call_id, rules)
    out: list[dict[str, Any]] = []

    async def emit(event: Event) -> None:
        out.append(event.to_dict())
        for alert in engine.feed(event):
            out.append(alert.to_dict())

    timeline: list[tuple[float, Any]] = []
    for e in saved:
        if e["type"] == "transcript" and e["final"] and e["text"].strip():
            timeline.append((e["end"] + ARRIVES_S, event_from_json(json.dumps(e))))
        elif e["type"] in ("talkover", "dead_air") and e.get("final"):
            channel = Channel.CUSTOMER if e["channel"] == "customer" else Channel.AGENT
            signal = Signal(SignalKind(e["type"]), channel, round(e["start"] * PIPELINE_RATE),
                            round(e["end"] * PIPELINE_RATE), True)  # fmt: skip
            timeline.append((e["end"], signal))
    timeline.sort(key=lambda x: x[0])
    async with asyncio.TaskGroup() as tasks:
        mood = CallMood(call_id, services, emit, tasks)
        for _, item in timeline:
            if isinstance(item, TranscriptEvent):
                await emit(item)
                a, b = (round(t * PIPELINE_RATE) for t in (item.start, item.end))
                await mood._analyse(item, audio[item.channel][a:b])
            else:
                await mood._signal(item)
        await mood.close(len(audio[Channel.CUSTOMER]))
    return out


async def run(
    paths: list[Path], engines: list[str], on: float, off: float, trace: list[str]
) -> list[CallResult]:
    config = MoodConfig(frustration=FrustrationConfig(on=on, off=off))
    services = MoodServices.load(config, SentimentConfig())
    assert services.sentiment is not None
    results = []
    try:
        for path, engine in [(p, e) for e in engines for p in paths]:
            name = f"{path.stem}.{engine}"
            saved_path = RESULTS / "calls" / f"{name}.events.json"
            if not saved_path.exists():
                print(f"  {name}: no saved events (run eval.frustration first)")
                continue
            saved = json.loads(saved_path.read_text())
            with tempfile.TemporaryDirectory() as tmp:
                turns = render(path, Path(tmp) / "t.wav", engine=engine)
            description = path.read_text().splitlines()[0].lstrip("# ")
            result = CallResult(name, description, episodes_of(turns), expect=expected(path))
            text_only = await text_alone(services.sentiment, turns)
            events = await rescore_call(name, path, services, saved)
            result.turns = turn_negativity(turns, events, result.expect, text_only)
            judge(result, [(e, None) for e in events], None)
            if trace and any(t in name for t in trace):
                print_trace(turns, events)
            results.append(result)
            print_call(result)
    finally:
        services.close()
    return results


def print_trace(turns: list[Turn], events: list[dict[str, Any]]) -> None:
    """The script's customer turns, and each customer final's mood and the alerts, in order."""
    for t in turns:
        if t.speaker == "customer":
            mark = "FRUSTRATED" if t.frustrated else ""
            print(f"    script {t.start:6.1f}-{t.end:6.1f} {t.tone:8} {mark:10} {t.text[:70]}")
    for e in events:
        kind, ch = e["type"], e["channel"]
        if kind == "transcript" and ch == "customer":
            print(f"    {e['start']:6.1f}-{e['end']:6.1f} heard: {e['text'][:80]}")
        elif kind == "emotion" and ch == "customer":
            print(f"      emotion {e['label']} {e['arousal']} q={e['baseline_quality']} "
                  f"rel={e['relative']}")  # fmt: skip
        elif kind in ("sentiment", "turn_sentiment") and ch == "customer":
            print(f"      {kind} {e['score']}")
        elif kind == "frustration":
            print(
                f"      frustration {e['score']} {e['components']} {e['allows']} ({e['evidence']})"
            )
        elif kind in ("alert", "talkover", "dead_air"):
            print(f"      {kind} {e.get('severity', '')} {e.get('rule', ch)} at {e['end']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default=str(ROOT / "eval" / "calls" / "*.tsv"))
    parser.add_argument("--engine", choices=[*ENGINES, *NEURAL, "both", "all"], default="both")
    parser.add_argument("--on", type=float, default=0.6, help="frustration_on setting")
    parser.add_argument("--off", type=float, default=0.4, help="frustration_off setting")
    parser.add_argument("--trace", nargs="*", default=[], help="print these calls' moods")
    parser.add_argument("--out", help="also write the report to this file in eval/results")
    args = parser.parse_args()
    engines = {"both": list(ENGINES), "all": [*ENGINES, *NEURAL]}.get(args.engine, [args.engine])
    paths = sorted(Path(p) for p in glob.glob(args.calls))
    print(f"Re-judged from saved finals ({len(paths)} calls x {len(engines)}): a tuning aid only")
    s = summarise(asyncio.run(run(paths, engines, args.on, args.off, args.trace)))
    print_summary(s)
    if args.out:
        (RESULTS / args.out).write_text(json.dumps(s, indent=2, default=str))


if __name__ == "__main__":
    main()
