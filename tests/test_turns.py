"""A speaker's turn gathered from its finals (`pipeline.mood.turns`)."""

import pytest

from pipeline.mood.turns import Turn
from pipeline.types import Channel, TranscriptEvent, Word


def final(utterance: int, start: float, end: float, text: str, p: float) -> TranscriptEvent:
    words = tuple(Word(w, start, end, p) for w in text.split())
    return TranscriptEvent("c1", Channel.CUSTOMER, utterance, start, end, text, True, words=words)


def test_a_turn_gathers_its_finals():
    turn = Turn(1.0)
    turn.add(final(1, 1.0, 3.0, "i have been waiting since monday ", 0.9))
    turn.add(final(2, 3.5, 5.0, "and nobody called", 0.6))
    turn.arousals += [0.2, 0.6]
    assert turn.text == "i have been waiting since monday and nobody called"
    assert (turn.start, turn.end, turn.utterances) == (1.0, 5.0, [1, 2])
    assert turn.arousal == pytest.approx(0.4)
    assert turn.confidence == pytest.approx((6 * 0.9 + 3 * 0.6) / 9)


def test_a_turn_without_words_or_voice_knows_nothing():
    turn = Turn(0.0)
    turn.add(TranscriptEvent("c1", Channel.CUSTOMER, 1, 0.0, 1.0, "hm", True))
    assert turn.arousal is None and turn.confidence is None and turn.sentiment is None
