"""The rule engine: each rule type driven by event sequences, cooldowns, and refused files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.assist.rules import (
    DEFAULT_RULES,
    Match,
    Rule,
    RuleEngine,
    RulesError,
    RuleType,
    Severity,
    load_rules,
)
from pipeline.types import (
    Channel,
    EmotionEvent,
    FeelingEvent,
    FrustrationEvent,
    FrustrationReason,
    SignalEvent,
    TranscriptEvent,
    TurnSentimentEvent,
)


def final(text, utterance=1, start=0.0, end=2.0, channel="customer"):
    return TranscriptEvent("c1", Channel[channel.upper()], utterance, start, end, text, True)


def sentiment(score, utterance, start, channel="customer"):
    return TurnSentimentEvent(call_id="c1", channel=Channel[channel.upper()], start=start,
                              end=start + 2, utterances=(utterance,), label="",
                              probs=(0.0, 0.0, 0.0), score=score)  # fmt: skip


def frustration(score, end, utterance=None, allows="critical", evidence=""):
    reasons = (FrustrationReason("sentiment", 0.0, ""),)
    return FrustrationEvent(call_id="c1", channel=Channel.CUSTOMER, start=end - 2, end=end,
                            score=score, level="", active=False, onset=False, components={},
                            reasons=reasons, trigger="", utterance=utterance, allows=allows,
                            evidence=evidence)  # fmt: skip


def emotion(arousal, utterance, start, baseline=False, channel="customer"):
    return EmotionEvent(call_id="c1", channel=Channel[channel.upper()], start=start,
                        end=start + 2, utterance=utterance, label="tense", arousal=arousal,
                        confidence=0.8, baseline=baseline, pitch_hz=None, pitch_range_st=None,
                        loudness_db=None, rate_wps=None, relative={})  # fmt: skip


def signal(kind, start, end, channel="customer"):
    return SignalEvent(call_id="c1", channel=Channel[channel.upper()], start=start, end=end,
                       kind=kind, final=True)  # fmt: skip


def engine(**fields) -> RuleEngine:
    fields.setdefault("id", "r")
    fields.setdefault("severity", Severity.COACHING)
    fields.setdefault("prompt", "do something")
    return RuleEngine("c1", [Rule(**fields)])


def test_the_shipped_rules_load():
    rules = load_rules(DEFAULT_RULES)
    assert {r.type for r in rules} == set(RuleType)
    assert {r.severity for r in rules} == set(Severity)
    assert all(r.prompt for r in rules)


def test_phrase_exact_is_whole_words_any_case():
    rules = load_rules(DEFAULT_RULES)
    e = RuleEngine("c1", [r for r in rules if r.id == "agent-blames-customer"])
    assert e.feed(final("Sir, calm down please.", channel="agent"))
    assert not e.feed(final("i will stay calm, downstairs", channel="agent", start=100, end=101))
    assert not e.feed(final("calm down", channel="customer", start=200, end=201))


def test_phrase_regex_with_its_evidence():
    rules = [r for r in load_rules(DEFAULT_RULES) if r.id == "repeat-contact"]
    alerts = RuleEngine("c1", rules).feed(
        final("This is the third time I have called.", utterance=2, start=10, end=13)
    )
    assert len(alerts) == 1
    a = alerts[0].to_dict()
    assert a["type"] == "alert" and a["rule"] == "repeat-contact"
    assert a["severity"] == "coaching" and a["channel"] == "customer"
    assert a["start"] == 10 and a["end"] == 13
    assert a["evidence"] == [{"detail": "said 'third time' ('\\\\b(second|third|fourth|fifth) "
                              "time\\\\b')", "start": 10, "end": 13, "utterance": 2,
                              "text": "This is the third time I have called."}]  # fmt: skip


def test_sentiment_needs_consecutive_turns():
    e = engine(type=RuleType.SENTIMENT, below=-0.3, turns=2, cooldown_s=0)
    assert not e.feed(sentiment(-0.9, 1, 0))
    assert not e.feed(sentiment(0.1, 2, 5))  # the streak breaks
    assert not e.feed(sentiment(-0.5, 3, 10))
    assert not e.feed(sentiment(-0.9, 1, 11, channel="agent"))  # the other party
    (alert,) = e.feed(sentiment(-0.4, 4, 15))
    assert [ev.utterance for ev in alert.evidence] == [3, 4]
    assert alert.start == 10 and alert.end == 17
    assert not e.feed(sentiment(-0.4, 5, 20))  # a new streak starts from zero
    assert e.feed(sentiment(-0.4, 6, 25))


def test_a_raised_voice_needs_consecutive_turns_out_of_the_baseline_period():
    rules = [r for r in load_rules(DEFAULT_RULES) if r.id == "raised-voice"]
    assert rules[0].severity is Severity.COACHING  # voice alone: never critical
    e = RuleEngine("c1", rules)
    assert not e.feed(emotion(0.9, 1, 0, baseline=True))  # judged mostly against the prior
    assert not e.feed(emotion(0.9, 2, 5))
    assert not e.feed(emotion(0.2, 3, 10))  # calm again: the streak breaks
    assert not e.feed(emotion(0.7, 4, 15))
    assert not e.feed(emotion(0.9, 1, 16, channel="agent"))  # the other party
    (alert,) = e.feed(emotion(0.5, 5, 20))
    assert [ev.utterance for ev in alert.evidence] == [4, 5]
    assert alert.evidence[1].detail == "voice tense (arousal 0.50)"


def feeling(label, confidence, end, channel="customer"):
    return FeelingEvent(call_id="c1", channel=Channel[channel.upper()], start=end - 2, end=end,
                        utterances=(4, 5), label=label, confidence=confidence,
                        scores={label: confidence})  # fmt: skip


def test_feeling_rules_fire_on_their_labels_when_sure_enough():
    rules = {r.id: r for r in load_rules(DEFAULT_RULES)}
    e = RuleEngine("c1", [rules["anxious-customer"], rules["confused-customer"]])
    assert not e.feed(feeling("anxious", 0.45, 10))  # not sure enough
    assert not e.feed(feeling("frustrated", 0.9, 20))
    assert not e.feed(feeling("anxious", 0.9, 25, channel="agent"))
    (alert,) = e.feed(feeling("anxious", 0.8, 30))
    assert alert.rule == "anxious-customer" and alert.severity is Severity.COACHING
    assert alert.evidence[0].detail == "feels anxious (80%)" and alert.evidence[0].utterance == 5
    (alert,) = e.feed(feeling("confused", 0.6, 40))
    assert alert.rule == "confused-customer"


def test_frustration_held_for_a_time():
    e = engine(type=RuleType.FRUSTRATION, above=0.6, for_s=10, severity=Severity.CRITICAL)
    assert not e.feed(frustration(0.7, 20))
    assert not e.feed(frustration(0.5, 25))  # dropped below: the clock restarts
    assert not e.feed(frustration(0.65, 30))
    assert not e.feed(frustration(0.8, 39.9))
    (alert,) = e.feed(frustration(0.8, 40, utterance=6))
    assert alert.severity is Severity.CRITICAL and alert.start == 30 and alert.end == 40
    assert alert.evidence[0].detail == "frustration 0.80 (sentiment)"


def test_a_frustration_alert_is_no_more_severe_than_its_evidence_allows():
    e = engine(type=RuleType.FRUSTRATION, above=0.6, severity=Severity.CRITICAL, cooldown_s=90)
    assert not e.feed(frustration(0.9, 10, allows="none"))  # voice in the baseline period
    (alert,) = e.feed(frustration(0.9, 20, allows="coaching", evidence="voice alone"))
    assert alert.severity is Severity.COACHING
    assert alert.evidence[0].detail.endswith("; evidence: voice alone")
    assert not e.feed(frustration(0.9, 30, allows="coaching"))  # cooling down
    (alert,) = e.feed(frustration(0.9, 40, allows="critical", evidence="words with voice"))
    assert alert.severity is Severity.CRITICAL  # a rise in severity is not held back
    assert not e.feed(frustration(0.9, 50, allows="critical"))
    coaching = engine(type=RuleType.FRUSTRATION, above=0.6, severity=Severity.COACHING)
    (alert,) = coaching.feed(frustration(0.9, 10, allows="critical"))
    assert alert.severity is Severity.COACHING  # never above the rule's own


def test_frustration_at_once():
    e = engine(type=RuleType.FRUSTRATION, above=0.6)
    assert not e.feed(frustration(0.59, 10))
    assert e.feed(frustration(0.6, 12))


@pytest.mark.parametrize("kind", [RuleType.TALKOVER, RuleType.DEAD_AIR])
def test_signals_longer_than(kind):
    e = engine(type=kind, longer_than_s=3, cooldown_s=0)
    assert not e.feed(signal(kind.value, 10, 12.9))
    (alert,) = e.feed(signal(kind.value, 20, 23.5, channel="agent"))
    assert alert.channel is Channel.AGENT and alert.evidence[0].detail.endswith("3.5 s")
    other = RuleType.DEAD_AIR if kind is RuleType.TALKOVER else RuleType.TALKOVER
    assert not e.feed(signal(other.value, 30, 40))


def test_escalation_and_cancellation_cues_mind_negation():
    esc = engine(type=RuleType.ESCALATION, cooldown_s=0)
    assert esc.feed(final("I want to speak to your manager right now."))
    assert not esc.feed(final("no, I don't need to speak to a manager", start=5, end=6))
    can = engine(type=RuleType.CANCELLATION, cooldown_s=0)
    assert can.feed(final("then cancel my contract, I'm done"))
    assert not can.feed(final("i don't want to cancel my account", start=5, end=6))


def test_cooldown_on_the_call_clock():
    e = engine(type=RuleType.ESCALATION, cooldown_s=60)
    assert e.feed(final("let me talk to a supervisor", start=10, end=12))
    assert not e.feed(final("get me a supervisor, speak to a manager", start=40, end=42))
    assert e.feed(final("i said speak to a manager", start=70, end=72))


def test_semantic_rules_need_an_encoder():
    rule = Rule("s", RuleType.PHRASE, Severity.INFO, "p", match=Match.SEMANTIC, phrases=("x",))
    with pytest.raises(ValueError, match="semantic rules need a sentence encoder: s"):
        RuleEngine("c1", [rule])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
version: 1
rules:
  - id: a
    type: escalation
    severity: critical
    prompt: hello
"""


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        (GOOD.replace("prompt: hello", "prompt: [unclosed"), 0, "yaml", ""),
        (GOOD.replace("severity: critical", "severity: urgent"), 5, "severity", "one of"),
        (GOOD.replace("prompt: hello", "prompt: hello\n    cooldown: 5"), 7, "cooldown",
         "unknown field in rule 'a'"),
        (GOOD.replace("    prompt: hello\n", ""), 3, "prompt", "is required"),
        (GOOD.replace("type: escalation", "type: sentiment"), 3, "below",
         "is required for a sentiment rule"),
        (GOOD.replace("type: escalation", "type: phrase\n    match: regex\n    phrases: ['(a']"),
         6, "phrases", "bad regular expression"),
        (GOOD.replace("prompt: hello", "prompt: hello\n    cooldown_s: soon"), 7, "cooldown_s",
         "must be a number"),
        (GOOD.replace("prompt: hello", "prompt: hello\n    channel: robot"), 7, "channel",
         "customer or agent"),
        (GOOD.replace("type: escalation", "type: feeling\n    labels: [grumpy]"), 5, "labels",
         "must be a non-empty list of angry, frustrated"),
        (GOOD + GOOD.split("rules:\n")[1], 7, "id", "'a' is used twice"),
        ("rules: none\n", 1, "rules", "a list of rules"),
        ("version: 2\nrules: []\n", 1, "version", "only version 1"),
    ],
)  # fmt: skip
def test_malformed_files_name_file_line_and_field(tmp_path, text, line, field, problem):
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    err = caught.value
    assert err.file == str(path) and err.field == field, str(err)
    if line:
        assert err.line == line, str(err)
    else:
        assert err.line > 0
    assert problem in str(err) and str(err).startswith(f"{path}:{err.line}: {field}: ")


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "nope.yaml")


@pytest.fixture(scope="module")
def encoder():
    from pipeline.assist.embed import SentenceEncoder

    return SentenceEncoder()  # the real all-MiniLM-L6-v2 from its PyPI package


def test_semantic_phrases_with_the_real_encoder(encoder):
    rules = [r for r in load_rules(DEFAULT_RULES) if r.id == "legal-threat"]
    e = RuleEngine("c1", rules, encoder.similarity)
    (alert,) = e.feed(final("My attorney will hear about this.", utterance=3, start=5, end=7))
    (ev,) = alert.evidence
    assert alert.severity is Severity.CRITICAL and ev.utterance == 3
    assert ev.detail.startswith("like ") and ev.score is not None and ev.score >= 0.62
    quiet = RuleEngine("c2", rules, encoder.similarity)
    for text in ("can you send me the court documents for my case", "i will pay the bill today",
                 "i need to talk to my wife first"):  # fmt: skip
        assert not quiet.feed(final(text)), text


def test_the_encoder_is_normalised_and_cached(encoder):
    vecs = encoder.encode(["hello there", "good morning"])
    assert vecs.shape == (2, 384)
    assert abs(float((vecs[0] ** 2).sum()) - 1) < 1e-5
    same = encoder.similarity("hello there", ["hello there", "the invoice is wrong"])
    assert same[0] > 0.99 and same[1] < 0.5
    assert "hello there" in encoder._cache
