"""Events keep their type to the wire and back: one JSON form, parsed into the same classes."""

from __future__ import annotations

import json

import pytest

from pipeline.types import (
    SCHEMA_VERSION,
    AlertEvent,
    CallEnded,
    CallStarted,
    Channel,
    EmotionEvent,
    Evidence,
    FeelingEvent,
    FrustrationEvent,
    FrustrationReason,
    SchemaError,
    SentimentEvent,
    SignalEvent,
    Suggestion,
    SuggestionEvent,
    TalkStatsEvent,
    TranscriptEvent,
    TurnSentimentEvent,
    Word,
    event_from_json,
    from_json,
    parse_event,
    to_json,
)

AT = {"call_id": "c1", "channel": Channel.CUSTOMER, "start": 1.25, "end": 3.5, "seq": 7}

MESSAGES = [
    TranscriptEvent("c1", Channel.AGENT, 2, 1.25, 3.5, "hello there", True,
                    words=(Word("hello", 1.25, 1.5, 0.875), Word("there", 1.5, 3.5, 0.5)),
                    seq=3, latency=0.25),
    TranscriptEvent("c1", Channel.CUSTOMER, 1, 0.5, 1.0, "I want", False, committed="I",
                    unstable="want", seq=2),
    SentimentEvent(**AT, utterance=1, label="negative", probs=(0.75, 0.125, 0.125), score=-0.625,
                   rolling=-0.5, trend=-0.25),
    TurnSentimentEvent(**AT, utterances=(1, 2), label="negative", probs=(0.75, 0.125, 0.125),
                       score=-0.625),
    EmotionEvent(**AT, utterance=1, label="tense", arousal=0.5, confidence=0.75, baseline=False,
                 pitch_hz=180.5, pitch_range_st=None, loudness_db=-20.0, rate_wps=3.5,
                 relative={"pitch_hz": 0.25, "loudness_db": None}, baseline_quality=0.5),
    SignalEvent(**AT, kind="talkover", final=True),
    SignalEvent(**AT, kind="dead_air", final=False),
    TalkStatsEvent(**AT, parties={"customer": {"share": 0.5, "talk_s": 10.0}}, overlap_s=1.0,
                   dead_air_s=2.0),
    FrustrationEvent(**AT, score=0.75, level="high", active=True, onset=True,
                     components={"sentiment": 0.5},
                     reasons=(FrustrationReason("cue", 0.5, "said", (1, 2), "cancel"),
                              FrustrationReason("sentiment", 0.25, "negative")),
                     trigger="turn", utterance=4, allows="coaching", evidence="voice alone"),
    FrustrationEvent(**AT, score=0.0, level="low", active=False, onset=False, components={},
                     reasons=(), trigger="signal"),
    AlertEvent(**AT, rule="cancel", severity="critical", prompt="Offer a fix.",
               evidence=(Evidence("cancellation", 1.25, 3.5, 3, "cancel it", 0.875),
                         Evidence("talk-over 2.0 s", 0.5, 2.5))),
    FeelingEvent(**AT, utterances=(2, 3), label="anxious", confidence=0.625,
                 scores={"anxious": 0.625, "neutral": 0.375}),
    SuggestionEvent(**AT, utterance=3,
                    items=(Suggestion("wifi", "Wi-Fi drops", "Restart it.", 0.625, "my wifi"),)),
    CallStarted(call_id="c1", agent_id="a1", sample_rate=8000, encoding="mulaw",
                protocol="twilio", meta={"call_sid": "CA1", "tracks": 2}),
    CallEnded(call_id="c1", agent_id="a1", duration=71.5, finals=12, ended="stop"),
]  # fmt: skip


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_every_message_comes_back_from_the_wire_as_it_went(message):
    wire = to_json(message)
    assert json.loads(wire)["v"] == SCHEMA_VERSION and json.loads(wire)["type"] == message.type
    back = from_json(wire)
    assert back == message and type(back) is type(message)
    assert to_json(back) == wire


def test_the_wire_form_is_the_documented_one():
    (final, _, sentiment, *_) = MESSAGES
    assert json.loads(to_json(final))["words"][0] == {"w": "hello", "start": 1.25, "end": 1.5,
                                                      "p": 0.875}  # fmt: skip
    assert json.loads(to_json(sentiment))["probs"] == {
        "negative": 0.75, "neutral": 0.125, "positive": 0.125
    }  # fmt: skip
    started = json.loads(to_json(MESSAGES[-2]))
    assert started["call_sid"] == "CA1" and "meta" not in started  # protocol fields lie flat


def test_values_are_rounded_once_on_the_wire():
    event = SentimentEvent(**(AT | {"end": 3.50049}), utterance=1, label="neutral",
                           probs=(0.1, 0.8, 0.1), score=0.00049, rolling=0.0,
                           trend=0.0)  # fmt: skip
    back = parse_event(event.to_dict())
    assert back.end == 3.5 and isinstance(back, SentimentEvent) and back.score == 0.0


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"v": 2, "type": "transcript"}', "schema version 2"),
        ('{"v": 1, "type": "shout"}', "unknown message type 'shout'"),
        ('{"v": 1, "type": "transcript", "call_id": "c1"}', "malformed transcript"),
        ('{"v": 1, "type": "alert", "call_id": "c", "seq": 1, "channel": "boss", "start": 0,'
         ' "end": 1, "rule": "r", "severity": "info", "prompt": "", "evidence": []}',
         "unknown channel 'boss'"),
    ],
)  # fmt: skip
def test_a_message_of_another_schema_is_a_clear_error(wire, why):
    with pytest.raises(SchemaError, match=why):
        from_json(wire)


def test_a_call_message_is_not_a_channel_event():
    with pytest.raises(SchemaError, match="call_ended is not a channel event"):
        event_from_json(to_json(MESSAGES[-1]))
