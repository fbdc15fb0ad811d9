"""One AudioHook session's protocol state, free of I/O: client messages in, server messages out.

Each side numbers its messages from 1 (`seq`) and echoes the other's last (`serverseq`,
`clientseq`); `AudioHookSession.parse` checks the envelope and the numbering, `open` picks the
media, `audio` turns a binary frame into the pipeline's (n, 2) samples, customer first. A
violation is an `AudioHookError`, answered with one `disconnect`.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.ingest import (
    Refusal,
    WsClose,
    call_order,
    load_json,
    party,
)
from pipeline.speech.audio import MULAW_TO_PCM16
from pipeline.types import PCM, Channel

log = logging.getLogger(__name__)

VERSION = "2"
RATE = 8000
MAX_TEXT = 65535
MAX_DISCARD_S = 3600.0
NULL_UUID = "00000000-0000-0000-0000-000000000000"
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DURATION = re.compile(r"^PT(\d*\.?\d+)S$")


class State(enum.Enum):
    PREPARING = "preparing"  # before open
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSING = "closing"  # close received, closed not yet sent
    CLOSED = "closed"


class AudioHookError(Refusal):
    """A violation, answered with `disconnect` (its `reason` `error` or `unauthorized`, and `info`:
    the refusal's reason); the socket itself closes with 1008 only when no session opened."""

    def __init__(self, kind: str, info: str, reason: str = "error") -> None:
        super().__init__(WsClose.POLICY, kind, info, limit=200)
        self.disconnect_reason = reason


@dataclass(frozen=True, slots=True)
class Media:
    format: str  # PCMU or L16
    channels: tuple[str, ...]
    rate: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "audio",
            "format": self.format,
            "channels": list(self.channels),
            "rate": self.rate,
        }


@dataclass(frozen=True, slots=True)
class Open:
    conversation_id: str
    organization_id: str
    media: Media | None  # None: a connection probe, or nothing we can use
    language: str
    custom: dict[str, Any]
    participant: dict[str, Any] = field(default_factory=dict)  # ani, aniName, dnis

    @property
    def probe(self) -> bool:
        return self.conversation_id == NULL_UUID


def duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") + "S"


def seconds(value: Any, name: str) -> float:
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None:
        raise AudioHookError("bad_message", f"{name} must be a duration like PT1.5S")
    return float(m.group(1))


def pick_media(offers: Any) -> Media | None:
    """Two-channel (external + internal) PCMU at 8 kHz first, then L16; None if neither."""
    if not isinstance(offers, list):
        raise AudioHookError("bad_open", "open.parameters.media must be an array")
    usable = []
    for offer in offers:
        if not isinstance(offer, dict):
            raise AudioHookError("bad_open", "each media offer must be an object")
        channels = offer.get("channels")
        if (
            offer.get("type") == "audio"
            and offer.get("format") in ("PCMU", "L16")
            and offer.get("rate") == RATE
            and isinstance(channels, list)
            and sorted(channels) == ["external", "internal"]
        ):
            usable.append(Media(offer["format"], tuple(channels), RATE))
    usable.sort(key=lambda m: m.format != "PCMU")
    return usable[0] if usable else None


class AudioHookSession:
    """One AudioHook session's protocol state, free of I/O: messages in, messages out."""

    def __init__(self, session_id: str, organization_id: str | None = None) -> None:
        self.id = session_id
        self.organization_id = organization_id
        self.state = State.PREPARING
        self.seq = 0  # our last seq
        self.client_seq = 0  # the client's last seq
        self.media: Media | None = None
        self.signalled = False  # a disconnect was sent: only close is awaited now
        self.samples = 0  # audio received, per channel

    def message(self, kind: str, **parameters: Any) -> dict[str, Any]:
        """The next server message (numbered)."""
        self.seq += 1
        return {
            "version": VERSION,
            "id": self.id,
            "type": kind,
            "seq": self.seq,
            "clientseq": self.client_seq,
            "parameters": parameters,
        }

    def disconnect(self, err: AudioHookError) -> dict[str, Any] | None:
        """The one `disconnect` of a session (None if it was already sent, or closing)."""
        if self.signalled or self.state in (State.CLOSING, State.CLOSED):
            return None
        self.signalled = True
        return self.message("disconnect", reason=err.disconnect_reason, info=err.reason)

    def parse(self, text: str) -> tuple[str, dict[str, Any]]:
        """Check one client text message's envelope and sequence: (type, parameters)."""
        if len(text) > MAX_TEXT:
            raise AudioHookError("message_too_large", "Client Error: text message over 64K")
        try:
            msg = load_json(text)
        except ValueError:
            raise AudioHookError("bad_json", "Client Error: text message not valid JSON") from None
        if not isinstance(msg, dict) or msg.get("version") != VERSION:
            raise AudioHookError("bad_message", 'Client Error: version must be "2"')
        kind, seq, params = msg.get("type"), msg.get("seq"), msg.get("parameters", {})
        serverseq = msg.get("serverseq", 0)
        if not isinstance(kind, str) or not isinstance(params, dict):
            raise AudioHookError("bad_message", "Client Error: type and parameters required")
        if not isinstance(seq, int) or not _int(seq) or not _int(serverseq):
            raise AudioHookError("bad_message", "Client Error: seq and serverseq must be integers")
        if msg.get("id") != self.id:
            raise AudioHookError("bad_sequence", "Client Error: session identifier mismatch")
        if self.signalled:  # after our disconnect only the client's close matters
            self.client_seq = seq
            return kind, params
        if seq != self.client_seq + 1:
            raise AudioHookError(
                "bad_sequence", f"Client Error: seq {seq} after {self.client_seq} (not +1)"
            )
        if serverseq > self.seq:
            raise AudioHookError("bad_sequence", f"Client Error: serverseq {serverseq} unseen")
        if "position" in msg:
            seconds(msg["position"], "position")
        self.client_seq = seq
        return kind, params

    def open(self, params: dict[str, Any]) -> Open:
        if self.state is not State.PREPARING:
            raise AudioHookError("out_of_order", "Client Error: open after the session opened")
        conversation = params.get("conversationId")
        organization = params.get("organizationId")
        if not isinstance(conversation, str) or not UUID_RE.match(conversation):
            raise AudioHookError("bad_open", "Client Error: conversationId must be a UUID")
        if self.organization_id is not None and organization != self.organization_id:
            raise AudioHookError(
                "unauthorized",
                "organizationId does not match the Audiohook-Organization-Id header",
                reason="unauthorized",
            )
        media = pick_media(params.get("media", []))
        custom = params.get("customConfig") or {}
        participant = params.get("participant") or {}
        language = params.get("language") or ""
        opened = Open(
            conversation,
            str(organization),
            media,
            language if isinstance(language, str) else "",
            custom if isinstance(custom, dict) else {},
            participant if isinstance(participant, dict) else {},
        )
        if media is None and not opened.probe:
            offered = json.dumps(params.get("media"))[:100]
            raise AudioHookError(
                "unsupported_media",
                f"Client Error: need 8 kHz PCMU or L16 with external and internal, got {offered}",
            )
        self.media = None if opened.probe else media
        self.state = State.ACTIVE
        return opened

    def audio(self, data: bytes, max_bytes: int) -> PCM:
        """A binary frame as (n, 2) int16, customer first."""
        if self.state is not State.ACTIVE or self.media is None:
            raise AudioHookError(
                "out_of_order", f"Client Error: audio received in state {self.state.value}"
            )
        width = 1 if self.media.format == "PCMU" else 2
        frame = width * len(self.media.channels)
        if len(data) > max_bytes:
            raise AudioHookError("frame_too_large", f"Client Error: {len(data)}-byte audio frame")
        if len(data) % frame:
            raise AudioHookError("partial_frame", "Client Error: binary data not whole frames")
        if width == 1:
            pcm = MULAW_TO_PCM16[np.frombuffer(data, np.uint8)]
        else:
            pcm = np.frombuffer(data, "<i2").astype(np.int16)
        pcm = pcm.reshape(-1, len(self.media.channels))
        self.samples += len(pcm)
        order = call_order(self.media.channels)
        assert order is not None  # `pick_media` took only such media
        return pcm[:, order]

    def channel_id(self, channel: Channel) -> int:
        assert self.media is not None
        return [party(name) for name in self.media.channels].index(channel)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
