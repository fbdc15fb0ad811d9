"""The assist stage with the real encoder, rules and knowledge base, and the Redis layout of its
events on a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from pipeline.assist.call_assist import AssistConfig, AssistServices, CallAssist
from pipeline.bus.redis_bus import BusConfig, RedisBus
from pipeline.types import (
    AlertEvent,
    CallEnded,
    CallStarted,
    Channel,
    EmotionEvent,
    Event,
    FeelingEvent,
    SentimentEvent,
    SuggestionEvent,
    TranscriptEvent,
    TurnSentimentEvent,
)


@pytest.fixture(scope="module")
def services() -> Iterator[AssistServices]:
    s = AssistServices.load(AssistConfig())  # shipped rules and knowledge, real MiniLM
    yield s
    s.close()


def said(channel: Channel, utterance: int, start: float, text: str, seq: int) -> TranscriptEvent:
    return TranscriptEvent("c1", channel, utterance, start, start + 2, text, True, seq=seq)


async def run(services: AssistServices, events: list[Event]) -> list[Event]:
    out: list[Event] = []

    async def emit(event: Event) -> None:
        out.append(event)

    async with asyncio.TaskGroup() as tasks:
        assist = CallAssist("c1", services, emit, tasks)
        for event in events:
            assist.observe(event)
        for event in list(out):
            assist.observe(event)  # its own output is ignored
        await assist.close()
    return out


async def test_alerts_and_suggestions_from_what_was_said(services):
    out = await run(
        services,
        [
            said(Channel.CUSTOMER, 1, 0, "My internet keeps dropping every evening.", 1),
            said(Channel.CUSTOMER, 2, 3, "My attorney will hear about this.", 2),
            said(Channel.AGENT, 1, 6, "Well, calm down, that's not my problem.", 3),
            said(Channel.AGENT, 2, 9, "My internet keeps dropping every evening.", 4),
        ],
    )
    suggestions = [e for e in out if isinstance(e, SuggestionEvent)]
    assert suggestions[0].utterance == 1 and suggestions[0].items[0].id == "internet-drops"
    assert all(e.channel is Channel.CUSTOMER for e in suggestions)  # never for the agent's words
    alerts = {e.rule: e for e in out if isinstance(e, AlertEvent)}
    assert set(alerts) == {"legal-threat", "agent-blames-customer"}
    legal = alerts["legal-threat"].to_dict()
    assert legal["severity"] == "critical" and legal["channel"] == "customer"
    assert legal["evidence"][0]["utterance"] == 2 and legal["evidence"][0]["score"] >= 0.62
    assert alerts["agent-blames-customer"].channel is Channel.AGENT


def turn(utterances: tuple[int, ...], probs: tuple[float, float, float], seq: int):
    return TurnSentimentEvent(call_id="c1", channel=Channel.CUSTOMER, start=0.0, end=5.0,
                              utterances=utterances, label="", probs=probs,
                              score=probs[2] - probs[0], seq=seq)  # fmt: skip


def voice(utterance: int, arousal: float, seq: int) -> EmotionEvent:
    return EmotionEvent(call_id="c1", channel=Channel.CUSTOMER, start=0.0, end=2.0, seq=seq,
                        utterance=utterance, label="calm", arousal=arousal, confidence=1.0,
                        baseline=False, pitch_hz=None, pitch_range_st=None, loudness_db=None,
                        rate_wps=None, relative={})  # fmt: skip


async def test_a_customer_turn_gets_its_feeling_and_the_feeling_rules_run(services):
    worried = (0.9, 0.08, 0.02)
    out = await run(
        services,
        [
            said(Channel.CUSTOMER, 1, 0, "I'm really worried,", 1),
            voice(1, 0.1, 2),
            said(Channel.CUSTOMER, 2, 2, "what if my rent payment bounces tomorrow?", 3),
            said(Channel.AGENT, 1, 5, "I'm really worried too.", 4),  # not the customer
            turn((1, 2), worried, 5),
            said(Channel.CUSTOMER, 3, 8, "Oh thank goodness, what a relief, thank you.", 6),
            turn((3,), (0.01, 0.04, 0.95), 7),
            turn((9,), worried, 8),  # no text kept for it: no feeling
        ],
    )
    feelings = [e for e in out if isinstance(e, FeelingEvent)]
    assert [(f.label, f.utterances) for f in feelings] == [("anxious", (1, 2)), ("relieved", (3,))]
    assert all(f.channel is Channel.CUSTOMER for f in feelings)
    assert feelings[0].confidence == max(feelings[0].scores.values()) >= 0.5
    assert sum(feelings[0].scores.values()) == pytest.approx(1, abs=0.01)
    (alert,) = [e for e in out if isinstance(e, AlertEvent) and e.rule == "anxious-customer"]
    assert alert.severity == "coaching" and alert.evidence[0].detail.startswith("feels anxious")


async def test_no_encoder_work_without_semantic_rules_or_knowledge(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: mgr, type: escalation, severity: critical, prompt: Help.}\n")
    bare = AssistServices.load(AssistConfig(rules_file=rules, knowledge_file=None, feelings=False))
    assert bare.encoder is None
    out = await run(
        bare, [said(Channel.CUSTOMER, 1, 0, "I want to speak to your manager right now.", 1)]
    )
    assert [e.type for e in out] == ["alert"]


async def test_alert_layout_on_redis(service):
    bus = RedisBus(service.bus.redis, BusConfig(prefix="t-assist"))
    k, redis = bus.keys, bus.redis
    pubsub = redis.pubsub()
    await pubsub.subscribe(k.alerts, k.agent("ann"))
    await bus.call_started(
        CallStarted(call_id="c9", agent_id="ann", sample_rate=8000, encoding="pcm16",
                    protocol="native")
    )  # fmt: skip
    alert = AlertEvent(call_id="c9", channel=Channel.CUSTOMER, start=1, end=2, rule="r",
                       severity="critical", prompt="Do it.", evidence=(), seq=5)  # fmt: skip
    await bus.publish(alert, "ann")
    sentiment = SentimentEvent(call_id="c9", channel=Channel.CUSTOMER, start=1, end=2.5, seq=6,
                               utterance=1, label="negative", probs=(0.7, 0.2, 0.1), score=-0.4,
                               rolling=-0.4, trend=0.0)  # fmt: skip
    await bus.publish(sentiment, "ann")
    got = []
    try:
        async with asyncio.timeout(10):
            while len(got) < 4:  # started, alert (agent), alert (alerts), sentiment (agent)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    got.append((message["channel"], json.loads(message["data"])["type"]))
    finally:
        await pubsub.aclose()
    assert sorted(got) == sorted([(k.agent("ann"), "call_started"), (k.agent("ann"), "alert"),
                                  (k.alerts, "alert"), (k.agent("ann"), "sentiment")])  # fmt: skip
    assert await redis.get(k.agent_call("ann")) == "c9"
    feed = json.loads((await redis.lrange(k.alerts_feed, 0, 0))[0])
    assert feed["agent_id"] == "ann" and feed["rule"] == "r" and feed["at"] > 0
    stored = await redis.hgetall(k.call("c9"))
    assert stored["alerts"] == "1" and "critical_at" in stored and json.loads(stored["alert"])
    assert await redis.lrange(k.trend("c9"), 0, -1) == ["[2.5, -0.4]"]
    assert await redis.zcard(k.alerts_recent) == 1
    await bus.call_ended(
        CallEnded(call_id="c9", agent_id="ann", duration=3.0, finals=0, ended="stop")
    )
    record = json.loads(await redis.get(k.record("c9")))
    assert record["alerts"][0]["rule"] == "r" and record["agent_id"] == "ann"
    assert record["duration"] == 3.0 and record["transcript"] == [] and record["summary"] == []
    assert 0 < await redis.ttl(k.record("c9")) <= BusConfig().record_ttl_s
