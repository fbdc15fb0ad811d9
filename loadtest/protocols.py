"""Stream a stereo call through any ingest protocol, the way its platform would, and read back
each party's final transcript from Redis. Shared by the protocol tests and the protocol
benchmark.

| protocol      | client |
|---------------|--------|
| `native`      | `agent_assist.replay` |
| `twilio`      | the real simulator, `streamdouble` (its CLI, in a subprocess) |
| `audiohook`   | `agent_assist.clients.audiohook_call` (from the AudioHook specification) |
| `audiofork`   | `agent_assist.clients.audiofork_call`, at 16 kHz |
| `audiosocket` | `agent_assist.clients.audiosocket_call`, two legs |
| `webrtc`      | Debian's headless Chromium, the call as its fake microphone, the softphone page |
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioice.ice
import numpy as np
from playwright.async_api import async_playwright
from redis.asyncio import Redis

from agent_assist.app import Service
from agent_assist.replay import replay
from gateway.server import Gateway
from loadtest.browser import fake_microphone, launch
from loadtest.clients import (
    AudioHookResult,
    audiofork_call,
    audiohook_call,
    audiosocket_call,
)
from pipeline.bus.redis_bus import Keys, call_state
from pipeline.speech.audio import Resampler
from pipeline.types import PCM, Channel, TranscriptEvent

PROTOCOLS = ("native", "twilio", "audiohook", "audiofork", "audiosocket", "webrtc")
PARTIES = ("customer", "agent")
LEAD_IN_S = 3.0  # a softphone's microphone is live a moment before anyone speaks


@dataclass
class Streamed:
    protocol: str
    call_id: str
    finals: dict[str, str]  # party: its final transcripts, joined
    meta: dict[str, str]
    detail: dict[str, Any] = field(default_factory=dict)  # what the client saw


def resample(pcm: PCM, rate: int, to: int) -> PCM:
    """Each column of (n, channels) int16 to another rate."""
    cols = []
    for c in range(pcm.shape[1]):
        r = Resampler(rate, to)
        cols.append(np.concatenate([r.push(pcm[:, c].copy()), r.flush()]))
    return np.stack(cols, axis=1)


def write_wav(path: Path, pcm: PCM, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1] if pcm.ndim == 2 else 1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


async def wait_ended(redis: Redis, keys: Keys, call_id: str, within: float = 60.0) -> None:
    """Until the call's end is recorded (a client that only sends may leave before its last
    finals are out)."""
    for _ in range(int(within * 10)):
        meta, _ = await call_state(redis, keys, call_id)
        if meta.get("status") == "ended":
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"call {call_id} did not end")


async def finals_by_party(redis: Redis, keys: Keys, call_id: str) -> dict[str, str]:
    await wait_ended(redis, keys, call_id)
    _, events = await call_state(redis, keys, call_id)
    finals = [e for e in events if isinstance(e, TranscriptEvent)]
    return {p: " ".join(e.text for e in finals if e.channel.label == p) for p in PARTIES}


async def streamdouble(url: str, wavs: tuple[Path, Path], call_id: str, *extra: str) -> str:
    """`streamdouble call URL --fork --track both ...`, as a user would run it; its output."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "streamdouble"),
        "call",
        url,
        "--fork",
        "--track",
        "both",
        "--audio",
        str(wavs[0]),
        "--agent-audio",
        str(wavs[1]),
        "--param",
        f"call_id={call_id}",
        "--param",
        "agent_id=agent-7",
        "--max-drain",
        "60",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode not in (0, 1):  # 1: a "gate" on the agent's reply, which a fork lacks
        raise RuntimeError(f"streamdouble exited {proc.returncode}: {text[-2000:]}")
    return text


@contextlib.asynccontextmanager
async def unsigned_twilio(service: Service) -> AsyncIterator[Gateway]:
    """A Twilio-only gateway beside the service's, on its Redis and models, that takes unsigned
    requests (`insecure`, on loopback): `streamdouble` simulates Twilio's stream but does not
    sign the upgrade as Twilio does (the signature check has tests of its own)."""
    assert service.gateway is not None and service.bus is not None
    config = dataclasses.replace(
        service.gateway.config,
        port=0,
        ingests=("twilio",),
        twilio_auth_token=None,
        insecure=True,
        audiosocket_port=None,
        webrtc_port=None,
    )
    gateway = Gateway(config, service.bus, service.gateway.hub.stages)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def softphone(service: Service, mic: Path, call_id: str, seconds: float) -> dict[str, Any]:
    """Chromium calls the softphone page with `mic` as its microphone for `seconds`, then hangs
    up; returns the page's state while it streamed."""
    gw = service.gateway
    assert gw is not None and gw.webrtc is not None
    url = f"{gw.webrtc.url}/softphone?call_id={call_id}&agent_id=agent-5&layout=tracks"
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await launch(p, *fake_microphone(mic))
        page = await browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(url)
        await page.fill("#token", service.ingest_key)  # as a user types it in
        await page.evaluate("document.getElementById('form').requestSubmit()")
        await page.wait_for_function(
            "['streaming', 'error'].includes(window.softphone.state)", timeout=30_000
        )
        state: dict[str, Any] = await page.evaluate("window.softphone")
        if state["state"] == "streaming":
            await asyncio.sleep(seconds)
            await page.evaluate("window.softphone.hangup()")
            await page.wait_for_function("window.softphone.state === 'ended'")
        await browser.close()
    return state | {"errors": errors}


async def stream(
    service: Service, protocol: str, pcm: PCM, rate: int, workdir: Path, call_id: str = ""
) -> Streamed:
    """The call `pcm` ((n, 2) int16: customer, agent) through `protocol`, in real time."""
    gw = service.gateway
    assert gw is not None and service.bus is not None
    call_id = call_id or f"{protocol}-{uuid.uuid4().hex[:8]}"
    detail: dict[str, Any] = {}
    if protocol == "native":
        wav = write_wav(workdir / f"{call_id}.wav", pcm, rate)
        result = await replay(wav, gw.url, 1.0, call_id=call_id, key=service.ingest_key)
        detail["close_code"] = result.close_code
    elif protocol == "twilio":
        pcm8 = resample(pcm, rate, 8000) if rate != 8000 else pcm
        wavs = (
            write_wav(workdir / f"{call_id}-customer.wav", pcm8[:, 0], 8000),
            write_wav(workdir / f"{call_id}-agent.wav", pcm8[:, 1], 8000),
        )
        async with unsigned_twilio(service) as twilio:  # the simulator cannot sign its requests
            detail["output"] = await streamdouble(twilio.url_for("/twilio"), wavs, call_id)
    elif protocol == "audiohook":
        call_id = str(uuid.uuid4())  # AudioHook's call id is the conversation's UUID
        pcm8 = resample(pcm, rate, 8000) if rate != 8000 else pcm
        result_ah: AudioHookResult = await audiohook_call(
            gw.url_for("/audiohook"),
            pcm8,
            call_id,
            agent_id="agent-9",
            api_key=gw.config.audiohook_api_key or "",
            client_secret=gw.config.audiohook_client_secret,
        )
        detail["audiohook"] = result_ah
    elif protocol == "audiofork":
        pcm16 = resample(pcm, rate, 16000) if rate != 16000 else pcm
        meta = json.dumps({"callId": call_id, "agentId": "agent-3", "sampleRate": 16000})
        auth = {"Authorization": f"Bearer {service.ingest_key}"}
        session = await audiofork_call(gw.url_for("/audiofork"), pcm16, 16000, meta, headers=auth)
        detail["close_code"] = session.close_code
    elif protocol == "audiosocket":
        assert gw.audiosocket is not None
        call_uuid = uuid.uuid4()
        call_id = str(call_uuid)
        pcm8 = resample(pcm, rate, 8000) if rate != 8000 else pcm
        ports = (gw.audiosocket.ports[Channel.CUSTOMER], gw.audiosocket.ports[Channel.AGENT])
        await audiosocket_call(gw.config.host, ports, call_uuid, pcm8)
    elif protocol == "webrtc":
        pcm48 = resample(pcm, rate, 48000)
        lead = np.zeros((int(LEAD_IN_S * 48000), 2), dtype=np.int16)
        mic = write_wav(workdir / f"{call_id}-mic.wav", np.concatenate([lead, pcm48]), 48000)
        seconds = LEAD_IN_S + len(pcm) / rate + 0.5
        detail["page"] = await softphone(service, mic, call_id, seconds)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    redis, keys = service.bus.redis, service.bus.keys
    finals = await finals_by_party(redis, keys, call_id)
    meta, _ = await call_state(redis, keys, call_id)
    return Streamed(protocol, call_id, finals, meta, detail)


@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """aioice leaves loopback addresses out of its candidates; a browser on the same machine
    (and a CI box with no other interface) needs them."""
    original = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1", *original(use_ipv4, use_ipv6)]

    aioice.ice.get_host_addresses = with_loopback
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
