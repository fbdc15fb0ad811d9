"""Prosody measurement on signals of known pitch and level, and arousal against a baseline."""

import numpy as np
import pytest

from pipeline.mood.prosody import (
    ArousalTracker,
    ProsodyConfig,
    ProsodyFeatures,
    label_of,
    measure,
    reads_numbers,
)
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


def feats(pitch=115.0, loud=-26.0, rate=2.6, rng=5.0, voiced=2.0) -> ProsodyFeatures:
    """Defaults: the population prior of a low voice (typical calm telephone speech)."""
    return ProsodyFeatures(pitch, rng, loud, rate, voiced)


AGITATED = {"pitch": 140.0, "loud": -14.0, "rate": 3.3, "rng": 3.0}


def settled(tracker: ArousalTracker, turns: int = 13, **kw: float) -> ArousalTracker:
    for _ in range(turns):
        tracker.update(feats(**kw))
    return tracker


def test_a_typical_calm_voice_is_calm_from_the_first_turn():
    t = ArousalTracker()
    e = t.update(feats())
    assert e.baseline and e.baseline_quality == 0.0 and e.arousal == 0.0 and e.label == "calm"
    assert e.confidence < t.update(feats()).confidence + 0.5  # against the prior: less sure


def test_the_baseline_period_ends_after_settled_voiced_seconds_of_eligible_turns():
    t = ArousalTracker(ProsodyConfig(settled_voiced_s=4.0))
    assert t.update(feats(voiced=2.0)).baseline
    assert t.update(feats(voiced=0.8)).baseline  # too short to shape the baseline
    assert t.update(feats(voiced=2.0)).baseline  # 4 s now: the next turn is settled
    e = t.update(feats(voiced=2.0))
    assert not e.baseline and e.baseline_quality == 0.16  # 4 of 25 s


def test_arousal_against_a_full_own_baseline_is_the_documented_weighted_rise():
    """Once the speaker's own voice dominates, the tolerances are theirs (2 st, 3 dB, 15 %,
    3 st), blended with the prior's by the prior's remaining share."""
    t = settled(ArousalTracker(ProsodyConfig(prior_weight_s=1e-9)))
    up_2st = 115.0 * 2 ** (2 / 12)
    e = t.update(feats(pitch=up_2st, loud=-23.0, rate=2.6 * 1.15, rng=8.0))
    z = 0.35 * 2 / 2 + 0.35 * 3 / 3 + 0.20 * 0.15 / 0.15 + 0.10 * 3 / 3
    assert e.arousal == pytest.approx(z / 2, abs=2e-3)  # 0.5
    assert e.label == "tense" and e.baseline_quality == 1.0
    assert (e.pitch_st, e.loudness_db, e.rate_pct, e.range_st) == pytest.approx(
        (2.0, 3.0, 15.0, 3.0), abs=0.01
    )


def test_digit_reading_does_not_set_the_baseline():
    """A customer who opens by reading an account number (flat, slow, quiet) and then speaks
    normally is not judged aroused against the digits."""
    digits = {"pitch": 100.0, "loud": -33.0, "rate": 1.6, "rng": 1.5, "voiced": 5.0}
    t = ArousalTracker()
    for text in ("four four seven one, two nine nine zero", "it is 7 7 4 1 double 0 9"):
        t.update(feats(**digits), text)
    normal = [t.update(feats(), "and the bill says i owe three hundred pounds") for _ in range(8)]
    assert max(e.arousal for e in normal) < 0.15
    naive = ArousalTracker()  # the same turns without their words: the digits would set it
    for _ in range(2):
        naive.update(feats(**digits))
    assert naive.update(feats()).arousal > 0.33


def test_reads_numbers():
    assert reads_numbers("four four seven one two nine")
    assert reads_numbers("it's 4471 2990, sort code 20 44 91")
    assert reads_numbers("my postcode is s w one a two a a")
    assert not reads_numbers("i have called you three times about this bill")
    assert not reads_numbers("")


def test_a_quiet_line_is_judged_against_its_own_level():
    """A line 15 dB under typical: the prior must not pull the loudness reference up to it, or
    the speaker's raised voice on that line would read calm (the sample call's line)."""
    t = ArousalTracker()
    quiet = {"loud": -41.0, "rate": 2.0, "voiced": 2.5}
    t.update(feats(**quiet))
    t.update(feats(**quiet))
    assert t.reference()["loudness"] == pytest.approx(-41.0)
    raised = t.update(feats(pitch=125.0, loud=-34.0, rate=2.5, voiced=2.5))
    assert raised.loudness_db == pytest.approx(7.0) and raised.label != "calm", raised
    loud = ArousalTracker()  # a loud line: the prior still lowers the reference
    for _ in range(2):
        loud.update(feats(loud=-16.0, voiced=2.5))
    assert -26.0 < loud.reference()["loudness"] < -16.0


def test_an_agitated_turn_in_the_baseline_period_does_not_join_it():
    t = ArousalTracker()
    t.update(feats(voiced=2.5))
    e = t.update(feats(**AGITATED, voiced=2.5))
    assert e.baseline and e.arousal >= 0.5
    assert t.own_s == 2.5  # only the calm turn shapes the baseline


def test_one_odd_turn_does_not_move_a_median_baseline():
    t = ArousalTracker()
    t.update(feats(pitch=160.0, loud=-16.0, rate=3.5))  # one odd opening turn
    settled(t, 6)
    assert t.update(feats()).arousal < 0.1


def test_a_speaker_agitated_from_the_first_word_stays_aroused():
    """Their own baseline *is* the agitated voice; the prior keeps them compared with typical
    speech too, and agitated turns after the baseline period do not join the baseline."""
    t = ArousalTracker()
    judged = [t.update(feats(**AGITATED, voiced=3.0)) for _ in range(12)]
    assert judged[0].arousal >= 0.5 and judged[0].baseline
    assert all(e.arousal >= 0.33 for e in judged)  # tense at least, all call long
    calm_start = settled(ArousalTracker(), 12)
    assert calm_start.update(feats(**AGITATED)).arousal >= 0.66


def test_a_naturally_loud_fast_speaker_settles_to_calm():
    loud_line = {"pitch": 230.0, "loud": -19.0, "rate": 3.0, "rng": 6.0}
    t = ArousalTracker()
    judged = [t.update(feats(**loud_line, voiced=3.0)) for _ in range(12)]
    assert judged[0].arousal < 0.5  # against the prior, with its wider tolerances
    assert judged[-1].arousal < 0.2


def test_calm_turns_after_the_window_update_the_baseline_slowly():
    t = settled(ArousalTracker())
    before = t.reference()["loudness"]
    t.update(feats(loud=-24.0))  # one louder calm turn: the median holds
    assert t.reference()["loudness"] == before
    moved = []
    for _ in range(24):  # a calm speaker who became a little louder: the baseline follows
        t.update(feats(loud=-24.0))
        moved.append(t.reference()["loudness"])
    assert moved[-1] > before + 1.0 and moved == sorted(moved)
    t.update(feats(**AGITATED))  # aroused: does not join
    assert t.reference()["loudness"] == moved[-1]


def test_quieter_lower_slower_is_calm_not_negative():
    t = settled(ArousalTracker())
    e = t.update(feats(pitch=100.0, loud=-40.0, rate=1.5))
    assert e.arousal == 0.0 and e.label == "calm"


def test_missing_features_are_left_out_and_lower_the_confidence():
    t = settled(ArousalTracker())
    full = t.update(feats(loud=-20.0))
    no_pitch = t.update(ProsodyFeatures(None, None, -20.0, 2.6, 2.0))
    assert no_pitch.arousal > full.arousal  # loudness alone carries the whole weight
    assert no_pitch.confidence < full.confidence


def test_the_config_is_checked():
    with pytest.raises(ValueError):
        ProsodyConfig(baseline_voiced_s=5.0, settled_voiced_s=6.0)


def test_labels():
    assert [label_of(a) for a in (0.0, 0.329, 0.33, 0.659, 0.66, 1.0)] == [
        "calm",
        "calm",
        "tense",
        "tense",
        "agitated",
        "agitated",
    ]
