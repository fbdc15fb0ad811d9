"""The command line as a user runs it: replay --json against a live server, the demo, WAV input."""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from agent_assist.replay import WavError, read_wav
from pipeline.speech.audio import encode_mulaw
from pipeline.types import Encoding
from tests.conftest import script_lines, stereo_wav, timeline, wer

CLI = [sys.executable, "-m", "agent_assist.cli"]


def first_turn(sample_path: Path, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The agent's first turn of the sample call as pcm16 at `rate` (customer silent)."""
    from pipeline.speech.audio import MULAW_TO_PCM16, Resampler

    wav = read_wav(sample_path)
    frames = np.frombuffer(wav.data, dtype=np.uint8).reshape(-1, 2)
    _, _, end = timeline()[0]
    agent = MULAW_TO_PCM16[frames[: int((end + 1.0) * 8000), 1]]
    if rate == 16000:
        r = Resampler(8000)
        agent = np.concatenate([r.push(agent), r.flush()])
    return np.zeros(len(agent), dtype=np.int16), agent


def mulaw_wav(customer: np.ndarray, agent: np.ndarray, rate: int) -> bytes:
    data = np.frombuffer(encode_mulaw(np.stack([customer, agent], axis=1).ravel()), np.uint8)
    fmt = struct.pack("<HHIIHH", 7, 2, rate, rate * 2, 2, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data.tobytes()
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("encoding", "rate"), [("pcm16", 8000), ("pcm16", 16000), ("mulaw", 16000)]
)
async def test_replay_json_prints_one_event_per_line(
    service, sample_path, tmp_path, encoding, rate
):
    customer, agent = first_turn(sample_path, rate)
    path = tmp_path / f"turn-{encoding}-{rate}.wav"
    if encoding == "pcm16":
        path.write_bytes(stereo_wav(customer, agent, rate))
    else:
        path.write_bytes(mulaw_wav(customer, agent, rate))
    assert read_wav(path).encoding is Encoding(encoding)
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "replay",
        str(path),
        "--url",
        service.url,
        "--speed",
        "4",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ | {"AGENT_ASSIST_INGEST_KEY": service.ingest_key},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    transcripts = [e for e in lines if e.get("type") == "transcript"]
    finals = [e for e in transcripts if e["final"]]
    assert len(finals) == 1 and finals[0]["channel"] == "agent"
    assert wer(script_lines()[0][1], finals[0]["text"]) < 0.25
    assert lines[-1]["type"] == "stopped"


async def test_replay_reports_a_refused_call(service, tmp_path):
    path = tmp_path / "mono.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(1600))
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "replay",
        str(path),
        "--url",
        service.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "stereo" in err.decode()


def test_read_wav_refuses_what_it_cannot_stream(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(WavError, match="RIFF"):
        read_wav(bad)
    with wave.open(str(bad), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(16))
    with pytest.raises(WavError, match="16-bit PCM or mu-law"):
        read_wav(bad)


async def test_replay_without_the_ingest_key_is_refused_with_a_clear_message(service, tmp_path):
    path = tmp_path / "short.wav"
    path.write_bytes(stereo_wav(np.zeros(800, np.int16), np.zeros(800, np.int16)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ASSIST_")}
    out = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "replay", str(path), "--url", service.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "HTTP 401" in out.stderr and "ingest key" in out.stderr
    assert "Traceback" not in out.stderr


async def test_demo_shows_a_live_two_speaker_transcript(tmp_path):
    """`agent-assist demo` as the README runs it (faster than real time here)."""
    env = os.environ | {"AGENT_ASSIST_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "demo",
        "--speed",
        "4",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    lines = [line for line in text.splitlines() if re.match(r"\[..:....\] (CUSTOMER|AGENT)", line)]
    assert any("CUSTOMER" in line for line in lines) and any("AGENT" in line for line in lines)
    assert all("(final +" in line for line in lines)
    mood = [line.strip() for line in text.splitlines() if line.startswith(" " * 20)]
    assert any(line.startswith(("negative", "neutral", "positive")) for line in mood)
    assert any("!! FRUSTRATED" in line for line in mood)  # the annoyed customer is flagged
    assert "final transcripts; end of speech to final on screen: median" in text
    assert "redis     redis://:***@127.0.0.1:" in text  # an embedded server, its password masked
    assert any("!! CRITICAL" in line for line in mood)  # an alert with its prompt
    assert re.search(r"wall board +http://127\.0\.0\.1:\d+/wallboard\n", text)
    assert re.search(r"agent panel +http://127\.0\.0\.1:\d+/agent/demo-agent\n", text)
    assert re.search(r"sign in +http://127\.0\.0\.1:\d+/login\?next=/wallboard#token=\S+", text)
    assert "?token=" not in text
