"""A call that speaks a card number, an SSN and an e-mail address: none of them reaches Redis.

`tests/data/payment_call.wav` is rendered from `payment_call.tsv` with espeak-ng (the recipe is in
the script's header). Everything the service publishes (every channel under the prefix) and
everything it stores for the call is read back and searched for the secrets, in digits and in
number words, independently of the redactor's own parsing.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from agent_assist.replay import replay

CALL_ID = "e2e-payment"
WAV = Path(__file__).parent / "data" / "payment_call.wav"
CARD = "4539148803436467"
SSN = "123456789"
WORDS = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_OF = {w: str(max(0, i - 1)) for i, w in enumerate(WORDS)}


def digit_stream(text: str) -> str:
    """Every digit in order, from figures and number words, all else dropped."""
    out = []
    for token in re.findall(r"[a-z]+|\d", text.lower()):
        out.append(token if token.isdigit() else DIGIT_OF.get(token, ""))
    return "".join(out)


def leaks(text: str) -> list[str]:
    stream = digit_stream(text)
    found = [
        f"{name} digits {secret[i : i + 6]}"
        for name, secret in (("card", CARD), ("ssn", SSN))
        for i in range(len(secret) - 5)
        if secret[i : i + 6] in stream
    ]
    found += [w for w in ("mailbox", "mail box", "hill", "@") if w in text.lower()]
    return found


@pytest.fixture(scope="module")
async def redis_contents(service, keys):
    redis = service.bus.redis
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{keys.prefix}:*")
    published: list[str] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                data = message["data"]
                published.append(data.decode() if isinstance(data, bytes) else data)

    listener = asyncio.create_task(listen())
    result = await replay(WAV, service.url, speed=2.0, call_id=CALL_ID, key=service.ingest_key)
    await asyncio.sleep(0.5)  # the last messages in flight
    listener.cancel()
    await pubsub.aclose()
    stored: list[str] = []
    async for key in redis.scan_iter(f"{keys.prefix}:*{CALL_ID}*"):
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            stored.append(str(await redis.get(key)))
        elif kind == "hash":
            stored += [f"{k}={v}" for k, v in (await redis.hgetall(key)).items()]
        elif kind == "list":
            stored += [str(v) for v in await redis.lrange(key, 0, -1)]
        else:
            raise AssertionError(f"unexpected {kind} key {key}")
    assert await redis.exists(keys.record(CALL_ID)), "the post-call record is among them"
    shared = await redis.lrange(keys.alerts_feed, 0, -1)  # alerts of every call, with evidence
    stored += [str(a) for a in shared if CALL_ID in str(a)]
    return result, published, stored


def test_the_call_was_transcribed_with_placeholders(redis_contents):
    result, published, stored = redis_contents
    finals = [
        e.event["text"]
        for e in result.received
        if e.event.get("type") == "transcript" and e.event["final"]
        and e.event["channel"] == "customer"
    ]  # fmt: skip
    assert len(finals) == 5, finals
    _, card, ssn, email, _ = finals
    assert re.search(r"\[(CARD|ACCOUNT)\]", card), card
    assert re.search(r"\[(SSN|ACCOUNT)\]", ssn), ssn
    assert "[EMAIL]" in email, email
    assert any(CALL_ID in m for m in published) and stored


def test_no_secret_reaches_redis(redis_contents):
    _, published, stored = redis_contents
    for where, texts in (("published", published), ("stored", stored)):
        for text in texts:
            if CALL_ID in text or where == "stored":
                assert not leaks(text), (where, leaks(text), json.dumps(text)[:300])


def test_the_leak_check_can_fail():
    assert leaks("the card number is 4539 1488 0343 6467") == [
        f"card digits {CARD[i : i + 6]}" for i in range(len(CARD) - 5)
    ]
    assert leaks("one two three four five six seven eight nine")
    assert leaks("it is mark dot hill at mailbox dot com") == ["mailbox", "hill"]
