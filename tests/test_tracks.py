"""Two tracks that arrive apart, aligned by position: order, holes, late and missing tracks."""

import numpy as np
import pytest

from gateway.tracks import TrackAligner, TrackJump


def tone(n: int, value: int) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def test_lockstep_tracks_come_out_as_they_go_in():
    a = TrackAligner(8000)
    a.put(0, tone(160, 1), 0)
    assert len(a.pop()) == 0, "the agent's track has not reached this point yet"
    a.put(1, tone(160, 2), 0)
    out = a.pop()
    assert out.shape == (160, 2) and (out[:, 0] == 1).all() and (out[:, 1] == 2).all()
    assert a.gap_samples == a.late_samples == 0


def test_out_of_order_chunks_are_put_in_place():
    a = TrackAligner(8000)
    for c in (0, 1):
        a.put(c, tone(160, 3), 160)  # the second chunk first
    assert len(a.pop()) == 0, "the first 20 ms are still expected"
    for c in (0, 1):
        a.put(c, tone(160, 1), 0)
    out = a.pop()
    assert len(out) == 320 and list(out[::160, 0]) == [1, 3]
    assert a.gap_samples == 0


def test_a_hole_becomes_silence_once_the_other_side_is_far_ahead():
    a = TrackAligner(8000, hold_s=0.1)  # 800 samples
    a.put(0, tone(160, 1), 0)
    a.put(1, tone(160, 1), 0)
    a.pop()
    a.put(0, tone(160, 5), 480)  # 320 samples of the customer lost
    a.put(1, tone(640, 1), 160)
    assert len(a.pop()) == 0, "the hole is held open for a late packet"
    a.put(1, tone(800, 1), 800)  # the agent is now 1440 samples in: 960 ahead of the hole
    out = a.pop()
    assert len(out) == 1600 - 800 - 160
    assert (out[:320, 0] == 0).all() and (out[320:480, 0] == 5).all()
    assert a.gap_samples >= 320


def test_late_audio_is_dropped_and_counted():
    a = TrackAligner(8000)
    for c in (0, 1):
        a.put(c, tone(320, 1), 0)
    assert len(a.pop()) == 320
    a.put(0, tone(160, 9), 160)
    assert a.late_samples == 160
    assert len(a.pop()) == 0


def test_an_absent_track_holds_nothing_up():
    a = TrackAligner(8000, tracks=[0])
    a.put(0, tone(160, 1))
    assert len(a.pop()) == 160, "only the customer's track was announced"
    a = TrackAligner(8000)
    a.put(0, tone(160, 1))
    a.put(0, tone(160, 2))
    a.put(1, tone(160, 4))
    assert len(a.pop()) == 160, "until the agent's leg goes on"
    a.end(1)
    out = a.pop()
    assert len(out) == 160 and (out[:, 0] == 2).all() and (out[:, 1] == 0).all()


def test_a_leg_that_joins_late_starts_where_the_call_is():
    a = TrackAligner(8000, hold_s=0.02)  # 160 samples
    a.put(0, tone(800, 1))
    first = a.pop()
    assert len(first) == 640, "the missing leg is waited for only hold_s"
    assert a.join(1) == 640, "the earliest position not yet emitted"
    a.put(1, tone(160, 7))
    a.put(0, tone(160, 1))
    out = a.flush()
    assert (out[:160, 1] == 7).all() and (out[160:, 1] == 0).all()


def test_an_expected_leg_that_comes_in_time_starts_with_the_call():
    a = TrackAligner(8000, hold_s=0.3)
    a.put(0, tone(800, 1))
    assert len(a.pop()) == 0, "held for the agent's leg"
    assert a.join(1) == 0
    a.put(1, tone(800, 2))
    out = a.pop()
    assert len(out) == 800 and (out[:, 1] == 2).all(), "both legs from sample 0"


def test_flush_emits_everything():
    a = TrackAligner(8000)
    a.put(0, tone(100, 1), 0)
    a.put(1, tone(50, 1), 0)
    assert len(a.pop()) == 50
    assert len(a.flush()) == 50


def test_a_chunk_placed_far_ahead_is_refused_before_it_sizes_anything():
    a = TrackAligner(8000, max_ahead_s=10.0)
    a.put(0, tone(160, 1), start=0)
    a.put(1, tone(160, 2), start=8000 * 9)  # 9 s ahead: a gap, held open, then silence
    with pytest.raises(TrackJump, match="ahead of the call"):
        a.put(0, tone(160, 3), start=8000 * 600)  # 10 minutes: refused, nothing allocated
    with pytest.raises(TrackJump):
        a.put(0, tone(160, 3), start=2**50)
    assert len(a.flush()) == 8000 * 9 + 160
