"""Conversation signals from VAD event sequences: exact samples in, exact signals out."""

import pytest

from pipeline.mood.conversation import ConversationConfig, ConversationTracker, Signal, SignalKind
from pipeline.types import Channel, VadEvent, VadEventKind

R = 1000  # a round sample rate keeps the expectations readable
C, A = Channel.CUSTOMER, Channel.AGENT
TALKOVER, DEAD_AIR = SignalKind.TALKOVER, SignalKind.DEAD_AIR


def start(voiced: float, forced: bool = False) -> VadEvent:
    return VadEvent(VadEventKind.START, round(voiced * R), forced=forced, voiced=round(voiced * R))


def end(voiced: float, forced: bool = False) -> VadEvent:
    return VadEvent(
        VadEventKind.END, round(voiced * R) + 300, forced=forced, voiced=round(voiced * R)
    )


def tracker(**kw) -> ConversationTracker:
    return ConversationTracker(ConversationConfig(rate=R, **kw))


def s(seconds: float) -> int:
    return round(seconds * R)


def test_talkover_is_raised_once_live_then_closed_with_its_duration():
    t = tracker(talkover_min_s=1.0)
    assert t.vad(C, [start(0.0)]) == []
    assert t.advance(s(3.0), {C: s(3.0)}) == []
    assert t.vad(A, [start(3.0)]) == []
    assert t.advance(s(3.9), {C: s(3.9), A: s(3.9)}) == []  # 0.9 s of overlap: not yet
    live = t.advance(s(4.0), {C: s(4.0), A: s(4.0)})
    assert live == [Signal(TALKOVER, A, s(3.0), s(4.0), False)]  # the agent cut in
    assert t.advance(s(4.5), {C: s(4.5), A: s(4.5)}) == []  # raised once
    closed = t.vad(C, [end(5.0)])
    assert closed == [Signal(TALKOVER, A, s(3.0), s(5.0), True)]
    assert t.vad(A, [end(6.0)]) == []
    stats = t.stats()
    assert stats.parties[A].interruptions == 1 and stats.parties[C].interruptions == 0
    assert stats.overlap_s == 2.0


def test_live_overlap_is_measured_on_voiced_frames_not_the_vad_hangover():
    t = tracker(talkover_min_s=1.0)
    t.vad(C, [start(0.0)])
    t.vad(A, [start(2.5)])
    # the customer stopped voicing at 3.0 but is still "speaking" in the VAD's hang-over
    assert t.advance(s(3.6), {C: s(3.0), A: s(3.6)}) == []
    assert t.vad(C, [end(3.0)]) == []  # 0.5 s of overlap: not a talk-over
    assert t.stats().overlap_s == 0.5


def test_the_customer_interrupting_is_attributed_to_the_customer():
    t = tracker(talkover_min_s=0.5)
    t.vad(A, [start(1.0)])
    t.vad(C, [start(2.0)])
    assert t.vad(A, [end(4.0)]) == [Signal(TALKOVER, C, s(2.0), s(4.0), True)]


def test_dead_air_after_the_customer_spoke_expects_the_agent():
    t = tracker(dead_air_min_s=5.0)
    t.vad(C, [start(1.0)])
    t.advance(s(3.0), {C: s(3.0)})
    t.vad(C, [end(3.0)])
    assert t.advance(s(7.9), {}) == []
    assert t.advance(s(8.0), {}) == [Signal(DEAD_AIR, A, s(3.0), s(8.0), False)]
    assert t.advance(s(9.0), {}) == []
    assert t.vad(A, [start(10.0)]) == [Signal(DEAD_AIR, A, s(3.0), s(10.0), True)]
    assert t.stats().dead_air_s == 7.0


def test_dead_air_at_the_start_expects_the_agent_and_closes_at_the_end():
    t = tracker(dead_air_min_s=2.0)
    assert t.advance(s(2.0), {}) == [Signal(DEAD_AIR, A, 0, s(2.0), False)]
    assert t.close(s(3.0)) == [Signal(DEAD_AIR, A, 0, s(3.0), True)]


def test_close_ends_speech_in_progress_and_its_talkover():
    t = tracker(talkover_min_s=1.0)
    t.vad(C, [start(0.0)])
    t.vad(A, [start(1.0)])
    signals = t.close(s(4.0))
    assert signals == [Signal(TALKOVER, A, s(1.0), s(4.0), True)]
    assert t.stats().parties[C].talk_s == 4.0 and t.stats().parties[A].talk_s == 3.0


def test_a_max_length_cut_does_not_split_the_speech():
    t = tracker(dead_air_min_s=0.1)
    t.vad(C, [start(0.0), end(20.0, forced=True), start(20.0, forced=True)])
    t.advance(s(25.0), {C: s(25.0)})
    t.vad(C, [end(25.0)])
    assert t.stats().parties[C].talk_s == 25.0


def test_stats_give_shares_words_and_words_per_minute():
    t = tracker()
    t.vad(C, [start(0.0), end(30.0)])
    t.vad(A, [start(31.0), end(41.0)])
    t.add_words(C, 60)
    t.add_words(A, 25)
    t.advance(s(42.0), {})
    stats = t.stats()
    assert stats.parties[C].share == pytest.approx(0.75)
    assert stats.parties[A].share == pytest.approx(0.25)
    assert stats.parties[C].wpm == 120.0 and stats.parties[A].wpm == 150.0
    assert stats.at_s == 42.0
