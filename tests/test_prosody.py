"""Prosody measurement on signals of known pitch and level, and arousal against a baseline."""

import math

import numpy as np
import pytest

from pipeline.mood.prosody import ArousalTracker, ProsodyConfig, ProsodyFeatures, label_of, measure
from pipeline.types import Word

SR = 16000


def voice(f0: float, seconds: float = 2.0, amplitude: float = 0.1, glide: float = 0.0):
    """A voiced-speech stand-in: a harmonic tone at f0 (gliding by `glide` semitones)."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * 2 ** (glide * t / seconds / 12)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (amplitude * x / np.max(np.abs(x))).astype(np.float32)


def words(n: int, span: float) -> list[Word]:
    return [Word(f"w{i}", i * span / n, (i + 1) * span / n) for i in range(n)]


@pytest.mark.parametrize("f0", [90.0, 150.0, 240.0])
def test_pitch_is_found(f0):
    f = measure(voice(f0))
    assert f.pitch_hz == pytest.approx(f0, rel=0.03)
    assert f.pitch_range_st < 0.5


def test_pitch_range_follows_a_glide():
    f = measure(voice(120.0, glide=6.0))
    assert 3.5 < f.pitch_range_st < 6.0  # 10th to 90th percentile of a 6-semitone glide


def test_loudness_rises_6_db_when_the_amplitude_doubles():
    quiet, loud = measure(voice(150.0, amplitude=0.05)), measure(voice(150.0, amplitude=0.1))
    assert loud.loudness_db - quiet.loudness_db == pytest.approx(6.02, abs=0.05)


def test_rate_comes_from_word_timings():
    assert measure(voice(150.0), words(6, 2.0)).rate_wps == 3.0
    assert measure(voice(150.0), words(1, 2.0)).rate_wps is None


def test_silence_has_no_pitch_or_loudness():
    f = measure(np.zeros(SR, dtype=np.float32))
    assert (f.pitch_hz, f.loudness_db, f.voiced_s) == (None, None, 0.0)


def feats(pitch=120.0, loud=-30.0, rate=2.5, rng=4.0, voiced=2.0) -> ProsodyFeatures:
    return ProsodyFeatures(pitch, rng, loud, rate, voiced)


def test_baseline_is_learnt_from_the_first_voiced_seconds():
    t = ArousalTracker(ProsodyConfig(baseline_voiced_s=3.0))
    assert t.update(feats(voiced=2.0)).baseline
    assert t.update(feats(pitch=130.0, voiced=0.2)).baseline  # too little voice: not used
    assert t.update(feats(voiced=1.5)).baseline  # 3.5 s: the baseline is set
    e = t.update(feats())
    assert not e.baseline and e.arousal == 0.0 and e.label == "calm"
    assert t.base == pytest.approx(
        {"pitch": 12 * math.log2(1.2), "range": 4.0, "loudness": -30.0, "rate": 2.5}
    )


def test_arousal_is_the_documented_weighted_rise_over_the_baseline():
    t = ArousalTracker(ProsodyConfig(baseline_voiced_s=2.0))
    t.update(feats())
    up_2st = 120.0 * 2 ** (2 / 12)
    e = t.update(feats(pitch=up_2st, loud=-27.0, rate=2.5 * 1.15, rng=7.0))
    z = 0.35 * 2 / 2 + 0.35 * 3 / 3 + 0.20 * 0.15 / 0.15 + 0.10 * 3 / 3
    assert e.arousal == pytest.approx(z / 2, abs=1e-3)  # 0.5
    assert e.label == "tense"
    assert (e.pitch_st, e.loudness_db, e.rate_pct, e.range_st) == (2.0, 3.0, 15.0, 3.0)


def test_quieter_lower_slower_is_calm_not_negative():
    t = ArousalTracker(ProsodyConfig(baseline_voiced_s=2.0))
    t.update(feats())
    e = t.update(feats(pitch=100.0, loud=-40.0, rate=1.5))
    assert e.arousal == 0.0 and e.label == "calm"


def test_missing_features_are_left_out_and_lower_the_confidence():
    t = ArousalTracker(ProsodyConfig(baseline_voiced_s=2.0))
    t.update(feats())
    full = t.update(feats(loud=-24.0))
    no_pitch = t.update(ProsodyFeatures(None, None, -24.0, 2.5, 2.0))
    assert no_pitch.arousal > full.arousal  # loudness alone carries the whole weight
    assert no_pitch.confidence < full.confidence


def test_labels():
    assert [label_of(a) for a in (0.0, 0.329, 0.33, 0.659, 0.66, 1.0)] == [
        "calm",
        "calm",
        "tense",
        "tense",
        "agitated",
        "agitated",
    ]
