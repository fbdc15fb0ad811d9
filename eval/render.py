"""Render a scripted two-voice call into a stereo 8 kHz mu-law WAV with espeak-ng and sox.

Script lines: `speaker<TAB>tone<TAB>frustrated<TAB>text` (the eval calls) or
`speaker<TAB>tone<TAB>text` (the sample call); `#` lines are comments. The customer goes on the
left channel, the agent on the right, turns one after another with `gap` seconds between them.
`annoyed` turns are rendered higher (+25 espeak pitch), faster (+15 words a minute) and louder
(+7 dB) than that voice's calm turns. Each call gets its own pair of voices, chosen from its
file name, so that the set is not one voice throughout. Synthetic speech: it proves plumbing and
prosody handling, not accuracy on real callers.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.speech.audio import encode_mulaw

RATE = 8000
CUSTOMER_VOICES = [("en-us+m1", 45), ("en-us+f3", 55), ("en-us+m3", 40), ("en-gb+f1", 50)]
AGENT_VOICES = [("en-us+f2", 50), ("en-us+m2", 48), ("en-gb+f4", 52)]


@dataclass(frozen=True)
class Turn:
    speaker: str  # customer | agent
    tone: str  # calm | annoyed
    frustrated: bool | None  # customer turns of eval calls; None for agent turns / sample call
    text: str
    start: float = 0.0
    end: float = 0.0


def read_script(path: Path) -> list[Turn]:
    turns = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) == 4:
            speaker, tone, flag, text = cols
            frustrated = {"yes": True, "no": False, "-": None}[flag]
        elif len(cols) == 3:
            (speaker, tone, text), frustrated = cols, None
        else:
            raise ValueError(f"{path}:{n}: expected 3 or 4 tab-separated fields")
        if speaker not in ("customer", "agent") or tone not in ("calm", "annoyed"):
            raise ValueError(f"{path}:{n}: unknown speaker or tone")
        turns.append(Turn(speaker, tone, frustrated, text))
    return turns


def speak(text: str, voice: str, pitch: int, annoyed: bool, out: Path) -> np.ndarray:
    """One utterance as 8 kHz 16-bit mono samples (`out` is a scratch WAV path)."""
    speed, amp, level = (150, 170, -2) if annoyed else (135, 100, -9)
    raw = out.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch + 25 * annoyed),
         "-a", str(amp), "-g", "3" if annoyed else "4", "-w", str(raw), text],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out), "gain", "-n",
         str(level)],
        check=True,
    )  # fmt: skip
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def render(script: Path, out: Path, gap: float = 0.6, lead: float = 1.0) -> list[Turn]:
    """Write `out` (stereo mu-law WAV); return the turns with their start and end seconds."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed (Debian packages espeak-ng and sox)")
    pick = int(hashlib.sha256(script.stem.encode()).hexdigest(), 16)
    voices = {
        "customer": CUSTOMER_VOICES[pick % len(CUSTOMER_VOICES)],
        "agent": AGENT_VOICES[(pick // 7) % len(AGENT_VOICES)],
    }
    placed: list[Turn] = []
    tracks: dict[str, list[tuple[int, np.ndarray]]] = {"customer": [], "agent": []}
    t = lead
    with tempfile.TemporaryDirectory() as tmp:
        for i, turn in enumerate(read_script(script)):
            voice, pitch = voices[turn.speaker]
            pcm = speak(turn.text, voice, pitch, turn.tone == "annoyed", Path(tmp) / f"{i}.wav")
            tracks[turn.speaker].append((round(t * RATE), pcm))
            end = t + len(pcm) / RATE
            placed.append(Turn(turn.speaker, turn.tone, turn.frustrated, turn.text, t, end))
            t = end + gap
    total = round((t + lead) * RATE)
    stereo = np.zeros((total, 2), dtype=np.int16)
    for ch, speaker in enumerate(("customer", "agent")):
        for at, pcm in tracks[speaker]:
            stereo[at : at + len(pcm), ch] = pcm
    data = encode_mulaw(stereo.reshape(-1))
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_mulaw_wav(out, data)
    return placed


def _write_mulaw_wav(path: Path, data: bytes) -> None:
    import struct

    fmt = struct.pack("<HHIIHHH", 7, 2, RATE, RATE * 2, 2, 8, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(data) // 2)
    body += b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
