"""The sample call through the real gateway, real whisper base and real Redis."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.conftest import SAMPLE_CALL_ID as CALL_ID
from tests.conftest import SAMPLES, script_lines, wer


@pytest.fixture(scope="module")
def streamed(sample_streamed):
    return sample_streamed


def transcripts(events):
    return [e for e in events if e["type"] == "transcript"]


def finals_of(events, channel=None):
    return [
        e
        for e in transcripts(events)
        if e["final"] and (channel is None or e["channel"] == channel)
    ]


@pytest.mark.parametrize("channel", ["customer", "agent"])
def test_per_channel_wer_against_the_script(streamed, channel):
    result = streamed[0]
    reference = " ".join(text for who, text in script_lines() if who == channel)
    hypothesis = " ".join(e["text"] for e in finals_of(result.events, channel))
    assert wer(reference, hypothesis) <= 0.15, hypothesis


def test_call_ends_cleanly(streamed):
    result = streamed[0]
    assert result.close_code == 1000
    assert result.stopped["finals"] == len(finals_of(result.events)) == len(script_lines())


MOOD_TYPES = {
    "sentiment", "turn_sentiment", "emotion", "talk_stats", "frustration", "talkover", "dead_air"
}  # fmt: skip


def test_every_event_has_the_envelope(streamed):
    for e in streamed[0].events:
        assert e["v"] == 1 and e["call_id"] == CALL_ID and isinstance(e["seq"], int)
        assert e["type"] in {"transcript", "alert", "suggestions", "feeling"} | MOOD_TYPES
        assert e["channel"] in ("customer", "agent")
        assert 0 <= e["start"] <= e["end"] <= 73
    for e in transcripts(streamed[0].events):
        assert isinstance(e["text"], str) and isinstance(e["final"], bool)


def test_interims_precede_finals_and_commit_only_grows(streamed):
    events = transcripts(streamed[0].events)
    by_utt: dict[tuple[str, int], list[dict]] = {}
    for e in events:
        by_utt.setdefault((e["channel"], e["utterance"]), []).append(e)
    with_interims = 0
    for seq in by_utt.values():
        kinds = [e["final"] for e in seq]
        assert kinds.count(True) == 1 and kinds[-1] is True  # interims, then one final
        interims = seq[:-1]
        with_interims += bool(interims)
        committed = ""
        for e in interims:
            assert e["committed"].startswith(committed)  # a committed word never changes
            committed = e["committed"]
        assert seq[-1]["text"].startswith(committed)
    assert with_interims >= len(by_utt) // 2


def test_spans_are_monotonic(streamed):
    seqs = [e["seq"] for e in streamed[0].events]
    assert seqs == sorted(set(seqs))
    events = transcripts(streamed[0].events)
    for channel in ("customer", "agent"):
        finals = finals_of(events, channel)
        for a, b in itertools.pairwise(finals):
            assert a["end"] <= b["start"]
        for f in finals:
            starts = [w["start"] for w in f["words"]]
            assert starts == sorted(starts)
            assert all(
                f["start"] - 0.05 <= w["start"] <= w["end"] <= f["end"] + 0.05 for w in f["words"]
            )


def test_everything_sent_on_the_socket_was_published(streamed):
    result, published = streamed[0], streamed[1]
    assert [e["seq"] for e in published] == [e["seq"] for e in result.events]


def test_late_subscriber_recovers_the_whole_transcript(streamed):
    result, late = streamed[0], streamed[2]
    late_finals = [(e["seq"], e["text"]) for e in finals_of(late)]
    assert late_finals == [(e["seq"], e["text"]) for e in finals_of(result.events)]
    seqs = [e["seq"] for e in late]
    assert seqs == sorted(set(seqs))  # each event once, in order
    mood = lambda evs: [(e["seq"], e["type"]) for e in evs if e["type"] in MOOD_TYPES]  # noqa: E731
    assert mood(late) == mood(result.events)  # stored mood before the join, live after it


def test_call_state_is_stored_and_expires(streamed, settings):
    result, _, _, meta, stored, ttls, active = streamed
    assert meta["status"] == "ended" and meta["agent_id"] == "demo-agent"
    assert stored == finals_of(result.events)
    last = [e for e in result.events if e["type"] == "frustration"][-1]
    assert json.loads(meta["frustration"]) == last  # the newest mood, for panels joining late
    assert json.loads(meta["sentiment:customer"])["channel"] == "customer"
    assert all(0 < t <= settings.call_ttl_s for t in ttls)
    assert CALL_ID not in active


# --- mood on the sample call: the customer gets annoyed (turns 2-4) and calms down (5-6) -------
def customer_script():
    """(tone, text) of the customer's turns, in order."""
    out = []
    for line in (SAMPLES / "sample_call.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            speaker, tone, text = line.split("\t")
            if speaker == "customer":
                out.append((tone, text))
    return out


def by_utterance(events, kind, channel="customer"):
    return {e["utterance"]: e for e in events if e["type"] == kind and e["channel"] == channel}


def test_every_final_gets_its_mood_after_it(streamed):
    events = streamed[0].events
    for f in finals_of(events):
        after = [e for e in events if e["seq"] > f["seq"]]
        for kind in ("sentiment", "emotion", "talk_stats"):
            assert any(
                e["type"] == kind
                and e["channel"] == f["channel"]
                and e.get("utterance", f["utterance"]) == f["utterance"]
                for e in after
            ), (kind, f["text"])


def test_customer_sentiment_follows_the_script(streamed):
    sentiment = by_utterance(streamed[0].events, "sentiment")
    tones = [tone for tone, _ in customer_script()]
    assert len(sentiment) == len(tones) == 6
    annoyed = []
    for n, tone in enumerate(tones, start=1):
        e = sentiment[n]
        assert set(e["probs"]) == {"negative", "neutral", "positive"}
        assert abs(sum(e["probs"].values()) - 1) < 1e-2 and -1 <= e["score"] <= 1
        if tone == "annoyed":
            annoyed.append(e["label"])
    # The model reads two of the three annoyed turns as negative; the conditional cancellation
    # threat ("if it is not fixed today i want to cancel my contract") it reads as neutral, and
    # the cancellation cue carries that turn into the frustration score instead.
    assert annoyed.count("negative") >= 2 and "positive" not in annoyed
    assert sentiment[5]["label"] == "positive"  # okay, thank you, i really appreciate that
    assert sentiment[4]["rolling"] < sentiment[5]["rolling"]  # the mood turns
    assert sentiment[5]["trend"] > 0


def test_each_customer_turn_gets_a_feeling(streamed):
    events = streamed[0].events
    turns = [e for e in events if e["type"] == "turn_sentiment" and e["channel"] == "customer"]
    feelings = {tuple(e["utterances"]): e for e in events if e["type"] == "feeling"}
    assert set(feelings) == {tuple(t["utterances"]) for t in turns}  # one per customer turn
    tones = [tone for tone, _ in customer_script()]
    negative = {"angry", "frustrated", "anxious", "confused", "disappointed"}
    for t in turns:
        f = feelings[tuple(t["utterances"])]
        assert f["channel"] == "customer" and 0 < f["confidence"] <= 1
        assert f["confidence"] == max(f["scores"].values())
        if t["score"] < -0.5:  # a clearly negative turn feels negative, whatever its words
            assert f["label"] in negative, (t, f)
    thanks = feelings[(tones.index("calm", 1) + 1,)]  # "okay, thank you, i really appreciate that"
    assert thanks["label"] in ("satisfied", "relieved"), thanks


def test_customer_tone_is_judged_against_their_own_start(streamed):
    emotion = by_utterance(streamed[0].events, "emotion")
    assert emotion[1]["baseline"] is True  # the first turn sets the baseline
    for n, (tone, _) in enumerate(customer_script(), start=1):
        if n == 1:
            continue
        e = emotion[n]
        if tone == "annoyed":
            assert e["label"] in ("tense", "agitated") and e["relative"]["loudness_db"] > 3, e
        else:
            assert e["label"] == "calm", e
        assert e["features"]["pitch_hz"] and e["features"]["loudness_db"] < 0


def test_frustration_rises_with_reasons_and_falls(streamed):
    events = streamed[0].events
    frustration = [e for e in events if e["type"] == "frustration"]
    assert all(e["channel"] == "customer" and 0 <= e["score"] <= 1 for e in frustration)
    per_turn = by_utterance(events, "frustration")
    assert per_turn[1]["active"] is False  # "hi, my internet keeps dropping every evening"
    onsets = [e for e in frustration if e["onset"]]
    assert len(onsets) == 1 and onsets[0]["utterance"] == 2  # "this is the third time ..."
    kinds = {r["kind"] for r in onsets[0]["reasons"]}
    assert {"cue", "sentiment", "arousal"} <= kinds
    assert any(r["detail"] == "repeat contact" for r in onsets[0]["reasons"])
    text4 = [f["text"] for f in finals_of(events, "customer")][3]
    assert per_turn[4]["active"] and any(
        r["detail"] == "cancellation" for r in per_turn[4]["reasons"]
    ), text4
    # "okay, thank you, i really appreciate that" halves the evidence; by the goodbye it is over
    assert per_turn[5]["score"] < 0.6 and per_turn[5]["level"] != "high"
    assert per_turn[6]["active"] is False and per_turn[6]["level"] == "low"


def test_talk_stats_add_up(streamed):
    stats = [e for e in streamed[0].events if e["type"] == "talk_stats"][-1]
    parties = stats["parties"]
    assert abs(parties["customer"]["share"] + parties["agent"]["share"] - 1) < 0.01
    assert 25 < parties["customer"]["talk_s"] + parties["agent"]["talk_s"] < 72
    words = {c: sum(len(f["words"]) for f in finals_of(streamed[0].events, c)) for c in parties}
    assert {c: p["words"] for c, p in parties.items()} == words
    assert all(100 < p["wpm"] < 220 for p in parties.values())
    assert stats["overlap_s"] == 0  # the script never has both talk at once
