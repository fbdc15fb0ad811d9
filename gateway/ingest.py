"""What every ingest adapter shares, so that each keeps only what its protocol needs.

- `Refusal`: bad input, with the code its transport refuses it with, a metric word and a reason.
  An adapter raises it wherever it finds the problem; the adapter's edge counts, logs and answers
  it in the protocol's own way (`refused`, `Adapter.close`).
- One table of codes per transport: `WsClose` for the WebSocket protocols (RFC 6455's, then the
  native protocol's own 44xx), `HTTPStatus` for HTTP (the WebRTC offer, every WebSocket
  handshake), and AudioSocket's single hang-up frame.
- `valid_call_id`, `agent_id_of`, `id_problem`: call and agent ids, under the names the platforms
  give them, bounded before they become Redis keys (no `:`, the keys' separator, no newline).
- `load_json`: a client's JSON, its nesting bounded (a deep one is malformed, not a crash).
- `kept_metadata`: a call's metadata cut to the configured fields, phone numbers masked.
- `party`, `call_order`: the parties (customer, agent) under the names the platforms give them.
- `IngestKey`, `parse_ingest_keys`, `tenant_of`, `key_refusal`: the tenants' bearer keys of the
  native protocol, the audio forks and WebRTC; `presented_secrets` (headers only, never the URL)
  and `secret_matches` compare credentials in constant time.
- `Adapter`: a WebSocket protocol at a path; `check` is its credential hook, run on the
  handshake, before any audio.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from gateway.calls import CallHub, GatewayConfig, IngestKey
from pipeline.runtime import metrics
from pipeline.types import Channel

log = logging.getLogger(__name__)

MAX_ID = 128
_CALL_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_ID}}}")
AGENT_ID_NAMES = ("agent_id", "agentId", "agent")


class WsClose(enum.IntEnum):
    """WebSocket close codes: RFC 6455's, then the native protocol's own (4000-4999)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002  # a message out of order
    UNSUPPORTED = 1003  # a media format we do not take
    INVALID = 1007  # a malformed message
    POLICY = 1008  # credentials, a call id already streaming
    TOO_BIG = 1009  # a frame over the size limit
    INTERNAL = 1011
    BAD_MESSAGE = 4400  # native: not JSON, unknown type, missing or malformed field
    TIMEOUT = 4408  # native: no start message in time
    CONFLICT = 4409  # native: a second start, audio after stop, call id in use
    UNSUPPORTED_MEDIA = 4415  # native: encoding, rate, channel count or layout not supported
    BAD_AUDIO = 4422  # native: a binary frame that is not whole sample frames


class Refusal(Exception):
    """Bad input, to be answered in the protocol's own way: `code` is its close code (`WsClose`),
    HTTP status or frame type, `kind` the metric label (a fixed word), `reason` what the client
    is told (at most `limit` characters: a WebSocket close reason fits in 123 bytes)."""

    def __init__(self, code: int, kind: str, reason: str, limit: int = 120) -> None:
        super().__init__(reason)
        self.code, self.kind, self.reason = code, kind, reason[:limit]


def refused(protocol: str, kind: str, reason: str, peer: Any, call_id: str | None = None) -> None:
    """Count and log one connection refused or closed for bad input (`kind`: a fixed word)."""
    metrics.PROTOCOL_ERRORS.labels(protocol, kind).inc()
    log.warning("%s: closing %s: %s (%s)", protocol, peer, reason, kind, extra={"call_id": call_id})


# --- ids and parties ----------------------------------------------------------------------------


def valid_call_id(value: object) -> bool:
    return isinstance(value, str) and _CALL_ID.fullmatch(value) is not None


MAX_NESTING = 64  # deeper than any protocol's message; a parser's recursion never comes near


def load_json(text: str | bytes) -> Any:
    """A client's JSON; `ValueError` for malformed JSON, nesting deeper than `MAX_NESTING`
    included: refused before the parser recurses (a `RecursionError` deep in C code leaves
    CPython 3.11's recursion accounting off; the parser is never asked to go that deep)."""
    raw = text.encode() if isinstance(text, str) else text
    opened = raw.count(b"[") + raw.count(b"{")
    if opened > MAX_NESTING and _depth(raw) > MAX_NESTING:
        raise ValueError(f"JSON nested deeper than {MAX_NESTING}")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(raw: bytes) -> int:
    """The deepest nesting of `raw`'s arrays and objects (brackets inside strings skipped)."""
    depth = deepest = 0
    for m in _STRUCTURE.finditer(raw):
        token = m.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def agent_id_of(*sources: Mapping[str, Any]) -> str:
    """The agent's id under any of the names platforms use, from the first source that has one
    (a number counts; an empty string or a boolean does not)."""
    for source in sources:
        for name in AGENT_ID_NAMES:
            value = source.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return ""


def id_problem(
    call_id: object, agent_id: object, names: tuple[str, str] = ("call id", "agent id")
) -> str | None:
    """What is wrong with a call's ids (they become Redis keys and panel addresses), or None;
    `names`: the two ids as the protocol names them."""
    if not valid_call_id(call_id):
        return f"{names[0]} must be 1-{MAX_ID} of A-Z a-z 0-9 . _ -"
    if not isinstance(agent_id, str) or len(agent_id) > MAX_ID:
        return f"{names[1]} must be a string of at most {MAX_ID} characters"
    return None


MAX_METADATA_VALUE = 256
_PHONE = re.compile(r"\+?[\d\s().-]{7,40}")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def masked_phone(value: str) -> str:
    """A value that is a phone number (7 to 15 digits, spaced as people write them; not a
    date), masked as other PII is: all but its last four digits."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if _PHONE.fullmatch(text) and 7 <= len(digits) <= 15 and not _DATE.fullmatch(text):
        return "***" + digits[-4:]
    return value


def kept_metadata(raw: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, str]:
    """The call metadata a platform sent, cut to the configured fields (`metadata_fields`):
    only those are stored, published and logged; each a scalar, at most 256 characters, a phone
    number masked. Everything else (caller numbers, free-form custom fields) is dropped."""
    out = {}
    for name in sorted(allowed & raw.keys()):
        value = raw[name]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out[name] = masked_phone(str(value)[:MAX_METADATA_VALUE])
    return out


PARTIES = {
    "customer": Channel.CUSTOMER,
    "external": Channel.CUSTOMER,  # AudioHook
    "inbound": Channel.CUSTOMER,  # Twilio: what the caller says
    "agent": Channel.AGENT,
    "internal": Channel.AGENT,  # AudioHook
    "outbound": Channel.AGENT,  # Twilio: what the caller hears
}


def party(name: object) -> Channel | None:
    """The party a platform's channel or track name stands for, or None."""
    return PARTIES.get(name) if isinstance(name, str) else None


def call_order(names: Sequence[object]) -> list[int] | None:
    """For interleaved channels named `names`, the column of the customer and of the agent (the
    pipeline's order), or None unless the names are one customer and one agent."""
    parties = [party(n) for n in names]
    if len(parties) != len(Channel) or set(parties) != set(Channel):
        return None
    return [parties.index(channel) for channel in Channel]


# --- credentials --------------------------------------------------------------------------------


def presented_secrets(headers: Mapping[str, str]) -> list[str]:
    """The credentials a client presents in its headers: `Authorization: Bearer T` or basic
    auth's password. Never the query string: a URL lands in access logs and histories."""
    found = []
    scheme, _, cred = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found.append(cred.strip())
    elif scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            found.append(base64.b64decode(cred, validate=True).decode().partition(":")[2])
    return [s for s in found if s]


def secret_matches(given: str | Sequence[str], expected: str) -> bool:
    """Whether a presented credential (or any of several) is the configured one, in constant
    time for each. A credential that is not ASCII never matches (and is no error)."""
    candidates = [given] if isinstance(given, str) else given
    want = expected.encode()
    return any(hmac.compare_digest(c.encode("utf-8", "replace"), want) for c in candidates)


def tenant_of(headers: Mapping[str, str], keys: Sequence[IngestKey]) -> str | None:
    """The tenant whose ingest key the request presents, or None. Every key is compared, so the
    time taken does not tell which came close."""
    given = presented_secrets(headers)
    found = None
    for key in keys:
        if secret_matches(given, key.secret) and found is None:
            found = key.tenant
    return found


def not_configured(config: GatewayConfig, what: str, setting: str) -> Refusal | None:
    """The refusal of an ingest (`what`) whose credential (`setting`) is not configured: it is
    closed to everyone, unless the gateway runs `--insecure` (None: open to anyone)."""
    if config.insecure:
        return None
    reason = f"{what} is closed: no credential is configured ({setting})"
    return Refusal(HTTPStatus.UNAUTHORIZED, "not_configured", reason)


def key_refusal(headers: Mapping[str, str], config: GatewayConfig, what: str) -> Refusal | None:
    """The bearer check of the protocols that take an ingest key (`what` names the protocol in
    the reason): None when a configured key is presented (or, with none configured, under
    `--insecure`)."""
    if not config.ingest_keys:
        return not_configured(config, what, "--ingest-keys")
    if tenant_of(headers, config.ingest_keys) is None:
        given = "a wrong" if presented_secrets(headers) else "no"
        reason = f"{what} needs an ingest key (Authorization: Bearer KEY); {given} key was given"
        return Refusal(HTTPStatus.UNAUTHORIZED, "unauthorized", reason)
    return None


# --- the WebSocket protocols --------------------------------------------------------------------


class Adapter:
    """One ingest protocol on the gateway's WebSocket port, at `path`."""

    protocol: ClassVar[str]
    path: ClassVar[str]

    def __init__(self, hub: CallHub, config: GatewayConfig) -> None:
        self.hub = hub
        self.config = config

    def admit(self, request: Request) -> Refusal | None:
        """The handshake's gate: a `Refusal` with an HTTP status (counted, logged and answered
        by the server before any audio), or None to let the upgrade through. Closed while the
        protocol's credential is not configured (`missing`, `not_configured`), else `check`."""
        setting = self.missing(self.config)
        if setting is not None and (refusal := not_configured(self.config, self.path, setting)):
            return refusal
        return self.check(request)

    def check(self, request: Request) -> Refusal | None:
        """The protocol's own check of the handshake (its credential, when configured: without
        one, only `--insecure` lets `admit` get here). By default: an ingest key."""
        return key_refusal(request.headers, self.config, self.path)

    @classmethod
    def missing(cls, config: GatewayConfig) -> str | None:
        """The setting of the credential this protocol lacks in `config` (then it is closed to
        all, or under `insecure` open to all), or None."""
        return None if config.ingest_keys else "--ingest-keys"

    def call_meta(
        self, ws: ServerConnection | None, metadata: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """What the call record keeps beside the ids: the tenant whose ingest key the connection
        presented, and the platform's metadata cut to the configured fields (`kept_metadata`)."""
        out: dict[str, Any] = {}
        if ws is not None and ws.request is not None:
            tenant = tenant_of(ws.request.headers, self.config.ingest_keys)
            if tenant:
                out["tenant"] = tenant
        kept = kept_metadata(metadata or {}, self.config.metadata_fields)
        if kept:
            out["metadata"] = kept
        return out

    async def handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    async def close(self, ws: ServerConnection, err: Refusal, call_id: str | None) -> None:
        """Count and log a refusal, then close the socket with its code and reason."""
        refused(self.protocol, err.kind, err.reason, ws.remote_address, call_id)
        with contextlib.suppress(ConnectionClosed):
            await ws.close(err.code, err.reason)
