"""Typed events out of the pipeline, and their versioned JSON form.

Every event has `v` (schema version), `type`, `call_id`, `seq` (per call, increasing), `channel`
(`customer` | `agent`), `start` and `end` (seconds from the call's first sample, on the audio
clock). Call lifecycle messages (`call_started`, `call_ended`) are not channel events: they carry
no `channel` and travel on their own Redis channel.

Types: `transcript`, the mood events `sentiment`, `emotion`, `talkover`, `dead_air`,
`talk_stats`, `frustration`, and the assist events `alert` (a rule fired: severity, the agent's
prompt, evidence) and `suggestions` (knowledge entries for what the customer just said). The
README's Events section shows each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline.audio import Channel
from pipeline.commit import Word

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    call_id: str
    channel: Channel
    utterance: int  # per channel, counts from 1
    start: float
    end: float
    text: str
    final: bool
    committed: str = ""  # interims: the prefix that will not change
    unstable: str = ""  # interims: the tail that may still change
    words: tuple[Word, ...] = ()  # finals: word timings on the call's clock
    seq: int = 0  # set when the session emits it
    latency: float | None = field(default=None, compare=False)  # seconds, server-side

    type = "transcript"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "type": self.type,
            "call_id": self.call_id,
            "seq": self.seq,
            "channel": self.channel.label,
            "utterance": self.utterance,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "final": self.final,
        }
        if self.final:
            out["words"] = [
                {"w": w.text, "start": w.start, "end": w.end, "p": round(w.probability, 3)}
                for w in self.words
            ]
        else:
            out["committed"] = self.committed
            out["unstable"] = self.unstable
        if self.latency is not None:
            out["latency"] = round(self.latency, 3)
        return out


@dataclass(frozen=True, kw_only=True)
class _MoodEvent:
    """The envelope shared by every event that is not a transcript."""

    call_id: str
    channel: Channel
    start: float
    end: float
    seq: int = 0
    type: ClassVar[str]

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "type": self.type,
            "call_id": self.call_id,
            "seq": self.seq,
            "channel": self.channel.label,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            **self.body(),
        }


@dataclass(frozen=True, kw_only=True)
class SentimentEvent(_MoodEvent):
    """Sentiment of one final transcript, and the speaker's rolling (time-decayed) sentiment."""

    utterance: int
    label: str
    probs: tuple[float, float, float]  # negative, neutral, positive
    score: float  # P(positive) - P(negative), in [-1, 1]
    rolling: float
    trend: float  # change of `rolling` since the speaker's previous turn
    type: ClassVar[str] = "sentiment"

    def body(self) -> dict[str, Any]:
        neg, neu, pos = self.probs
        return {
            "utterance": self.utterance,
            "label": self.label,
            "probs": {
                "negative": round(neg, 3),
                "neutral": round(neu, 3),
                "positive": round(pos, 3),
            },
            "score": round(self.score, 3),
            "rolling": round(self.rolling, 3),
            "trend": round(self.trend, 3),
        }


@dataclass(frozen=True, kw_only=True)
class EmotionEvent(_MoodEvent):
    """Prosody of one utterance and the arousal it shows against the speaker's own baseline."""

    utterance: int
    label: str  # calm | tense | agitated
    arousal: float
    confidence: float
    baseline: bool  # still learning this speaker's baseline
    pitch_hz: float | None
    pitch_range_st: float | None
    loudness_db: float | None
    rate_wps: float | None
    relative: dict[str, float | None]  # differences from the baseline
    type: ClassVar[str] = "emotion"

    def body(self) -> dict[str, Any]:
        return {
            "utterance": self.utterance,
            "label": self.label,
            "arousal": self.arousal,
            "confidence": self.confidence,
            "baseline": self.baseline,
            "features": {
                "pitch_hz": self.pitch_hz,
                "pitch_range_st": self.pitch_range_st,
                "loudness_db": self.loudness_db,
                "rate_wps": self.rate_wps,
            },
            "relative": self.relative,
        }


@dataclass(frozen=True, kw_only=True)
class SignalEvent(_MoodEvent):
    """Talk-over (channel: who interrupted) or dead air (channel: who is expected to speak).

    Sent once when it passes its threshold (`final: false`) and once when it ends (`final: true`).
    """

    kind: str  # talkover | dead_air
    final: bool

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.kind

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"final": self.final, "duration": round(self.end - self.start, 3)}
        if self.kind == "talkover":
            out["interrupted"] = "agent" if self.channel is Channel.CUSTOMER else "customer"
        return out


@dataclass(frozen=True, kw_only=True)
class TalkStatsEvent(_MoodEvent):
    """Talk statistics of the call so far (start 0, end now), after each final transcript."""

    parties: dict[str, dict[str, float]]
    overlap_s: float
    dead_air_s: float
    type: ClassVar[str] = "talk_stats"

    def body(self) -> dict[str, Any]:
        return {"parties": self.parties, "overlap_s": self.overlap_s, "dead_air_s": self.dead_air_s}


@dataclass(frozen=True, kw_only=True)
class FrustrationEvent(_MoodEvent):
    """The customer's frustration score after a turn or a signal, with its reasons."""

    score: float
    level: str  # low | elevated | high
    active: bool
    onset: bool
    components: dict[str, float]
    reasons: tuple[dict[str, Any], ...]
    trigger: str
    utterance: int | None = None
    type: ClassVar[str] = "frustration"

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": self.score,
            "level": self.level,
            "active": self.active,
            "onset": self.onset,
            "components": self.components,
            "reasons": list(self.reasons),
            "trigger": self.trigger,
        }
        if self.utterance is not None:
            out["utterance"] = self.utterance
        return out


@dataclass(frozen=True)
class Evidence:
    """What fired an alert: an utterance, a span of the call, a score."""

    detail: str
    start: float
    end: float
    utterance: int | None = None
    text: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"detail": self.detail, "start": self.start, "end": self.end}
        if self.utterance is not None:
            out["utterance"] = self.utterance
        if self.text:
            out["text"] = self.text
        if self.score is not None:
            out["score"] = round(self.score, 3)
        return out


@dataclass(frozen=True, kw_only=True)
class AlertEvent(_MoodEvent):
    """A rule fired (channel: whose words or signal fired it); `prompt` is the agent's card."""

    rule: str
    severity: str  # info | coaching | critical
    prompt: str
    evidence: tuple[Evidence, ...]
    type: ClassVar[str] = "alert"

    def body(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "prompt": self.prompt,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True, kw_only=True)
class SuggestionEvent(_MoodEvent):
    """Knowledge entries matched to one final customer transcript, best first."""

    utterance: int
    items: tuple[dict[str, Any], ...]  # id, title, answer, score, matched
    type: ClassVar[str] = "suggestions"

    def body(self) -> dict[str, Any]:
        return {"utterance": self.utterance, "items": list(self.items)}


MoodEvent = SentimentEvent | EmotionEvent | SignalEvent | TalkStatsEvent | FrustrationEvent
AssistEvent = AlertEvent | SuggestionEvent
Event = TranscriptEvent | MoodEvent | AssistEvent


def call_message(kind: str, call_id: str, **fields: Any) -> dict[str, Any]:
    """A call lifecycle message: `call_started` or `call_ended`."""
    return {"v": SCHEMA_VERSION, "type": kind, "call_id": call_id, **fields}


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
