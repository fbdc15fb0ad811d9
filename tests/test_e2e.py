"""The sample call through the real gateway, real whisper base and real Redis."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from agent_assist.replay import replay
from pipeline.bus import call_state, follow_call
from tests.conftest import script_lines, wer

SPEED = 1.0  # real time: interims are judged under the pacing they are built for
CALL_ID = "e2e-sample"


@pytest.fixture(scope="module")
async def streamed(service, sample_path, keys):
    """Stream the sample call once; meanwhile listen on Redis, and join late as a panel would."""
    redis = service.bus.redis
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events)
    published: list[dict[str, Any]] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                event = json.loads(message["data"])
                if event["call_id"] == CALL_ID:
                    published.append(event)

    listener = asyncio.create_task(listen())
    call = asyncio.create_task(replay(sample_path, service.url, speed=SPEED, call_id=CALL_ID))
    await asyncio.sleep(72 / SPEED / 2)  # half-way through the call: a panel joins late
    late = [e async for e in follow_call(redis, keys, CALL_ID)]
    result = await call
    meta, stored = await call_state(redis, keys, CALL_ID)
    ttls = [await redis.ttl(keys.call(CALL_ID)), await redis.ttl(keys.transcript(CALL_ID))]
    active = await redis.smembers(keys.active)
    listener.cancel()
    await pubsub.aclose()
    return result, published, late, meta, stored, ttls, active


def finals_of(events, channel=None):
    return [e for e in events if e["final"] and (channel is None or e["channel"] == channel)]


@pytest.mark.parametrize("channel", ["customer", "agent"])
def test_per_channel_wer_against_the_script(streamed, channel):
    result = streamed[0]
    reference = " ".join(text for who, text in script_lines() if who == channel)
    hypothesis = " ".join(e["text"] for e in finals_of(result.events, channel))
    assert wer(reference, hypothesis) <= 0.15, hypothesis


def test_call_ends_cleanly(streamed):
    result = streamed[0]
    assert result.close_code == 1000
    assert result.stopped["finals"] == len(finals_of(result.events)) == len(script_lines())


def test_every_event_has_the_envelope(streamed):
    for e in streamed[0].events:
        assert e["v"] == 1 and e["type"] == "transcript" and e["call_id"] == CALL_ID
        assert e["channel"] in ("customer", "agent")
        assert 0 <= e["start"] < e["end"] <= 73
        assert isinstance(e["text"], str) and isinstance(e["final"], bool)


def test_interims_precede_finals_and_commit_only_grows(streamed):
    events = streamed[0].events
    by_utt: dict[tuple[str, int], list[dict]] = {}
    for e in events:
        by_utt.setdefault((e["channel"], e["utterance"]), []).append(e)
    with_interims = 0
    for seq in by_utt.values():
        kinds = [e["final"] for e in seq]
        assert kinds.count(True) == 1 and kinds[-1] is True  # interims, then one final
        interims = seq[:-1]
        with_interims += bool(interims)
        committed = ""
        for e in interims:
            assert e["committed"].startswith(committed)  # a committed word never changes
            committed = e["committed"]
        assert seq[-1]["text"].startswith(committed)
    assert with_interims >= len(by_utt) // 2


def test_spans_are_monotonic(streamed):
    events = streamed[0].events
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    for channel in ("customer", "agent"):
        finals = finals_of(events, channel)
        for a, b in itertools.pairwise(finals):
            assert a["end"] <= b["start"]
        for f in finals:
            starts = [w["start"] for w in f["words"]]
            assert starts == sorted(starts)
            assert all(
                f["start"] - 0.05 <= w["start"] <= w["end"] <= f["end"] + 0.05 for w in f["words"]
            )


def test_everything_sent_on_the_socket_was_published(streamed):
    result, published = streamed[0], streamed[1]
    assert [e["seq"] for e in published] == [e["seq"] for e in result.events]


def test_late_subscriber_recovers_the_whole_transcript(streamed):
    result, late = streamed[0], streamed[2]
    late_finals = [(e["seq"], e["text"]) for e in finals_of(late)]
    assert late_finals == [(e["seq"], e["text"]) for e in finals_of(result.events)]
    seqs = [e["seq"] for e in late]
    assert seqs == sorted(set(seqs))  # each event once, in order


def test_call_state_is_stored_and_expires(streamed, settings):
    result, _, _, meta, stored, ttls, active = streamed
    assert meta["status"] == "ended" and meta["agent_id"] == "demo-agent"
    assert stored == finals_of(result.events)
    assert all(0 < t <= settings.call_ttl_s for t in ttls)
    assert CALL_ID not in active
