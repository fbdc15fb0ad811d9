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
    Event,
    SentimentEvent,
    SuggestionEvent,
    TranscriptEvent,
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


async def test_no_encoder_work_without_semantic_rules_or_knowledge(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: mgr, type: escalation, severity: critical, prompt: Help.}\n")
    bare = AssistServices.load(AssistConfig(rules_file=rules, knowledge_file=None))
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
