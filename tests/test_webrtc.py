"""WebRTC: headless Chromium, the sample call as its fake microphone, against the real aiortc
endpoint; per-speaker finals within a WER point of the native protocol's, never swapped."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr
from playwright.async_api import async_playwright

from agent_assist.clients import stereo_pcm
from loadtest.browser import fake_microphone, launch
from tests.test_protocols import assert_as_good_as_native, finals, native  # noqa: F401

pytestmark = pytest.mark.slow

LEAD_IN_S = 3.0  # the microphone is live a moment before anyone speaks, as on a real call


@pytest.fixture(scope="module")
def microphone(sample_path, tmp_path_factory) -> Path:
    """The sample call as a 48 kHz 16-bit stereo WAV (customer left, agent right)."""
    pcm, rate = stereo_pcm(sample_path)
    up = soxr.resample(pcm.astype(np.float32) / 32768, rate, 48000)
    lead = np.zeros((int(LEAD_IN_S * 48000), 2), dtype=np.float32)
    out = np.clip(np.concatenate([lead, up]) * 32768, -32768, 32767).astype("<i2")
    path = tmp_path_factory.mktemp("mic") / "sample48k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(out.tobytes())
    return path


async def test_softphone_call_from_chromium(service, keys, native, microphone, loopback_ice):  # noqa: F811
    server = service.gateway.webrtc
    call = "webrtc-sample"
    url = f"{server.url}/softphone?call_id={call}&agent_id=agent-5&layout=tracks&autostart=1"
    async with async_playwright() as p:
        browser = await launch(p, *fake_microphone(microphone))
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(url)
        await page.wait_for_function(
            "['streaming', 'error'].includes(window.softphone.state)", timeout=30_000
        )
        phone = await page.evaluate("window.softphone")
        assert phone["state"] == "streaming", phone
        assert phone["channelCount"] == 2, "the fake microphone kept both channels"
        await asyncio.sleep(LEAD_IN_S + 72.5)
        await page.evaluate("window.softphone.hangup()")
        await page.wait_for_function("window.softphone.state === 'ended'")
        await browser.close()
    assert not errors
    texts = await finals(service, keys, call)
    assert_as_good_as_native(texts, native)
