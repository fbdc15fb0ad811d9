"""The supervisor wall board's state: one tile per live call, sorted by who needs help first.

`tile` turns a call's stored state (its Redis hash, whose newest events it parses back into their
classes, and its mood trend) into a tile; `board` sorts the tiles and adds the aggregates. Tiles
and the board are the wall board's JSON form, what the page reads: a wire boundary, so plain
dicts. The panel server reads the state from Redis (so every gateway's calls appear, whichever
process runs them) and publishes the result.

Need for help, highest first:
    max(frustration score, -rolling customer sentiment)
    + 1.0 if a critical alert fired in the last `RECENT_S` seconds (the tile `needs_help`)
    + 0.25 if a coaching alert did
A call's customer mood is negative when their rolling sentiment is below -0.25 or their
frustration is active.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pipeline.types import (
    AlertEvent,
    Event,
    FeelingEvent,
    FrustrationEvent,
    SchemaError,
    SentimentEvent,
    TalkStatsEvent,
    event_from_json,
)

E = TypeVar("E", bound=Event)

NEGATIVE_MOOD = -0.25
RECENT_S = 120.0


def _event(fields: Mapping[str, str], name: str, kind: type[E]) -> E | None:
    """The newest event of one kind that the call's hash keeps (`RedisBus.publish`)."""
    raw = fields.get(name)
    if not raw:
        return None
    event = event_from_json(raw)
    if not isinstance(event, kind):
        raise SchemaError(f"{name} holds a {event.type} event")
    return event


def mood_label(rolling: float | None) -> str:
    if rolling is None:
        return "unknown"
    return "negative" if rolling < NEGATIVE_MOOD else "positive" if rolling > 0.25 else "neutral"


def tile(fields: Mapping[str, str], trend: Sequence[str], now: float) -> dict[str, Any]:
    """A call's tile from its hash fields and its stored trend points (JSON `[t, rolling]`)."""
    sentiment = _event(fields, "sentiment:customer", SentimentEvent)
    frustration = _event(fields, "frustration", FrustrationEvent)
    talk = _event(fields, "talk_stats", TalkStatsEvent)
    alert = _event(fields, "alert", AlertEvent)
    feeling = _event(fields, "feeling:customer", FeelingEvent)
    started = float(fields.get("started_at", now))
    rolling = sentiment.rolling if sentiment else None
    f_score = frustration.score if frustration else 0.0
    f_active = bool(frustration and frustration.active)
    last_alert = None
    if alert is not None:
        last_alert = {
            "rule": alert.rule,
            "severity": alert.severity,
            "prompt": alert.prompt,
            "at": float(fields.get("alert_at", now)),
        }

    def recent(severity: str) -> bool:
        at = fields.get(f"{severity}_at")
        return at is not None and now - float(at) <= RECENT_S

    need = max(f_score, -(rolling or 0.0), 0.0)
    need += 1.0 if recent("critical") else 0.25 if recent("coaching") else 0.0
    share = {}
    if talk is not None:
        share = {party: round(float(s["share"]), 3) for party, s in talk.parties.items()}
    return {
        "call_id": fields.get("call_id", ""),
        "agent_id": fields.get("agent_id", ""),
        "status": fields.get("status", "active"),
        "started_at": started,
        "duration_s": round(max(0.0, now - started), 1),
        "mood": None if rolling is None else round(rolling, 3),
        "mood_label": mood_label(rolling),
        "trend": [json.loads(p) for p in trend],
        "frustration": {
            "score": round(f_score, 3),
            "level": frustration.level if frustration else "low",
            "active": f_active,
        },
        "feeling": (
            None
            if feeling is None
            else {"label": feeling.label, "confidence": round(feeling.confidence, 2)}
        ),
        "talk_share": share,
        "last_alert": last_alert,
        "alerts": int(fields.get("alerts", 0)),
        "needs_help": recent("critical"),
        "negative": f_active or (rolling is not None and rolling < NEGATIVE_MOOD),
        "need": round(need, 3),
    }


def board(tiles: Sequence[dict[str, Any]], alerts_last_minute: int, now: float) -> dict[str, Any]:
    ordered = sorted(tiles, key=lambda t: (-t["need"], -t["duration_s"], t["call_id"]))
    return {
        "type": "wallboard",
        "at": now,
        "aggregates": {
            "active_calls": len(ordered),
            "negative_calls": sum(t["negative"] for t in ordered),
            "alerts_per_minute": alerts_last_minute,
        },
        "calls": ordered,
    }
