"""Prosody of an utterance, and arousal judged against the speaker's own baseline in the call.

`measure` takes an utterance's 16 kHz audio and its words and returns:
- pitch: median F0 (librosa's YIN) over the frames loud enough to be voiced speech, in Hz, and its
  range (10th to 90th percentile) in semitones;
- loudness: mean RMS level of those frames, in dBFS;
- speaking rate: words per second between the first word's start and the last word's end.

`ArousalTracker` keeps one speaker's baseline: the mean of their first utterances, until they
hold `baseline_voiced_s` of voiced audio (usually the first turn). Each later utterance is
compared with it:

    z = 0.35 d_pitch / 2 st + 0.35 d_loudness / 3 dB + 0.20 d_rate / 15 % + 0.10 d_range / 3 st
    arousal = clip(z / 2, 0, 1)        label: calm < 0.33 <= tense < 0.66 <= agitated

so a turn two semitones higher, 3 dB louder and 15 % faster than that speaker's own start scores
about 0.45 (tense). Quieter, lower or slower than the baseline counts as calm: the tracker looks
for raised arousal only. Confidence grows with voiced audio (full at 1.5 s) and with the distance
from the nearest label boundary. Absolute values never decide: a deep calm voice and a high calm
voice both start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.types import PIPELINE_RATE, Word

Samples = npt.NDArray[np.float32]

FMIN, FMAX = 65.0, 400.0
FRAME = 1024  # 64 ms at 16 kHz: over two periods of FMIN
HOP = 160  # 10 ms
PITCH_DECIMATE = 2  # pitch runs at 8 kHz: telephone speech has nothing above 4 kHz to lose
GATE_DB = 25.0  # frames within this many dB of the loudest frame count as voiced speech
FLOOR_DBFS = -55.0


@dataclass(frozen=True, slots=True)
class ProsodyFeatures:
    pitch_hz: float | None
    pitch_range_st: float | None
    loudness_db: float | None
    rate_wps: float | None
    voiced_s: float


def measure(audio: Samples, words: Sequence[Word] = ()) -> ProsodyFeatures:
    """Features of one utterance (`audio` at 16 kHz; `words` timed on any common clock)."""
    import librosa  # heavy import, only where prosody is measured

    rate = _rate(words)
    if len(audio) < FRAME:
        return ProsodyFeatures(None, None, None, rate, 0.0)
    frames = librosa.util.frame(audio, frame_length=FRAME, hop_length=HOP)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=0))
    db = 20 * np.log10(np.maximum(rms, 1e-9))
    active = (db >= db.max() - GATE_DB) & (db >= FLOOR_DBFS)
    voiced_s = float(active.sum() * HOP / PIPELINE_RATE)
    if not active.any():
        return ProsodyFeatures(None, None, None, rate, 0.0)
    loudness = float(20 * np.log10(np.sqrt(np.mean(rms[active] ** 2))))
    d = PITCH_DECIMATE
    f0 = librosa.yin(
        audio[::d], fmin=FMIN, fmax=FMAX, sr=PIPELINE_RATE // d, frame_length=FRAME // d,
        hop_length=HOP // d, center=False,
    )  # fmt: skip
    n = min(len(f0), len(active))
    f0, mask = f0[:n], active[:n] & (f0[:n] > FMIN * 1.05) & (f0[:n] < FMAX * 0.95)
    if mask.sum() < 10:
        return ProsodyFeatures(None, None, round(loudness, 2), rate, voiced_s)
    semis = 12 * np.log2(f0[mask] / 100.0)
    lo, hi = np.percentile(semis, [10, 90])
    return ProsodyFeatures(
        pitch_hz=round(float(np.median(f0[mask])), 1),
        pitch_range_st=round(float(hi - lo), 2),
        loudness_db=round(loudness, 2),
        rate_wps=rate,
        voiced_s=round(voiced_s, 2),
    )


def _rate(words: Sequence[Word]) -> float | None:
    timed = [w for w in words if w.start >= 0 and w.end > w.start]
    if len(timed) < 2:
        return None
    span = timed[-1].end - timed[0].start
    return round(len(timed) / span, 2) if span >= 0.5 else None


def semitones(hz: float) -> float:
    return 12 * math.log2(hz / 100.0)


@dataclass(frozen=True, slots=True)
class ProsodyConfig:
    baseline_voiced_s: float = 2.5
    min_voiced_s: float = 0.5  # an utterance with less voiced audio neither sets nor is judged


@dataclass(frozen=True, slots=True)
class Emotion:
    label: str  # calm | tense | agitated
    arousal: float  # 0 (at or below the speaker's baseline) .. 1
    confidence: float
    baseline: bool  # True while the speaker's baseline is still being learnt
    pitch_st: float | None = None  # differences from the baseline
    loudness_db: float | None = None
    rate_pct: float | None = None
    range_st: float | None = None


LABEL_EDGES = (0.33, 0.66)
WEIGHTS = {
    "pitch": (0.35, 2.0),
    "loudness": (0.35, 3.0),
    "rate": (0.20, 0.15),
    "range": (0.10, 3.0),
}


def label_of(arousal: float) -> str:
    if arousal < LABEL_EDGES[0]:
        return "calm"
    return "tense" if arousal < LABEL_EDGES[1] else "agitated"


class ArousalTracker:
    """One speaker's prosody over a call. `update` per utterance, in order."""

    def __init__(self, config: ProsodyConfig | None = None) -> None:
        self.config = config or ProsodyConfig()
        self._seen: list[ProsodyFeatures] = []
        self.base: dict[str, float] | None = None

    def update(self, f: ProsodyFeatures) -> Emotion:
        usable = f.voiced_s >= self.config.min_voiced_s and f.loudness_db is not None
        if self.base is None:
            if usable:
                self._seen.append(f)
                if sum(t.voiced_s for t in self._seen) >= self.config.baseline_voiced_s:
                    self.base = _baseline(self._seen)
            return Emotion("calm", 0.0, 0.0, baseline=True)
        if not usable:
            return Emotion("calm", 0.0, 0.0, baseline=False)
        base = self.base
        deltas: dict[str, float] = {}
        if f.pitch_hz is not None and "pitch" in base:
            deltas["pitch"] = semitones(f.pitch_hz) - base["pitch"]
        if f.pitch_range_st is not None and "range" in base:
            deltas["range"] = f.pitch_range_st - base["range"]
        if f.loudness_db is not None:
            deltas["loudness"] = f.loudness_db - base["loudness"]
        if f.rate_wps is not None and "rate" in base:
            deltas["rate"] = f.rate_wps / base["rate"] - 1
        weight = sum(WEIGHTS[k][0] for k in deltas)
        z = sum(WEIGHTS[k][0] * d / WEIGHTS[k][1] for k, d in deltas.items()) / weight
        arousal = min(1.0, max(0.0, z / 2))
        label = label_of(arousal)
        margin = min(abs(arousal - edge) for edge in LABEL_EDGES)
        confidence = min(1.0, f.voiced_s / 1.5) * (0.5 + 0.5 * min(1.0, margin / 0.17))
        confidence *= weight  # features missing (no pitch, no timing) lower the confidence
        return Emotion(
            label=label,
            arousal=round(arousal, 3),
            confidence=round(confidence, 2),
            baseline=False,
            pitch_st=_r(deltas.get("pitch")),
            loudness_db=_r(deltas.get("loudness")),
            rate_pct=_r(100 * deltas["rate"]) if "rate" in deltas else None,
            range_st=_r(deltas.get("range")),
        )


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _baseline(turns: Sequence[ProsodyFeatures]) -> dict[str, float]:
    base: dict[str, float] = {}
    pitches = [semitones(t.pitch_hz) for t in turns if t.pitch_hz is not None]
    ranges = [t.pitch_range_st for t in turns if t.pitch_range_st is not None]
    louds = [t.loudness_db for t in turns if t.loudness_db is not None]
    rates = [t.rate_wps for t in turns if t.rate_wps]
    if pitches:
        base["pitch"] = float(np.mean(pitches))
    if ranges:
        base["range"] = float(np.mean(ranges))
    if louds:
        base["loudness"] = float(np.mean(louds))
    if rates:
        base["rate"] = float(np.mean(rates))
    return base
