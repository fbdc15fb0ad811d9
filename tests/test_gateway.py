"""Bad input against the real gateway (real model, real embedded Redis, port 0): each offender gets
a clear close code and reason, is counted, and a good call running beside it is not disturbed."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent_assist.replay import read_wav, replay
from loadtest.clients import LOCAL
from pipeline.bus.redis_bus import call_state
from pipeline.runtime import metrics
from tests.conftest import timeline, wait_for

START = {
    "type": "start",
    "version": 1,
    "call_id": "bad-call",
    "agent_id": "a1",
    "sample_rate": 8000,
    "encoding": "pcm16",
    "channels": 2,
    "layout": ["customer", "agent"],
}
SILENCE = bytes(4 * 160)  # 20 ms of stereo pcm16 at 8 kHz


def start(**changes) -> str:
    return json.dumps(START | changes)


# (name, messages to send, expected close code, expected metric kind, words in the reason)
CASES = [
    ("non-JSON first message", ["hello"], 4400, "bad_json", "not JSON"),
    (
        "unknown first message",
        [json.dumps({"type": "hello"})],
        4400,
        "unknown_first_message",
        "start",
    ),
    ("audio before start", [SILENCE], 4400, "audio_before_start", "start"),
    ("unknown encoding", [start(encoding="opus")], 4415, "unsupported_encoding", "encoding"),
    ("unknown rate", [start(sample_rate=44100)], 4415, "unsupported_rate", "sample_rate"),
    ("mono stream", [start(channels=1)], 4415, "unsupported_channels", "stereo"),
    ("bad call id", [start(call_id="a b/c")], 4400, "bad_start", "call_id"),
    ("call id with a colon", [start(call_id="victim:transcript")], 4400, "bad_start", "call_id"),
    ("call id with a newline", [start(call_id="c1\n")], 4400, "bad_start", "call_id"),
    ("JSON nested 30,000 deep", ["[" * 30000 + "]" * 30000], 4400, "bad_json", "not JSON"),
    ("odd-length PCM", [start(), SILENCE, b"\x01\x02\x03"], 4422, "partial_frame", "whole"),
    ("half a stereo frame", [start(), b"\x00\x00"], 4422, "partial_frame", "whole"),
    ("frame over the limit", [start(), bytes(65536 + 4)], 1009, "frame_too_large", "exceeds"),
    ("second start", [start(), SILENCE, start()], 4409, "second_start", "already started"),
    ("unknown message", [start(), json.dumps({"type": "pause"})], 4400, "unknown_message", "pause"),
]


async def offend(url: str, messages: list[str | bytes], call_id: str) -> tuple[int, str, dict]:
    """Send the messages; return the close code, reason and the error message received."""
    error: dict = {}
    async with connect(url, additional_headers=LOCAL.bearer()) as ws:
        try:
            for m in messages:
                if isinstance(m, str) and '"start"' in m:
                    m = m.replace('"bad-call"', json.dumps(call_id))
                await ws.send(m)
            async for reply in ws:
                data = json.loads(reply)
                if data.get("type") == "error":
                    error = data
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        return ws.close_code, ws.close_reason, error


def counted(kind: str) -> float:
    return metrics.PROTOCOL_ERRORS.labels("native", kind)._value.get()


@pytest.mark.parametrize(
    ("name", "messages", "code", "kind", "words"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_input_is_closed_with_code_and_reason(service, name, messages, code, kind, words):
    before = counted(kind)
    call_id = f"bad-{kind}-{CASES.index(next(c for c in CASES if c[0] == name))}"
    close_code, reason, error = await offend(service.url, messages, call_id)
    assert close_code == code
    assert words in reason
    assert error == {"type": "error", "code": code, "kind": kind, "reason": reason}
    assert counted(kind) == before + 1


def first_turn_audio(sample_path: Path, seconds: float) -> list[bytes]:
    """The sample call's first `seconds`, as 20 ms stereo mu-law frames."""
    wav = read_wav(sample_path)
    data = wav.data[: int(seconds * wav.rate) * wav.frame_bytes]
    return [data[i : i + 320] for i in range(0, len(data), 320)]


async def test_audio_after_stop_is_refused_after_the_finals(service, sample_path):
    before = counted("audio_after_stop")
    received = []
    async with connect(service.url, additional_headers=LOCAL.bearer()) as ws:
        await ws.send(start(call_id="after-stop", encoding="mulaw"))
        for frame in first_turn_audio(sample_path, 6.0):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop"}))
        await ws.send(bytes(320))
        with pytest.raises(ConnectionClosed):
            while True:
                received.append(json.loads(await ws.recv()))
        assert ws.close_code == 4409
        assert "stop" in ws.close_reason
    assert counted("audio_after_stop") == before + 1
    finals = [e for e in received if e.get("final")]
    assert finals and finals[0]["channel"] == "agent"  # what was said before stop still came


async def test_call_id_in_use_is_refused(service, sample_path):
    async with connect(service.url, additional_headers=LOCAL.bearer()) as first:
        await first.send(start(call_id="twice", encoding="mulaw"))
        assert json.loads(await first.recv())["type"] == "started"
        code, reason, _ = await offend(service.url, [start(call_id="twice")], "twice")
        assert (code, reason) == (4409, "call_id is already streaming")
        await first.send(json.dumps({"type": "stop"}))
        async for _ in first:
            pass
        assert first.close_code == 1000


async def test_a_finished_call_id_is_not_reused(service, keys):
    """A second call under a finished call's id would overwrite its record: refused."""
    call_id = f"once-{uuid.uuid4().hex[:8]}"
    async with connect(service.url, additional_headers=LOCAL.bearer()) as ws:
        await ws.send(start(call_id=call_id))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.send(SILENCE)
        await ws.send(json.dumps({"type": "stop"}))
        async for _ in ws:
            pass
    code, reason, error = await offend(service.url, [start(call_id=call_id)], call_id)
    assert (code, reason) == (4409, "call_id is in use or was used before")
    assert error["kind"] == "call_in_use"
    assert await service.bus.redis.exists(keys.record(call_id))  # the first call's record stands


async def test_vanished_client_still_gets_its_last_utterance_published(service, sample_path, keys):
    """The client drops the TCP connection mid-sentence; the final still reaches Redis."""
    _, start_s, end_s = timeline()[0]  # the agent's first turn
    cut = (start_s + end_s) / 2
    before = metrics.DISCONNECTS._value.get()
    ws = await connect(service.url, additional_headers=LOCAL.bearer())
    await ws.send(start(call_id="vanished", encoding="mulaw"))
    await ws.recv()
    for frame in first_turn_audio(sample_path, cut):
        await ws.send(frame)
    ws.transport.abort()  # no stop, no close frame: gone
    redis = service.bus.redis
    await wait_for(lambda: metrics.DISCONNECTS._value.get() == before + 1, 30)

    async def ended() -> bool:
        return (await redis.hget(keys.call("vanished"), "status")) == "ended"

    for _ in range(600):
        if await ended():
            break
        await asyncio.sleep(0.05)
    meta, events = await call_state(redis, keys, "vanished")
    finals = [e.to_dict() for e in events]
    assert meta["ended"] == "disconnect"
    assert len(finals) == 1 and finals[0]["channel"] == "agent"
    assert finals[0]["text"].lower().startswith("thank you for calling")
    assert finals[0]["end"] <= cut + 0.05


async def test_a_good_call_is_undisturbed_by_offenders(service, sample_path):
    good = asyncio.create_task(
        replay(sample_path, service.url, speed=4.0, call_id="good-call", key=service.ingest_key)
    )
    for name, messages, code, _, _ in CASES:
        close_code, _, _ = await offend(service.url, messages, f"beside-{name.replace(' ', '-')}")
        assert close_code == code, name
    result = await good
    assert result.close_code == 1000
    assert result.stopped is not None
    finals = [e for e in result.events if e["type"] == "transcript" and e["final"]]
    assert result.stopped["finals"] == len(finals) >= 10


async def test_metrics_and_health_endpoints(service):
    base = service.url.replace("ws://", "http://").rsplit("/v1/", 1)[0]

    def get(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.status, r.read().decode()

    status, body = await asyncio.to_thread(get, "/metrics")
    assert status == 200 and "agent_assist_protocol_errors_total" in body
    assert (await asyncio.to_thread(get, "/healthz")) == (200, "ok\n")
    with pytest.raises(urllib.error.HTTPError) as err:
        await asyncio.to_thread(get, "/nope")
    assert err.value.code == 404
    err.value.close()


def test_silence_frames_are_whole_frames():
    assert len(SILENCE) % 4 == 0 and np.frombuffer(SILENCE, dtype="<i2").size == 320
