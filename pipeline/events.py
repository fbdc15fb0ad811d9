"""Typed events out of the pipeline, and their versioned JSON form.

Every event has `v` (schema version), `type`, `call_id`, `seq` (per call, increasing), `channel`
(`customer` | `agent`), `start` and `end` (seconds from the call's first sample, on the audio
clock). Call lifecycle messages (`call_started`, `call_ended`) are not channel events: they carry
no `channel` and travel on their own Redis channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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


Event = TranscriptEvent


def call_message(kind: str, call_id: str, **fields: Any) -> dict[str, Any]:
    """A call lifecycle message: `call_started` or `call_ended`."""
    return {"v": SCHEMA_VERSION, "type": kind, "call_id": call_id, **fields}


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
