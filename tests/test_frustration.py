"""The frustration scorer driven by turn and signal sequences, against the documented formula."""

import pytest

from pipeline.mood.frustration import (
    FrustrationConfig,
    FrustrationScorer,
    evidence_rule,
    find_cues,
    read_sarcasm,
)
from pipeline.mood.sentiment import Sentiment


def sent(score: float) -> Sentiment:
    """A sentiment with P(positive) - P(negative) = score."""
    neg, pos = max(0.0, -score), max(0.0, score)
    return Sentiment.from_probs((neg, 1 - neg - pos, pos))


def decay(age: float, half_life: float = 30.0) -> float:
    return 0.5 ** (age / half_life)


def fuse(s=0.0, a=0.0, c=0.0, v=0.0) -> float:
    return 1 - (1 - 0.85 * s) * (1 - 0.85 * a) * (1 - c) * (1 - v)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("i want to cancel my contract", ["cancellation"]),
        ("if this isn't fixed i'm switching to a competitor", ["cancellation"]),
        ("let me speak to your supervisor please", ["escalation"]),
        ("can you transfer me to a manager", ["escalation"]),
        ("this is the third time i have called this week", ["repeat_contact"]),
        ("i already told the last person all of this", ["repeat_contact"]),
        (
            "i called you before about this and i want to cancel my account",
            ["cancellation", "repeat_contact"],
        ),
        ("this is absolutely ridiculous, nobody tells me anything", ["exasperation"]),
        ("honestly i am fed up with you people", ["exasperation"]),
        ("that's not good enough", ["exasperation"]),
        ("why on earth was my claim rejected", ["exasperation"]),
        ("oh great, another transfer, just what i needed", ["sarcasm"]),
        ("thanks a lot for nothing", ["sarcasm"]),
        ("great, i cannot wait to be disappointed again", ["sarcasm"]),
        ("brilliant, the engineer is late as usual", ["sarcasm"]),
        # near misses that must not fire
        ("great, that's exactly what i needed, thank you", []),
        ("wonderful, so it works again", []),
        ("perfect. nobody will need to call me then? great", []),
        ("the traffic this morning was ridiculous", []),
        ("it is not unacceptable at all, thank you", []),
        ("cancel the old order and place the new one, that's all", []),
        ("i do not want to cancel my account, just update the card", []),
        ("i don't need to speak to a manager, you've been great", []),
        ("the first time i used it, it worked", []),
        ("my manager asked me to call about the invoice", []),
    ],
)
def test_cues(text, kinds):
    assert sorted(k for k, _ in find_cues(text)) == sorted(kinds)


def test_positive_words_with_a_frustration_cue_read_as_sarcasm():
    glad = Sentiment.from_probs((0.05, 0.1, 0.85))
    flipped = read_sarcasm(glad, "oh wonderful, that is just perfect. third time now")
    assert (flipped.label, flipped.negative, flipped.positive) == ("negative", 0.85, 0.05)
    assert read_sarcasm(glad, "oh wonderful, that is just perfect, thank you") is glad
    angry = Sentiment.from_probs((0.9, 0.05, 0.05))  # already negative: left as it is
    assert read_sarcasm(angry, "this is the third time, unacceptable") is angry
    f = FrustrationScorer()  # and a sarcastic "thank you" does not resolve anything
    f.turn(1, 10.0, "nobody has fixed it", sent(-0.9), None)
    u = f.turn(
        2,
        20.0,
        "brilliant, another engineer who never came",
        read_sarcasm(sent(0.8), "brilliant, another engineer who never came"),
        None,
    )
    assert u.score > 0.6 and any(r.detail == "sarcasm" for r in u.reasons)


def recent(turns: list[tuple[float, float]], now: float) -> float:
    """The documented weighted mean of (time, value) turns, all of them customer turns: weights
    halve per later turn and per 30 s of age, after a neutral pseudo-turn."""
    n = len(turns)
    weights = [0.5 ** (n - 1 - k) * decay(now - t) for k, (t, _) in enumerate(turns)]
    return sum(w * v for w, (_, v) in zip(weights, turns, strict=True)) / (sum(weights) + 0.5**n)


def test_neutral_turns_stay_low():
    f = FrustrationScorer()
    for i, t in enumerate((5.0, 15.0, 25.0), start=1):
        u = f.turn(i, t, "my account number is four five six", sent(0.0), 0.0)
        assert (u.score, u.level, u.active, u.onset) == (0.0, "low", False, False)


def test_words_only_frustration_follows_recent_negativity():
    f = FrustrationScorer()
    turns = [(10.0, 0.9)]
    u1 = f.turn(1, 10.0, "this is not helpful at all", sent(-0.9), None)
    assert u1.score == pytest.approx(fuse(s=recent(turns, 10.0)), abs=1e-3)  # 0.9 / 1.5 -> 0.51
    assert u1.level == "elevated" and not u1.active  # one remark, even the first: elevated
    assert u1.components == {"sentiment": 0.51, "arousal": 0.0, "cues": 0.0, "conversation": 0.0}
    assert [r.kind for r in u1.reasons] == ["sentiment"] and u1.reasons[0].utterances == (1,)
    turns.append((20.0, 0.0))
    u2 = f.turn(2, 20.0, "okay, and when will it arrive", sent(0.0), None)
    assert u2.score == pytest.approx(fuse(s=recent(turns, 20.0)), abs=1e-3)
    assert u2.level == "low"
    turns.append((30.0, 0.9))
    u3 = f.turn(3, 30.0, "nobody ever fixes anything", sent(-0.9), None)
    assert u3.score == pytest.approx(fuse(s=recent(turns, 30.0)), abs=1e-3)
    assert u3.level == "elevated" and not u3.active
    turns.append((40.0, 0.8))
    u4 = f.turn(4, 40.0, "and still nothing works", sent(-0.8), None)
    assert u4.score == pytest.approx(fuse(s=recent(turns, 40.0)), abs=1e-3)
    assert u4.active and u4.onset and u4.level == "high"  # two in a row
    assert u4.reasons[0].utterances == (3, 4)


def test_hysteresis_keeps_frustration_between_off_and_on():
    f = FrustrationScorer(FrustrationConfig(on=0.6, off=0.4))
    f.turn(1, 10.0, "x", sent(-0.9), None)
    assert f.turn(2, 10.0, "x", sent(-0.9), None).active  # 0.655
    mid = f.turn(3, 10.0, "x", sent(-0.3), None)
    assert mid.score == pytest.approx(
        fuse(s=recent([(10, 0.9), (10, 0.9), (10, 0.3)], 10)), abs=1e-3
    )
    assert 0.4 <= mid.score < 0.6 and mid.active and not mid.onset and mid.level == "elevated"
    f2 = FrustrationScorer(FrustrationConfig(on=0.6, off=0.4))
    for i in range(1, 4):  # rises from low through elevated, never reaching on
        up = f2.turn(i, 10.0, "x", sent(-0.55), None)
    assert not up.active and up.level == "elevated"


def test_tone_only_frustration_comes_from_arousal():
    f = FrustrationScorer()
    f.turn(1, 5.0, "hi, i'm calling about my refund", sent(0.0), None)  # baseline turn
    u2 = f.turn(2, 10.0, "i need the refund today", sent(0.0), 0.8)
    assert u2.score == pytest.approx(fuse(a=0.8 / 1.25), abs=1e-3)  # 0.544: elevated
    assert not u2.active
    u3 = f.turn(3, 20.0, "just give me the reference number", sent(0.0), 0.8)
    w = 0.5 * decay(10.0)
    assert u3.score == pytest.approx(fuse(a=0.8 * (w + 1) / (w + 1 + 0.125)), abs=1e-3)
    assert u3.active and u3.onset
    assert [r.kind for r in u3.reasons] == ["arousal"] and u3.reasons[0].utterances == (2, 3)


def test_cues_raise_it_alone_and_fade_with_time():
    f = FrustrationScorer()
    u = f.turn(1, 10.0, "i want to cancel my contract", sent(0.0), 0.0)
    assert u.score == pytest.approx(0.7, abs=1e-3) and u.onset
    assert u.reasons[0].kind == "cue" and u.reasons[0].phrase == "cancel my contract"
    later = f.turn(2, 40.0, "okay", sent(0.0), 0.0)  # one half-life later
    assert later.components["cues"] == pytest.approx(0.35, abs=1e-3)
    assert not later.active


def test_a_clearly_positive_turn_halves_earlier_evidence():
    f = FrustrationScorer()
    f.turn(1, 10.0, "x", sent(-0.9), None)
    before = f.turn(2, 10.0, "this is the third time i have called", sent(-0.9), 1.0)
    u = f.turn(3, 10.0, "oh that's perfect, thank you so much", sent(0.9), 0.0)
    assert u.components["cues"] == pytest.approx(0.25, abs=1e-3)
    negativity = recent([(10, 0.45), (10, 0.45), (10, 0.0)], 10.0)
    assert u.components["sentiment"] == pytest.approx(0.85 * negativity, abs=1e-3)
    arousal = (0.5 * 0.5 + 0.0) / (0.5 + 1 + 0.125)  # turns 2 and 3 after the pseudo-turn
    assert u.components["arousal"] == pytest.approx(0.85 * arousal, abs=1e-3)
    assert before.score > 0.9 and u.score < 0.5 and u.level == "elevated"


def test_weak_evidence_of_several_kinds_adds_up():
    f = FrustrationScorer()
    u = f.turn(1, 10.0, "i already gave you my name", sent(-0.4), 0.4)
    expected = fuse(s=0.4 / 1.5, a=0.4 / 1.5, c=0.5)
    assert u.score == pytest.approx(expected, abs=1e-3) and u.active
    assert {r.kind for r in u.reasons} == {"sentiment", "arousal", "cue"}
    assert [r.contribution for r in u.reasons] == sorted(
        (r.contribution for r in u.reasons), reverse=True
    )


def test_signals_count_and_carry_their_reason():
    f = FrustrationScorer()
    u = f.signal("talkover", 12.0)
    assert u.score == pytest.approx(0.3, abs=1e-3) and u.trigger == "talkover"
    assert u.reasons[0].detail == "customer talked over the agent"
    u = f.signal("dead_air", 12.0)
    assert u.components["conversation"] == pytest.approx(1 - 0.7 * 0.85, abs=1e-3)


def test_onset_is_reported_once_per_episode():
    f = FrustrationScorer()
    updates = [
        f.turn(i, 10.0 * i, "x", sent(s), None)
        for i, s in enumerate([-0.9, -0.9, 0.9, 0.9, 0.9, -0.9, -0.95], start=1)
    ]
    assert [u.active for u in updates] == [False, True, False, False, False, False, True]
    assert [u.onset for u in updates] == [False, True, False, False, False, False, True]
    assert updates[5].level == "elevated"  # one complaint after the fix: elevated, two: high


def test_thresholds_are_validated():
    with pytest.raises(ValueError):
        FrustrationConfig(on=0.4, off=0.6)


def test_garbled_words_count_less():
    clean, garbled = FrustrationScorer(), FrustrationScorer()
    a = clean.turn(1, 10.0, "i want to cancel my contract", sent(-0.9), None, 0.9)
    b = garbled.turn(1, 10.0, "i want to cancel my contract", sent(-0.9), None, 0.65)
    assert a.components["sentiment"] == pytest.approx(0.85 * 0.9 / 1.5, abs=1e-3)
    assert b.components["sentiment"] == pytest.approx(0.85 * 0.9 * 0.5 / 1.5, abs=1e-3)
    assert a.components["cues"] == pytest.approx(0.7) and b.components["cues"] == pytest.approx(
        0.35
    )
    assert (
        garbled.turn(2, 20.0, "x", sent(0.0), None, 0.4).components["sentiment"]
        < b.components["sentiment"]
    )


@pytest.mark.parametrize(
    ("parts", "settled", "allows"),
    [
        ({"sentiment": 0.55}, True, "critical"),  # strong words alone
        ({"sentiment": 0.55, "pointed": False}, True, "coaching"),  # mild turns adding up
        ({"cues": 0.7}, False, "critical"),  # a manager request is strong words
        ({"sentiment": 0.3, "arousal": 0.5}, False, "critical"),  # words with voice
        ({"sentiment": 0.3, "conversation": 0.3}, True, "critical"),  # words with talk-over
        ({"sentiment": 0.3}, True, "coaching"),  # words alone, not strong
        ({"arousal": 0.8}, True, "coaching"),  # voice alone, however loud
        ({"arousal": 0.8, "conversation": 0.3}, True, "coaching"),
        ({"conversation": 0.5}, True, "coaching"),
        ({"arousal": 0.8}, False, "none"),  # voice alone in the baseline period
        ({"sentiment": 0.1, "arousal": 0.1}, True, "none"),
    ],
)
def test_evidence_rules(parts, settled, allows):
    full = {"sentiment": 0.0, "arousal": 0.0, "cues": 0.0, "conversation": 0.0} | parts
    pointed = bool(full.pop("pointed", True))
    got, why = evidence_rule(full, settled, pointed)
    assert got == allows and why


def test_voice_alone_never_allows_more_than_coaching():
    f = FrustrationScorer()
    for i in range(1, 6):
        u = f.turn(i, 5.0 * i, "i need the reference number", sent(0.0), 0.9)
    assert u.active and u.score >= 0.6
    assert (u.allows, u.evidence) == ("coaching", "voice alone: coaching at most")
    # the same voice with negative words supports a critical alert
    u = f.turn(6, 32.0, "nothing you have done has worked, nothing", sent(-0.8), 0.9)
    assert u.allows == "critical" and u.evidence == "words with voice"


def test_mildly_negative_turns_adding_up_allow_coaching_not_critical():
    """A calm customer describing a problem over several turns: each turn reads somewhat
    negative, the score climbs, but without a cue or a clearly angry turn it stays coaching."""
    f = FrustrationScorer()
    for i, score in enumerate((-0.8, -0.6, -0.88), start=1):
        u = f.turn(i, 10.0 * i, "should i try the payment again now", sent(score), None)
    assert u.score >= 0.6 and u.allows == "coaching", u
    u = f.turn(4, 40.0, "honestly, nothing you do ever works", sent(-0.95), None)
    assert (u.allows, u.evidence) == ("critical", "strong words")  # a clearly angry turn


def test_voice_in_the_baseline_period_raises_no_alert_alone():
    f = FrustrationScorer()
    for i in range(1, 4):
        u = f.turn(i, 5.0 * i, "my account number is four four seven", sent(0.0), 0.9, None, False)
    assert u.score >= 0.6 and u.allows == "none"
    u = f.turn(4, 20.0, "i need it fixed today", sent(0.0), 0.9, None, True)
    assert u.allows == "coaching"  # the settled turn is now most of the arousal that counts


def test_a_turn_in_several_finals_is_judged_once_on_its_whole_text():
    """The neutral first half and the angry second half of one turn are not two turns: the
    second final's (whole-turn) judgement replaces the first's, and the turn counts once."""
    pieces = FrustrationScorer()
    pieces.turn(1, 5.0, "i have been waiting since monday", sent(0.0), None)
    split = pieces.turn(2, 8.0, "and nobody has called me back", sent(-0.9), None)
    whole = FrustrationScorer()
    whole.turn(1, 5.0, "i have been waiting since monday", sent(0.0), None)
    joined = whole.turn(2, 8.0, "and nobody has called me back", sent(-0.9), None, continues=True)
    assert joined.score > split.score  # no neutral piece dilutes the turn
    assert joined.components["sentiment"] == pytest.approx(0.85 * 0.9 / 1.5, abs=1e-3)
    nxt = whole.turn(3, 20.0, "okay", sent(0.0), None)  # the next turn halves it once
    assert nxt.components["sentiment"] < joined.components["sentiment"]


def test_a_positive_turn_in_several_finals_halves_the_evidence_once():
    f = FrustrationScorer()
    f.turn(1, 5.0, "nothing works", sent(-0.9), None)
    before = f.turn(2, 8.0, "i want to speak to a manager", sent(-0.9), None, continues=True)
    f.turn(3, 12.0, "oh that is great", sent(0.9), None)
    once = f.turn(4, 14.0, "thank you so much", sent(0.95), None, continues=True)
    halved = before.components["cues"] / 2 * decay(6.0)  # halved once, and 6 s older
    assert once.components["cues"] == pytest.approx(halved, abs=2e-3)
