"""Alerts a supervisor can trust, end to end (issue 16): two scripted calls (espeak-ng voices,
rendered from the `.tsv` beside each `.wav` with `eval/render.py`) streamed through the real
service, whisper, sentiment and prosody included.

- A calm caller who opens by reading digits (flat, slow, quiet): the digits do not become the
  voice baseline, so their ordinary speech after raises no coaching-or-higher alert from voice
  (nor any critical alert), and their voice is judged calm.
- A caller agitated from the first word and talking over the agent: alerted (critical, on the
  evidence rules) within 15 s of the start of their first turn, although their own baseline is
  the agitated voice.

Synthetic speech: this proves the baseline and evidence logic on the live path, not accuracy on
real callers (that is `eval/`'s job, with its figures in the README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_assist.replay import replay

DATA = Path(__file__).parent / "data"
RANK = {"info": 0, "coaching": 1, "critical": 2}


async def stream(service: Any, name: str) -> list[dict[str, Any]]:
    result = await replay(
        DATA / f"{name}.wav", service.url, 2.0, call_id=f"evidence-{name.replace('_', '-')}",
        key=service.ingest_key,
    )  # fmt: skip
    assert result.close_code in (None, 1000), result.close_reason
    return result.events


def customer(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind and e["channel"] == "customer"]


async def test_digit_reading_at_the_start_raises_no_alert_from_voice(service):
    events = await stream(service, "digits_calm_call")
    emotions = customer(events, "emotion")
    assert len(emotions) >= 4
    assert [e["baseline"] for e in emotions[:2]] == [True, True]  # the digits: baseline period
    after = emotions[2:]  # ordinary speech after the digits
    assert all(e["label"] == "calm" for e in after), [(e["arousal"], e["relative"]) for e in after]
    assert all(0 <= e["baseline_quality"] <= 1 for e in emotions)
    alerts = [e for e in events if e["type"] == "alert"]
    assert not [a for a in alerts if a["severity"] == "critical"], alerts
    voice = [a for a in alerts if a["rule"] == "frustrated-customer"]
    assert not [a for a in voice if RANK[a["severity"]] >= RANK["coaching"]], voice
    frustration = customer(events, "frustration")
    assert frustration and max(f["score"] for f in frustration) < 0.6


async def test_a_caller_agitated_from_the_first_word_is_alerted_within_15_s(service):
    events = await stream(service, "agitated_start_call")
    finals = [e for e in customer(events, "transcript") if e["final"] and e["text"].strip()]
    first = finals[0]["start"]
    alerts = [e for e in events if e["type"] == "alert"]
    timely = [a for a in alerts if RANK[a["severity"]] >= RANK["coaching"]]
    assert timely, alerts
    assert timely[0]["end"] - first <= 15.0, (first, timely[0])
    critical = [a for a in alerts if a["severity"] == "critical"]
    assert critical and critical[0]["end"] - first <= 15.0, (first, critical)
    assert [t for t in customer(events, "talkover") if t["final"]]  # over the agent, 1.2 s
    frustration = customer(events, "frustration")
    backed = [f for f in frustration if f["allows"] == "critical"]
    assert backed and backed[0]["end"] - first <= 15.0 and "words" in backed[0]["evidence"]
