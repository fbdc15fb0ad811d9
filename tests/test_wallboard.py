"""Wall-board tiles and their order, and the post-call extractive summary: plain functions."""

from __future__ import annotations

from pipeline.assist.summary import call_summary
from pipeline.bus.wallboard import board, tile
from pipeline.types import (
    AlertEvent,
    Channel,
    Evidence,
    FeelingEvent,
    FrustrationEvent,
    SentimentEvent,
    TalkStatsEvent,
    TranscriptEvent,
    to_json,
)

NOW = 1_000_000.0
AT = {"call_id": "c", "channel": Channel.CUSTOMER, "start": 0.0, "end": 1.0}


def sentiment(rolling: float) -> SentimentEvent:
    return SentimentEvent(**AT, utterance=1, label="", probs=(0.0, 0.0, 0.0), score=rolling,
                          rolling=rolling, trend=0.0)  # fmt: skip


def frustration(score: float, level: str, active: bool) -> FrustrationEvent:
    return FrustrationEvent(**AT, score=score, level=level, active=active, onset=False,
                            components={}, reasons=(), trigger="turn")  # fmt: skip


def fields(**kw: object) -> dict[str, str]:
    """A call's hash as `RedisBus.publish` leaves it: events in their wire form."""
    out = {"call_id": "c", "agent_id": "a", "status": "active", "started_at": str(NOW - 90)}
    for name, value in kw.items():
        out[name.replace("__", ":")] = value if isinstance(value, str) else to_json(value)  # type: ignore[arg-type]
    return out


def test_a_quiet_call():
    t = tile(fields(), [], NOW)
    assert t["duration_s"] == 90 and t["mood"] is None and t["mood_label"] == "unknown"
    assert t["frustration"] == {"score": 0.0, "level": "low", "active": False}
    assert t["need"] == 0 and not t["negative"] and not t["needs_help"]
    assert t["last_alert"] is None and t["talk_share"] == {} and t["feeling"] is None


def test_tile_reads_mood_frustration_talk_and_alert():
    alert = {"rule": "frustrated-customer", "severity": "critical", "prompt": "Slow down."}
    t = tile(
        fields(
            sentiment__customer=sentiment(-0.5),
            frustration=frustration(0.8, "high", True),
            talk_stats=TalkStatsEvent(
                **AT,
                parties={"customer": {"share": 0.6}, "agent": {"share": 0.4}},
                overlap_s=0.0,
                dead_air_s=0.0,
            ),
            alert=AlertEvent(**AT, **alert, evidence=()),
            feeling__customer=FeelingEvent(
                **AT, utterances=(2,), label="angry", confidence=0.714, scores={"angry": 0.714}
            ),
            alert_at=str(NOW - 10),
            critical_at=str(NOW - 10),
            alerts="3",
        ),
        ["[1.0, 0.1]", "[5.0, -0.5]"],
        NOW,
    )
    assert t["mood"] == -0.5 and t["mood_label"] == "negative" and t["negative"]
    assert t["trend"] == [[1.0, 0.1], [5.0, -0.5]]
    assert t["talk_share"] == {"customer": 0.6, "agent": 0.4}
    assert t["feeling"] == {"label": "angry", "confidence": 0.71}
    assert t["last_alert"] == alert | {"at": NOW - 10} and t["alerts"] == 3
    assert t["needs_help"] and t["need"] == 1.8


def test_an_old_critical_alert_no_longer_needs_help():
    t = tile(fields(critical_at=str(NOW - 121)), [], NOW)
    assert not t["needs_help"] and t["need"] == 0


def test_board_sorts_by_need_and_counts():
    calm = tile(fields(call_id="calm", sentiment__customer=sentiment(0.6)), [], NOW)
    sour = tile(fields(call_id="sour", sentiment__customer=sentiment(-0.4)), [], NOW)
    hot = tile(
        fields(call_id="hot", frustration=frustration(0.3, "low", False),
               coaching_at=str(NOW - 5)),
        [], NOW,
    )  # fmt: skip
    burning = tile(fields(call_id="burning", critical_at=str(NOW - 1)), [], NOW)
    b = board([calm, hot, sour, burning], alerts_last_minute=4, now=NOW)
    assert [t["call_id"] for t in b["calls"]] == ["burning", "hot", "sour", "calm"]
    assert b["aggregates"] == {"active_calls": 4, "negative_calls": 1, "alerts_per_minute": 4}


def final(channel: str, utterance: int, text: str) -> TranscriptEvent:
    return TranscriptEvent("c", Channel[channel.upper()], utterance, float(utterance),
                           utterance + 0.5, text, True)  # fmt: skip


def test_summary_keeps_why_they_called_and_what_went_wrong():
    finals = [
        final("agent", 1, "Thank you for calling, how can I help you today?"),
        final("customer", 1, "Hi, my internet keeps dropping every evening."),
        final("agent", 2, "Sorry to hear that. Can I have your name?"),
        final("customer", 2, "Sure, it is Sam."),
        final("customer", 3, "If the internet is not fixed today I want to cancel my contract."),
        final("agent", 3, "I am booking a technician to fix the internet dropping tomorrow."),
        final("customer", 4, "Okay thanks, bye."),
    ]
    alerts = [AlertEvent(**AT, rule="r", severity="critical", prompt="",
                         evidence=(Evidence("cancellation", 0.0, 1.0, utterance=3),))]  # fmt: skip
    summary = call_summary(finals, alerts, size=3)
    assert [(x["channel"], x["utterance"]) for x in summary] == [
        ("customer", 1),
        ("customer", 3),
        ("agent", 3),
    ]
    assert call_summary([], []) == []
