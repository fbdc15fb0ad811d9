"""The value types every stage shares, and the one wire form of events.

Imports nothing of the project: every other module may import it.

Audio and calls: `Channel` (a party, and its index in interleaved stereo), `Encoding`, `PCM` and
`Samples` arrays, `AudioChunk`, `CallInfo`, the VAD's `VadEvent`, the recognizer's `Word`.

Events: every event has `v` (schema version), `type`, `call_id`, `seq` (per call, increasing),
`channel` (`customer` | `agent`), `start` and `end` (seconds from the call's first sample, on the
audio clock). Types: `transcript`, the mood events `sentiment`, `emotion`, `talkover`, `dead_air`,
`talk_stats`, `frustration`, and the assist events `alert` (a rule fired: severity, the agent's
prompt, evidence) and `suggestions` (knowledge entries for what the customer just said). Call
lifecycle messages (`CallStarted`, `CallEnded`) carry no `channel` and travel on their own Redis
channel. The README's Events section shows each.

Events stay these classes from the stage that makes them to the one place that puts them on the
wire (`to_json`), and are parsed back into them (`from_json`) wherever they are read again: the
panel server, the wall board, the post-call record. A renamed field is then a type error.

This module is longer than most (about 600 lines) by design: each event's JSON form sits beside
its class, so a field and its name on the wire change together.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]

PIPELINE_RATE = 16_000  # whisper and the VAD both run at 16 kHz


class Channel(enum.Enum):
    """A party of the call. The value is the channel index in interleaved stereo."""

    CUSTOMER = 0
    AGENT = 1

    @property
    def label(self) -> str:
        return self.name.lower()


class Encoding(enum.Enum):
    PCM16 = "pcm16"  # signed 16-bit little-endian
    MULAW = "mulaw"  # G.711 mu-law, 8 bits

    @property
    def sample_width(self) -> int:
        return 2 if self is Encoding.PCM16 else 1


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono PCM of one channel, starting at `start_sample` on the call's clock at `rate`."""

    call_id: str
    channel: Channel
    start_sample: int
    rate: int
    pcm: PCM

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.pcm)

    @property
    def start(self) -> float:
        return self.start_sample / self.rate

    @property
    def end(self) -> float:
        return self.end_sample / self.rate


Samples = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Word:
    """A word of a final transcript; times in seconds on the call's clock."""

    text: str
    start: float
    end: float
    probability: float = 1.0


class VadEventKind(enum.Enum):
    START = "start"  # an utterance begins at `sample`
    AUDIO = "audio"  # `pcm` continues the current utterance from `sample`
    END = "end"  # the utterance ends at `sample` (exclusive)


@dataclass(frozen=True, slots=True)
class VadEvent:
    kind: VadEventKind
    sample: int
    pcm: PCM | None = None
    forced: bool = False  # END (and the START after it) because of max_utterance_s
    voiced: int = 0  # START: first voiced sample; END: end of the last voiced frame


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    agent_id: str
    sample_rate: int
    encoding: Encoding
    channels: int = 2

    @property
    def frame_bytes(self) -> int:
        """Bytes of one interleaved sample frame (all channels)."""
        return self.channels * self.encoding.sample_width


SCHEMA_VERSION = 1


class SchemaError(ValueError):
    """A message that is not an event of this schema (unknown type or version, missing field)."""


def _r(x: float) -> float:
    return round(x, 3)


def _channel(label: Any) -> Channel:
    try:
        return Channel[str(label).upper()]
    except KeyError:
        raise SchemaError(f"unknown channel {label!r}") from None


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

    type: ClassVar[str] = "transcript"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "type": self.type,
            "call_id": self.call_id,
            "seq": self.seq,
            "channel": self.channel.label,
            "utterance": self.utterance,
            "start": _r(self.start),
            "end": _r(self.end),
            "text": self.text,
            "final": self.final,
        }
        if self.final:
            out["words"] = [
                {"w": w.text, "start": w.start, "end": w.end, "p": _r(w.probability)}
                for w in self.words
            ]
        else:
            out["committed"] = self.committed
            out["unstable"] = self.unstable
        if self.latency is not None:
            out["latency"] = _r(self.latency)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TranscriptEvent:
        return cls(
            call_id=d["call_id"], channel=_channel(d["channel"]), utterance=d["utterance"],
            start=d["start"], end=d["end"], text=d["text"], final=d["final"],
            committed=d.get("committed", ""), unstable=d.get("unstable", ""),
            words=tuple(Word(w["w"], w["start"], w["end"], w["p"]) for w in d.get("words", ())),
            seq=d["seq"], latency=d.get("latency"),
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _ChannelEvent:
    """The envelope shared by every event that is not a transcript."""

    call_id: str
    channel: Channel
    start: float
    end: float
    seq: int = 0
    type: ClassVar[str]

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's fields, other than the envelope's, from the wire form."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "type": self.type,
            "call_id": self.call_id,
            "seq": self.seq,
            "channel": self.channel.label,
            "start": _r(self.start),
            "end": _r(self.end),
            **self.body(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Any:
        return cls(
            call_id=d["call_id"], channel=_channel(d["channel"]), start=d["start"], end=d["end"],
            seq=d["seq"], **cls.parse_body(d),
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SentimentEvent(_ChannelEvent):
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
            "probs": {"negative": _r(neg), "neutral": _r(neu), "positive": _r(pos)},
            "score": _r(self.score),
            "rolling": _r(self.rolling),
            "trend": _r(self.trend),
        }

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        p = d["probs"]
        return {
            "utterance": d["utterance"], "label": d["label"],
            "probs": (p["negative"], p["neutral"], p["positive"]),
            "score": d["score"], "rolling": d["rolling"], "trend": d["trend"],
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TurnSentimentEvent(_ChannelEvent):
    """Sentiment of a whole turn (a speaker's finals until the other party takes the floor),
    judged on its whole text when it ends; `start`/`end` span the turn."""

    utterances: tuple[int, ...]
    label: str
    probs: tuple[float, float, float]  # negative, neutral, positive
    score: float  # P(positive) - P(negative), in [-1, 1]
    type: ClassVar[str] = "turn_sentiment"

    def body(self) -> dict[str, Any]:
        neg, neu, pos = self.probs
        return {
            "utterances": list(self.utterances),
            "label": self.label,
            "probs": {"negative": _r(neg), "neutral": _r(neu), "positive": _r(pos)},
            "score": _r(self.score),
        }

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        p = d["probs"]
        return {
            "utterances": tuple(int(u) for u in d["utterances"]), "label": d["label"],
            "probs": (p["negative"], p["neutral"], p["positive"]), "score": d["score"],
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class EmotionEvent(_ChannelEvent):
    """Prosody of one utterance and the arousal it shows against the speaker's own baseline."""

    utterance: int
    label: str  # calm | tense | agitated
    arousal: float
    confidence: float
    baseline: bool  # the baseline period: too little of this speaker's own voice yet
    pitch_hz: float | None
    pitch_range_st: float | None
    loudness_db: float | None
    rate_wps: float | None
    relative: dict[str, float | None]  # differences from the reference
    baseline_quality: float = 0.0  # 0: compared with typical speech only; 1: a full own baseline
    type: ClassVar[str] = "emotion"

    FEATURES: ClassVar[tuple[str, ...]] = ("pitch_hz", "pitch_range_st", "loudness_db", "rate_wps")

    def body(self) -> dict[str, Any]:
        return {
            "utterance": self.utterance,
            "label": self.label,
            "arousal": self.arousal,
            "confidence": self.confidence,
            "baseline": self.baseline,
            "baseline_quality": self.baseline_quality,
            "features": {name: getattr(self, name) for name in self.FEATURES},
            "relative": self.relative,
        }

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        fields = {name: d[name] for name in ("utterance", "label", "arousal", "confidence")}
        features = {name: d["features"].get(name) for name in cls.FEATURES}
        return (
            fields
            | features
            | {
                "baseline": d["baseline"],
                "baseline_quality": d["baseline_quality"],
                "relative": dict(d["relative"]),
            }
        )


@dataclass(frozen=True, kw_only=True)
class SignalEvent(_ChannelEvent):
    """Talk-over (channel: who interrupted) or dead air (channel: who is expected to speak).

    Sent once when it passes its threshold (`final: false`) and once when it ends (`final: true`).
    """

    kind: str  # talkover | dead_air
    final: bool

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.kind

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"final": self.final, "duration": _r(self.end - self.start)}
        if self.kind == "talkover":
            out["interrupted"] = "agent" if self.channel is Channel.CUSTOMER else "customer"
        return out

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"kind": d["type"], "final": d["final"]}


@dataclass(frozen=True, kw_only=True)
class TalkStatsEvent(_ChannelEvent):
    """Talk statistics of the call so far (start 0, end now), after each final transcript."""

    parties: dict[str, dict[str, float]]
    overlap_s: float
    dead_air_s: float
    type: ClassVar[str] = "talk_stats"

    def body(self) -> dict[str, Any]:
        return {"parties": self.parties, "overlap_s": self.overlap_s, "dead_air_s": self.dead_air_s}

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {name: d[name] for name in ("parties", "overlap_s", "dead_air_s")}


@dataclass(frozen=True, slots=True)
class FrustrationReason:
    kind: str  # sentiment | arousal | cue | talkover | dead_air
    contribution: float  # this kind's weighted evidence, in [0, 1]
    detail: str
    utterances: tuple[int, ...] = ()
    phrase: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "contribution": _r(self.contribution),
            "detail": self.detail,
        }
        if self.utterances:
            out["utterances"] = list(self.utterances)
        if self.phrase:
            out["phrase"] = self.phrase
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrustrationReason:
        return cls(d["kind"], d["contribution"], d["detail"], tuple(d.get("utterances", ())),
                   d.get("phrase", ""))  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class FrustrationEvent(_ChannelEvent):
    """The customer's frustration score after a turn or a signal, with its reasons."""

    score: float
    level: str  # low | elevated | high
    active: bool
    onset: bool
    components: dict[str, float]
    reasons: tuple[FrustrationReason, ...]
    trigger: str
    utterance: int | None = None
    allows: str = "critical"  # the highest alert its evidence supports: critical | coaching | none
    evidence: str = ""  # the evidence rule that set `allows`, in words
    type: ClassVar[str] = "frustration"

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": self.score,
            "level": self.level,
            "active": self.active,
            "onset": self.onset,
            "components": self.components,
            "reasons": [r.to_dict() for r in self.reasons],
            "trigger": self.trigger,
            "allows": self.allows,
            "evidence": self.evidence,
        }
        if self.utterance is not None:
            out["utterance"] = self.utterance
        return out

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        names = ("score", "level", "active", "onset", "trigger", "allows", "evidence")
        fields = {name: d[name] for name in names}
        reasons = tuple(FrustrationReason.from_dict(r) for r in d["reasons"])
        return fields | {
            "components": dict(d["components"]),
            "reasons": reasons,
            "utterance": d.get("utterance"),
        }


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
        out: dict[str, Any] = {"detail": self.detail, "start": _r(self.start), "end": _r(self.end)}
        if self.utterance is not None:
            out["utterance"] = self.utterance
        if self.text:
            out["text"] = self.text
        if self.score is not None:
            out["score"] = _r(self.score)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evidence:
        return cls(d["detail"], d["start"], d["end"], d.get("utterance"), d.get("text", ""),
                   d.get("score"))  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class AlertEvent(_ChannelEvent):
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

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        evidence = tuple(Evidence.from_dict(e) for e in d["evidence"])
        return {"rule": d["rule"], "severity": d["severity"], "prompt": d["prompt"],
                "evidence": evidence}  # fmt: skip


@dataclass(frozen=True)
class Suggestion:
    """A knowledge entry matched to what the customer said."""

    id: str
    title: str
    answer: str
    score: float
    matched: str  # the entry's question closest to what was said

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "answer": self.answer,
                "score": _r(self.score), "matched": self.matched}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Suggestion:
        return cls(d["id"], d["title"], d["answer"], d["score"], d["matched"])


@dataclass(frozen=True, kw_only=True)
class SuggestionEvent(_ChannelEvent):
    """Knowledge entries matched to one final customer transcript, best first."""

    utterance: int
    items: tuple[Suggestion, ...]
    type: ClassVar[str] = "suggestions"

    def body(self) -> dict[str, Any]:
        return {"utterance": self.utterance, "items": [s.to_dict() for s in self.items]}

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        items = tuple(Suggestion.from_dict(s) for s in d["items"])
        return {"utterance": d["utterance"], "items": items}


@dataclass(frozen=True, kw_only=True)
class FeelingEvent(_ChannelEvent):
    """How the speaker feels in one turn, beyond the three sentiment classes (angry, frustrated,
    anxious, confused, disappointed, satisfied, relieved, neutral), with every feeling's
    probability; `start`/`end` span the turn."""

    utterances: tuple[int, ...]
    label: str
    confidence: float
    scores: dict[str, float]
    type: ClassVar[str] = "feeling"

    def body(self) -> dict[str, Any]:
        return {
            "utterances": list(self.utterances),
            "label": self.label,
            "confidence": _r(self.confidence),
            "scores": {k: _r(v) for k, v in self.scores.items()},
        }

    @classmethod
    def parse_body(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "utterances": tuple(int(u) for u in d["utterances"]), "label": d["label"],
            "confidence": d["confidence"], "scores": dict(d["scores"]),
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CallStarted:
    """A call began. `meta` holds what its protocol adds (ids on the platform, layout), flat on
    the wire beside the other fields."""

    call_id: str
    agent_id: str
    sample_rate: int
    encoding: str
    protocol: str
    meta: dict[str, Any] = field(default_factory=dict)
    type: ClassVar[str] = "call_started"

    FIELDS: ClassVar[tuple[str, ...]] = (
        "call_id", "agent_id", "sample_rate", "encoding", "protocol"
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in self.FIELDS}
        return {"v": SCHEMA_VERSION, "type": self.type, **fields, **self.meta}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CallStarted:
        meta = {k: v for k, v in d.items() if k not in (*cls.FIELDS, "v", "type")}
        return cls(**{name: d[name] for name in cls.FIELDS}, meta=meta)


@dataclass(frozen=True, kw_only=True)
class CallEnded:
    """A call ended: how long it ran, how many finals it had, and how (`stop`, `disconnect`,
    `error`)."""

    call_id: str
    agent_id: str
    duration: float
    finals: int
    ended: str
    type: ClassVar[str] = "call_ended"

    FIELDS: ClassVar[tuple[str, ...]] = ("call_id", "agent_id", "duration", "finals", "ended")

    def to_dict(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "type": self.type} | {
            name: getattr(self, name) for name in self.FIELDS
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CallEnded:
        return cls(**{name: d[name] for name in cls.FIELDS})


MoodEvent = (
    SentimentEvent | TurnSentimentEvent | EmotionEvent | SignalEvent | TalkStatsEvent
    | FrustrationEvent
)  # fmt: skip
AssistEvent = AlertEvent | SuggestionEvent | FeelingEvent
Event = TranscriptEvent | MoodEvent | AssistEvent
CallMessage = CallStarted | CallEnded
Message = Event | CallMessage

_PARSERS: dict[str, Any] = {
    cls.type: cls.from_dict
    for cls in (
        TranscriptEvent, SentimentEvent, TurnSentimentEvent, EmotionEvent, TalkStatsEvent,
        FrustrationEvent, AlertEvent, SuggestionEvent, FeelingEvent, CallStarted, CallEnded,
    )
} | {kind: SignalEvent.from_dict for kind in ("talkover", "dead_air")}  # fmt: skip


def parse_message(d: Mapping[str, Any]) -> Message:
    """An event or call message from its wire form (a decoded JSON object)."""
    if d.get("v") != SCHEMA_VERSION:
        raise SchemaError(f"schema version {d.get('v')!r}, expected {SCHEMA_VERSION}")
    parser = _PARSERS.get(str(d.get("type")))
    if parser is None:
        raise SchemaError(f"unknown message type {d.get('type')!r}")
    try:
        message: Message = parser(d)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SchemaError(f"malformed {d.get('type')} message: {e!r}") from None
    return message


def parse_event(d: Mapping[str, Any]) -> Event:
    """A channel event (not a call message) from its wire form."""
    message = parse_message(d)
    if isinstance(message, CallStarted | CallEnded):
        raise SchemaError(f"{message.type} is not a channel event")
    return message


def dumps(data: Any) -> str:
    """Compact JSON, as every message goes on the wire."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def to_json(message: Message) -> str:
    """The one wire form of an event or call message."""
    return dumps(message.to_dict())


def _loads(text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise SchemaError(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise SchemaError("not a JSON object")
    return data


def from_json(text: str | bytes) -> Message:
    """Parse a wire message back into its class (`SchemaError` when it is none)."""
    return parse_message(_loads(text))


def event_from_json(text: str | bytes) -> Event:
    """Parse a wire channel event back into its class."""
    return parse_event(_loads(text))
