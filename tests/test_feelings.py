"""Feelings of a turn (zero-shot): the real encoder, sentiment probabilities and voice."""

from __future__ import annotations

import pytest

from pipeline.assist.embed import SentenceEncoder
from pipeline.assist.feelings import EXAMPLES, FEELINGS, FeelingJudge

NEG, NEU, POS = (0.9, 0.08, 0.02), (0.05, 0.9, 0.05), (0.02, 0.08, 0.9)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture(scope="module")
def judge(encoder) -> FeelingJudge:
    return FeelingJudge(encoder.encode(FeelingJudge.all_examples()))


def feel(judge, encoder, text, probs, arousal=None):
    return judge.judge(encoder.encode([text])[0], probs, arousal)


@pytest.mark.parametrize(
    ("text", "probs", "label"),
    [  # lines unlike the examples, each judged as a whole turn
        ("i'm scared the landlord will evict us if this payment doesn't land", NEG, "anxious"),
        ("hang on, so which form am i meant to fill in, the blue one?", NEG, "confused"),
        ("oh brilliant, that's a huge relief, i can finally sleep tonight", POS, "relieved"),
        ("wonderful, thanks for your help today", POS, "satisfied"),
        ("the reference on the letter is b seven seven two", NEU, "neutral"),
        ("third week without a working phone line and still no engineer", NEG, "frustrated"),
    ],
)
def test_feelings_of_turns(judge, encoder, text, probs, label):
    got = feel(judge, encoder, text, probs)
    assert got.label == label, got.scores
    assert set(got.scores) == set(FEELINGS) and got.confidence == got.scores[label]


def test_the_sentiment_keeps_each_feeling_on_its_side(judge, encoder):
    text = "i was so worried about this"  # worry, or relief that it is over: the sentiment decides
    assert feel(judge, encoder, text, NEG).label == "anxious"
    assert feel(judge, encoder, text, POS).label in ("relieved", "satisfied")


def test_a_raised_voice_leans_to_angry(judge, encoder):
    text = "this is the worst service i have ever had"
    calm = feel(judge, encoder, text, NEG, arousal=0.0)
    raised = feel(judge, encoder, text, NEG, arousal=0.8)
    assert calm.label != "angry"
    assert raised.scores["angry"] > 2 * calm.scores["angry"]


def test_examples_by_name_or_stacked_are_the_same(judge, encoder):
    by_name = FeelingJudge({f: encoder.encode(list(EXAMPLES[f])) for f in FEELINGS})
    v = encoder.encode(["i need this sorted today please"])[0]
    assert by_name.judge(v, NEG).scores == judge.judge(v, NEG).scores
