"""Shared fixtures: one real service (embedded redis-server, whisper base, gateway on port 0)."""

from __future__ import annotations

import asyncio
import io
import json
import re
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest

from agent_assist.app import Service
from agent_assist.cli import sample_call
from agent_assist.replay import replay
from agent_assist.settings import Settings
from loadtest.clients import LOCAL
from loadtest.protocols import loopback_ice as allow_loopback_ice
from pipeline.bus.redis_bus import Keys, call_state, follow_call

SAMPLES = Path(__file__).resolve().parent.parent / "agent_assist" / "samples"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(
        port=0,
        panel_port=0,
        audiosocket_port=0,
        webrtc_port=0,
        panel_secret="test-panel-secret-0123456789abcdef",
        **LOCAL.settings(),
        redis_url=None,
        call_ttl_s=600,
        log_level="INFO",
    )


@pytest.fixture(scope="session")
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with Service(settings) as svc:
        yield svc


@pytest.fixture(scope="session")
def keys(settings: Settings) -> Keys:
    return Keys(settings.redis_prefix)


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return sample_call()


SAMPLE_CALL_ID = "e2e-sample"
SAMPLE_SPEED = 1.0  # real time: interims are judged under the pacing they are built for


@pytest.fixture(scope="session")
async def sample_streamed(service, sample_path, keys):
    """Stream the sample call once; meanwhile listen on Redis, and join late as a panel would."""
    redis = service.bus.redis
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events)
    published: list[dict[str, Any]] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                event = json.loads(message["data"])
                if event["call_id"] == SAMPLE_CALL_ID:
                    published.append(event)

    listener = asyncio.create_task(listen())
    call_id = SAMPLE_CALL_ID
    call = asyncio.create_task(
        replay(sample_path, service.url, SAMPLE_SPEED, call_id=call_id, key=service.ingest_key)
    )
    await asyncio.sleep(72 / SAMPLE_SPEED / 2)  # half-way through the call: a panel joins late
    late = [e.to_dict() async for e in follow_call(redis, keys, SAMPLE_CALL_ID)]
    result = await call
    meta, events = await call_state(redis, keys, SAMPLE_CALL_ID)
    stored = [e.to_dict() for e in events]
    ttls = [await redis.ttl(keys.call(call_id)), await redis.ttl(keys.transcript(call_id))]
    active = await redis.smembers(keys.active)
    listener.cancel()
    await pubsub.aclose()
    return result, published, late, meta, stored, ttls, active


def script_lines() -> list[tuple[str, str]]:
    """(speaker, text) of the sample call's script, in order."""
    out = []
    for line in (SAMPLES / "sample_call.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            speaker, _tone, text = line.split("\t")
            out.append((speaker, text))
    return out


def timeline() -> list[tuple[str, float, float]]:
    rows = []
    for line in (SAMPLES / "sample_call.timeline.tsv").read_text().splitlines():
        speaker, start, end, _text = line.split("\t")
        rows.append((speaker, float(start), float(end)))
    return rows


_PUNCT = re.compile(r"[^a-z' ]+")


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ")
    return " ".join(_PUNCT.sub(" ", text).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


def stereo_wav(customer: np.ndarray, agent: np.ndarray, rate: int = 8000) -> bytes:
    """A 16-bit stereo WAV file's bytes from two mono int16 tracks."""
    n = max(len(customer), len(agent))
    frames = np.zeros((n, 2), dtype="<i2")
    frames[: len(customer), 0] = customer
    frames[: len(agent), 1] = agent
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return buf.getvalue()


async def wait_for(predicate: Callable[[], bool], within: float = 30.0) -> None:
    """Poll a condition instead of sleeping a fixed time."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def loopback_ice() -> Iterator[None]:
    with allow_loopback_ice():
        yield
