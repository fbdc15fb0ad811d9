"""Alert rules over a call's event stream, configured in YAML.

A plain synchronous engine per call: `RuleEngine.feed(event)` takes each event of the call as it
is published (the versioned JSON dicts) and returns the alerts it raises. Rule types:

- `phrase`: a final transcript of `channel` contains one of `phrases` (`match: exact`, whole
  words, case-insensitive), matches one of them as a regular expression (`match: regex`), or is
  similar to one of them (`match: semantic`: cosine similarity of sentence embeddings at least
  `threshold`, with the encoder the engine is given);
- `sentiment`: `turns` consecutive turns of `channel` (each judged on its whole text when the
  other party takes the floor) with a sentiment score below `below`;
- `frustration`: the customer's frustration score at least `above` for `for_s` seconds;
- `emotion`: `turns` consecutive finals of `channel` whose voice arousal (prosody against the
  speaker's own baseline) is at least `above`, none of them in the speaker's baseline period;
- `feeling`: a turn of `channel` whose feeling (`pipeline.assist.feelings`) is one of `labels`
  with a confidence of at least `threshold`;
- `talkover` / `dead_air`: one lasting at least `longer_than_s`;
- `escalation` / `cancellation`: the customer asks for a manager / says they will cancel (the
  cue patterns of the frustration score, negation-aware).

Every rule has a `severity` (info / coaching / critical), a `cooldown_s` on the call's clock
(within it the rule fires again only at a higher severity) and a `prompt` for the agent. A
`frustration` rule's alert is never more severe than the evidence behind the score supports
(the event's `allows`, set by the evidence rules of `pipeline.mood.frustration`): voice alone
makes at most a coaching alert, and none during the customer's baseline period. Every alert
carries its evidence: the utterances, spans and scores that fired it. A malformed file is
refused when it is loaded, naming the file, the line and the field.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipeline.assist.feelings import FEELINGS
from pipeline.assist.yamlfile import ConfigError, entries, line, mapping, scalar
from pipeline.mood import find_cues
from pipeline.types import (
    AlertEvent,
    EmotionEvent,
    Event,
    Evidence,
    FeelingEvent,
    FrustrationEvent,
    SignalEvent,
    TranscriptEvent,
    TurnSentimentEvent,
)

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
Similarity = Callable[[str, Sequence[str]], list[float]]  # text, examples -> cosine each


class Severity(enum.StrEnum):
    INFO = "info"
    COACHING = "coaching"
    CRITICAL = "critical"


_RANK = {Severity.INFO: 0, Severity.COACHING: 1, Severity.CRITICAL: 2}


class RuleType(enum.StrEnum):
    PHRASE = "phrase"
    SENTIMENT = "sentiment"
    FRUSTRATION = "frustration"
    EMOTION = "emotion"
    FEELING = "feeling"
    TALKOVER = "talkover"
    DEAD_AIR = "dead_air"
    ESCALATION = "escalation"
    CANCELLATION = "cancellation"


class Match(enum.StrEnum):
    EXACT = "exact"
    REGEX = "regex"
    SEMANTIC = "semantic"


RulesError = ConfigError


@dataclass(frozen=True)
class Rule:
    id: str
    type: RuleType
    severity: Severity
    prompt: str
    cooldown_s: float = 60.0
    channel: str = "customer"
    match: Match = Match.EXACT
    phrases: tuple[str, ...] = ()
    threshold: float = 0.6  # semantic similarity, feeling confidence
    labels: tuple[str, ...] = ()  # feeling
    below: float = -0.3  # sentiment
    turns: int = 2  # sentiment
    above: float = 0.6  # frustration score, emotion arousal
    for_s: float = 0.0  # frustration
    longer_than_s: float = 3.0  # talkover, dead_air
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)


# --- loading -------------------------------------------------------------------------------

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "type": str, "severity": str, "prompt": str, "cooldown_s": (int, float),
    "channel": str, "match": str, "phrases": list, "threshold": (int, float),
    "below": (int, float), "turns": int, "above": (int, float), "for_s": (int, float),
    "longer_than_s": (int, float), "labels": list,
}  # fmt: skip
_NEEDS: dict[RuleType, tuple[str, ...]] = {
    RuleType.PHRASE: ("phrases",),
    RuleType.SENTIMENT: ("below", "turns"),
    RuleType.FRUSTRATION: ("above",),
    RuleType.EMOTION: ("above", "turns"),
    RuleType.FEELING: ("labels",),
    RuleType.TALKOVER: ("longer_than_s",),
    RuleType.DEAD_AIR: ("longer_than_s",),
    RuleType.ESCALATION: (),
    RuleType.CANCELLATION: (),
}


def load_rules(path: Path | str = DEFAULT_RULES) -> list[Rule]:
    """Parse and check a rules file; any problem raises `RulesError` with its line and field."""
    path = Path(path)
    nodes = entries(path, "rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for node in nodes:
        rule = _rule(path, node)
        if rule.id in seen:
            raise RulesError(path, line(node), "id", f"{rule.id!r} is used twice")
        seen.add(rule.id)
        rules.append(rule)
    return rules


def _rule(path: Path, node: yaml.Node) -> Rule:
    if not isinstance(node, yaml.MappingNode):
        raise RulesError(path, line(node), "rules[]", "each rule must be a mapping")
    fields = mapping(node)
    where = f"rule {fields['id'][1].value!r}" if "id" in fields else "rule"
    values: dict[str, Any] = {}
    for name, (key, value) in fields.items():
        if name not in _FIELDS:
            raise RulesError(path, line(key), name, f"unknown field in {where}")
        got = scalar(value)
        want = _FIELDS[name]
        if isinstance(got, bool) or not isinstance(got, want):
            kind = want.__name__ if isinstance(want, type) else "a number"
            raise RulesError(path, line(value), name, f"must be {kind} in {where}")
        values[name] = got

    def fail(name: str, problem: str) -> RulesError:
        at = line(fields[name][1]) if name in fields else line(node)
        return RulesError(path, at, name, f"{problem} in {where}")

    for name in ("id", "type", "severity", "prompt"):
        if name not in values or values[name] == "":
            raise fail(name, "is required")
    kind = _enum(RuleType, values["type"], fail, "type")
    severity = _enum(Severity, values["severity"], fail, "severity")
    for name in _NEEDS[kind]:
        if name not in values:
            raise fail(name, f"is required for a {kind} rule")
    match = _enum(Match, values.get("match", "exact"), fail, "match")
    if values.get("channel", "customer") not in ("customer", "agent"):
        raise fail("channel", "must be customer or agent")
    if values.get("cooldown_s", 0) < 0:
        raise fail("cooldown_s", "must not be negative")
    phrases = tuple(values.get("phrases", ()))
    if kind is RuleType.PHRASE and (not phrases or not all(isinstance(p, str) for p in phrases)):
        raise fail("phrases", "must be a non-empty list of strings")
    patterns: list[re.Pattern[str]] = []
    for phrase in phrases if kind is RuleType.PHRASE and match is not Match.SEMANTIC else ():
        source = phrase if match is Match.REGEX else r"\b" + re.escape(phrase.lower()) + r"\b"
        try:
            patterns.append(re.compile(source, re.IGNORECASE))
        except re.error as exc:
            raise fail("phrases", f"bad regular expression {phrase!r} ({exc})") from exc
    labels = tuple(values.pop("labels", ()))
    if kind is RuleType.FEELING and (not labels or not set(labels) <= set(FEELINGS)):
        raise fail("labels", f"must be a non-empty list of {', '.join(FEELINGS)}")
    if not 0 < values.get("threshold", 0.6) <= 1:
        raise fail("threshold", "must be in (0, 1]")
    if values.get("turns", 1) < 1:
        raise fail("turns", "must be at least 1")
    for parsed in ("type", "severity", "match", "phrases"):
        values.pop(parsed, None)
    return Rule(
        type=kind, severity=severity, match=match, phrases=phrases, patterns=tuple(patterns),
        labels=labels, **values,
    )  # fmt: skip


E = TypeVar("E", bound=enum.StrEnum)


def _enum(cls: type[E], value: str, fail: Callable[[str, str], RulesError], name: str) -> E:
    try:
        return cls(value)
    except ValueError:
        raise fail(name, f"must be one of {', '.join(m.value for m in cls)}") from None


# --- the engine ----------------------------------------------------------------------------


@dataclass
class _State:
    last_fired: float | None = None
    last_severity: Severity = Severity.INFO
    streak: list[Evidence] = field(default_factory=list)  # sentiment turns below the bar
    high_since: float | None = None  # frustration at or above the bar since


class RuleEngine:
    """The rules of one call. Feed it every event of the call in order."""

    def __init__(
        self, call_id: str, rules: Sequence[Rule], similarity: Similarity | None = None
    ) -> None:
        semantic = [r.id for r in rules if r.type is RuleType.PHRASE and r.match is Match.SEMANTIC]
        if semantic and similarity is None:
            raise ValueError(f"semantic rules need a sentence encoder: {', '.join(semantic)}")
        self.call_id = call_id
        self.rules = list(rules)
        self._similarity = similarity
        self._state = {r.id: _State() for r in rules}

    def feed(self, event: Event) -> list[AlertEvent]:
        alerts = []
        for rule in self.rules:
            evidence = self._check(rule, self._state[rule.id], event)
            if evidence:
                alert = self._fire(rule, event, evidence)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _fire(self, rule: Rule, event: Event, evidence: list[Evidence]) -> AlertEvent | None:
        state = self._state[rule.id]
        now = event.end
        severity = rule.severity
        if isinstance(event, FrustrationEvent):  # no higher than its evidence supports
            if event.allows not in _RANK:
                return None
            severity = min(severity, Severity(event.allows), key=_RANK.__getitem__)
        cooling = state.last_fired is not None and now - state.last_fired < rule.cooldown_s
        if cooling and _RANK[severity] <= _RANK[state.last_severity]:
            return None  # within the cooldown only a rise in severity fires again
        state.last_fired, state.last_severity = now, severity
        return AlertEvent(
            call_id=self.call_id, channel=event.channel,
            start=min(e.start for e in evidence), end=now, rule=rule.id,
            severity=severity, prompt=rule.prompt, evidence=tuple(evidence),
        )  # fmt: skip

    def _check(self, rule: Rule, state: _State, e: Event) -> list[Evidence]:
        on_channel = e.channel.label == rule.channel
        if isinstance(e, TranscriptEvent) and e.final and on_channel:
            return self._transcript(rule, e)
        if rule.type is RuleType.SENTIMENT and isinstance(e, TurnSentimentEvent) and on_channel:
            if e.score < rule.below:
                last = e.utterances[-1] if e.utterances else None
                state.streak.append(Evidence("negative turn", e.start, e.end, last, score=e.score))
            else:
                state.streak.clear()
            if len(state.streak) >= rule.turns:
                out, state.streak = state.streak[-rule.turns :], []
                return out
        if rule.type is RuleType.EMOTION and isinstance(e, EmotionEvent) and on_channel:
            if e.baseline or e.arousal < rule.above:
                state.streak.clear()
                return []
            detail = f"voice {e.label} (arousal {e.arousal:.2f})"
            state.streak.append(Evidence(detail, e.start, e.end, e.utterance, score=e.arousal))
            if len(state.streak) >= rule.turns:
                out, state.streak = state.streak[-rule.turns :], []
                return out
        if (
            rule.type is RuleType.FEELING
            and isinstance(e, FeelingEvent)
            and on_channel
            and e.label in rule.labels
            and e.confidence >= rule.threshold
        ):
            last = e.utterances[-1] if e.utterances else None
            detail = f"feels {e.label} ({e.confidence:.0%})"
            return [Evidence(detail, e.start, e.end, last, score=e.confidence)]
        if rule.type is RuleType.FRUSTRATION and isinstance(e, FrustrationEvent):
            if e.score < rule.above:
                state.high_since = None
                return []
            if state.high_since is None:
                state.high_since = e.end
            if e.end - state.high_since >= rule.for_s:
                reasons = ", ".join(r.kind for r in e.reasons[:3])
                detail = f"frustration {e.score:.2f} ({reasons})"
                detail += f"; evidence: {e.evidence}" if e.evidence else ""
                return [Evidence(detail, state.high_since, e.end, e.utterance, score=e.score)]
        if (
            isinstance(e, SignalEvent)
            and rule.type.value == e.kind
            and e.end - e.start >= rule.longer_than_s
        ):
            detail = f"{e.kind.replace('_', ' ')} {e.end - e.start:.1f} s"
            return [Evidence(detail, e.start, e.end)]
        return []

    def _transcript(self, rule: Rule, e: TranscriptEvent) -> list[Evidence]:
        text = e.text

        def found(detail: str, score: float | None = None) -> list[Evidence]:
            return [Evidence(detail, e.start, e.end, e.utterance, text, score)]

        if rule.type in (RuleType.ESCALATION, RuleType.CANCELLATION):
            for cue, phrase in find_cues(text):
                if cue == rule.type.value:
                    return found(f"{cue}: {phrase!r}")
        elif rule.type is RuleType.PHRASE and rule.match is Match.SEMANTIC:
            assert self._similarity is not None
            scores = self._similarity(text, rule.phrases)
            best = max(range(len(scores)), key=scores.__getitem__)
            if scores[best] >= rule.threshold:
                return found(f"like {rule.phrases[best]!r}", scores[best])
        elif rule.type is RuleType.PHRASE:
            for phrase, pattern in zip(rule.phrases, rule.patterns, strict=True):
                if m := pattern.search(text):
                    return found(f"said {m.group(0)!r} ({phrase!r})")
        return []
