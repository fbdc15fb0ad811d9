"""Prosody of an utterance, and arousal judged against the speaker's own baseline in the call.

`measure` takes an utterance's 16 kHz audio and its words and returns:
- pitch: median F0 (librosa's YIN) over the frames loud enough to be voiced speech, in Hz, and its
  range (10th to 90th percentile) in semitones;
- loudness: mean RMS level of those frames, in dBFS;
- speaking rate: words per second between the first word's start and the last word's end.

`ArousalTracker` judges each utterance of one speaker against a *reference*: the median of the
speaker's own eligible turns (at least 1 s of voice, not reading out digits or an account
number) over their first `baseline_voiced_s` (25 s) of such speech, shrunk toward a population
prior of typical calm telephone speech for their voice type (low or high, split at 160 Hz) as if
the prior were `prior_weight_s` (10 s) of their voice. Loudness is the exception: line levels
differ between calls by tens of decibels, so the prior may only *lower* the loudness reference
(a speaker loud from their first word still reads loud), never raise it above the speaker's own
median (a quiet line is judged against itself, with the speaker's own 3 dB tolerance). In the
baseline period, turns less aroused than `period_join` (0.5) join; while the window fills after
it, turns that are not tense (under 0.33); after the window, calm turns (under 0.2) still join,
the oldest leaving, so the baseline follows a speaker slowly.

    z = 0.35 d_pitch/T_pitch + 0.35 d_loud/T_loud + 0.20 d_rate/T_rate + 0.10 d_range/T_range
    arousal = clip(z / 2, 0, 1)        label: calm < 0.33 <= tense < 0.66 <= agitated

The tolerances `T` blend the speaker's own (2 st, 3 dB, 15 %, 3 st) with the prior's, wider
(3 st, 8 dB, 25 %, 3 st: line levels differ between calls far more than within one), by the
share of each in the reference. Against a full own baseline, a turn two semitones higher, 3 dB
louder and 15 % faster scores about 0.45 (tense). Quieter, lower or slower counts as calm: the
tracker looks for raised arousal only.

So a customer who opens by reading digits is not judged against the digits, and a customer who
is agitated from their first word is compared with typical speech too: the prior keeps about a
third of the reference, and their agitated turns (at least 0.5 in the baseline period, the
first `settled_voiced_s`, 6 s, of eligible voice; tense after it) never join it. The cost: a
speaker whose calm voice is far louder, higher and faster than typical can stay "tense" all
call; the frustration score's evidence rules let voice alone raise no more than a coaching
alert.

Every emotion carries `baseline` (still in the baseline period) and `baseline_quality` (the
share of the 25 s window the speaker's own voice fills, 0..1). Confidence grows with voiced
audio (full at 1.5 s), with the distance from the nearest label boundary, and with the quality.
"""

from __future__ import annotations

import math
from collections import deque
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
    baseline_voiced_s: float = 25.0  # eligible voiced speech the speaker's own baseline is built on
    settled_voiced_s: float = 6.0  # before this much, the speaker is still in the baseline period
    prior_weight_s: float = 10.0  # the population prior counts as this much voiced speech
    min_turn_voiced_s: float = 1.0  # a shorter turn does not shape the baseline
    min_voiced_s: float = 0.5  # an utterance with less voiced audio is not judged
    period_join: float = 0.5  # in the baseline period, turns less aroused than this join it
    calm_update: float = 0.2  # after the window, turns calmer than this still join the baseline
    keep_turns: int = 32  # the baseline is the median of at most this many turns

    def __post_init__(self) -> None:
        if not 0 < self.settled_voiced_s <= self.baseline_voiced_s:
            raise ValueError("prosody needs 0 < settled_voiced_s <= baseline_voiced_s")


@dataclass(frozen=True, slots=True)
class Emotion:
    label: str  # calm | tense | agitated
    arousal: float  # 0 (at or below the reference) .. 1
    confidence: float
    baseline: bool  # True during the baseline period (too little of the speaker's own voice yet)
    baseline_quality: float = 0.0  # 0 (population prior only) .. 1 (a full own baseline)
    pitch_st: float | None = None  # differences from the reference
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


# Typical calm conversational speech on a telephone line, per voice type: the prior every speaker
# is compared with until their own voice is known, and blended into their baseline after.
PRIORS = {
    "low": {"pitch": semitones(115.0), "range": 5.0, "loudness": -26.0, "rate": 2.6},
    "high": {"pitch": semitones(205.0), "range": 5.5, "loudness": -26.0, "rate": 2.6},
}
# How far from the prior a calm speaker may be, per feature (against their own voice: WEIGHTS):
# line levels differ between calls far more than one caller's level between turns.
PRIOR_TOLERANCE = {"pitch": 3.0, "loudness": 8.0, "rate": 0.25, "range": 3.0}
VOICE_SPLIT_HZ = 160.0
_NUMBER_WORDS = (
    "zero oh o one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand double triple dash hash star point"
)
_NUMBERS = frozenset(_NUMBER_WORDS.split())


def reads_numbers(text: str) -> bool:
    """Digit or number reading (an account number, a postcode): at least 40 % of its words."""
    words = ["".join(c for c in w if c.isalnum()) for w in text.lower().split()]
    words = [w for w in words if w]
    numeric = sum(w.isdigit() or w in _NUMBERS or (len(w) == 1 and w.isalpha()) for w in words)
    return bool(words) and numeric / len(words) >= 0.4


class ArousalTracker:
    """One speaker's prosody over a call. `update` per utterance, in order, with its words."""

    def __init__(self, config: ProsodyConfig | None = None) -> None:
        self.config = config or ProsodyConfig()
        self._kept: deque[ProsodyFeatures] = deque(maxlen=self.config.keep_turns)
        self._pitches: list[float] = []

    @property
    def own_s(self) -> float:
        """Eligible voiced seconds behind the speaker's own baseline (at most the window)."""
        return min(self.config.baseline_voiced_s, sum(t.voiced_s for t in self._kept))

    @property
    def quality(self) -> float:
        return round(self.own_s / self.config.baseline_voiced_s, 2)

    @property
    def own_share(self) -> float:
        """How much the speaker's own turns weigh in the reference (the prior weighs the rest)."""
        return self.own_s / (self.own_s + self.config.prior_weight_s)

    def reference(self, own: dict[str, float] | None = None) -> dict[str, float]:
        """What a turn is compared with: the median of the speaker's kept turns, shrunk toward the
        population prior of their voice type by `prior_weight_s` of voiced speech (`own`: that
        median, when the caller has it already)."""
        voice = "low" if self._pitches and np.median(self._pitches) < VOICE_SPLIT_HZ else "high"
        prior = PRIORS[voice] if self._pitches else {k: v for k, v in PRIORS["low"].items()
                                                     if k != "pitch"}  # fmt: skip
        own = _median(self._kept) if own is None else own
        n, k = self.own_s, self.config.prior_weight_s
        ref = {
            name: (n * own[name] + k * value) / (n + k) if name in own else value
            for name, value in prior.items()
        }
        if "loudness" in own:  # the prior may only lower it: a quiet line is judged on its own
            ref["loudness"] = min(ref["loudness"], own["loudness"])
        return ref

    def update(self, f: ProsodyFeatures, text: str = "") -> Emotion:
        cfg = self.config
        in_period = self.own_s < cfg.settled_voiced_s
        if f.voiced_s < cfg.min_voiced_s or f.loudness_db is None:
            return Emotion("calm", 0.0, 0.0, in_period, self.quality)
        if f.pitch_hz is not None:
            self._pitches.append(f.pitch_hz)
        own = _median(self._kept)
        emotion = self._judge(f, self.reference(own), own.get("loudness"), in_period)
        eligible = f.voiced_s >= cfg.min_turn_voiced_s and not reads_numbers(text)
        filling = sum(t.voiced_s for t in self._kept) < cfg.baseline_voiced_s
        bar = cfg.period_join if in_period else LABEL_EDGES[0] if filling else cfg.calm_update
        if eligible and emotion.arousal < bar:
            self._kept.append(f)
        return emotion

    def _judge(
        self,
        f: ProsodyFeatures,
        base: dict[str, float],
        own_loudness: float | None,
        in_period: bool,
    ) -> Emotion:
        deltas: dict[str, float] = {}
        if f.pitch_hz is not None and "pitch" in base:
            deltas["pitch"] = semitones(f.pitch_hz) - base["pitch"]
        if f.pitch_range_st is not None:
            deltas["range"] = f.pitch_range_st - base["range"]
        if f.loudness_db is not None:
            deltas["loudness"] = f.loudness_db - base["loudness"]
        if f.rate_wps is not None:
            deltas["rate"] = f.rate_wps / base["rate"] - 1
        weight = sum(WEIGHTS[k][0] for k in deltas)
        own = self.own_share  # typical speech varies more than one speaker's: wider tolerances
        tolerance = {k: own * WEIGHTS[k][1] + (1 - own) * PRIOR_TOLERANCE[k] for k in deltas}
        if "loudness" in deltas and base["loudness"] == own_loudness:
            tolerance["loudness"] = WEIGHTS["loudness"][1]  # their own level, on their own line
        z = sum(WEIGHTS[k][0] * d / tolerance[k] for k, d in deltas.items()) / weight
        arousal = min(1.0, max(0.0, z / 2))
        margin = min(abs(arousal - edge) for edge in LABEL_EDGES)
        confidence = min(1.0, f.voiced_s / 1.5) * (0.5 + 0.5 * min(1.0, margin / 0.17))
        confidence *= weight  # features missing (no pitch, no timing) lower the confidence
        confidence *= 0.5 + 0.5 * self.quality  # against the prior alone, half as sure
        return Emotion(
            label=label_of(arousal),
            arousal=round(arousal, 3),
            confidence=round(confidence, 2),
            baseline=in_period,
            baseline_quality=self.quality,
            pitch_st=_r(deltas.get("pitch")),
            loudness_db=_r(deltas.get("loudness")),
            rate_pct=_r(100 * deltas["rate"]) if "rate" in deltas else None,
            range_st=_r(deltas.get("range")),
        )


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _median(turns: Sequence[ProsodyFeatures]) -> dict[str, float]:
    """Each feature's median over the turns that have it (robust to one odd turn)."""
    columns = {
        "pitch": [semitones(t.pitch_hz) for t in turns if t.pitch_hz is not None],
        "range": [t.pitch_range_st for t in turns if t.pitch_range_st is not None],
        "loudness": [t.loudness_db for t in turns if t.loudness_db is not None],
        "rate": [t.rate_wps for t in turns if t.rate_wps],
    }
    return {name: float(np.median(v)) for name, v in columns.items() if v}
