"""Genesys Cloud AudioHook v2 (Monitor): `session` (the protocol, free of I/O), `auth` (the
request signature), `adapter` (the WebSocket edge and the events we send back).

Genesys (the client) connects with `Audiohook-Organization-Id`, `Audiohook-Correlation-Id`,
`Audiohook-Session-Id` and `X-API-KEY` headers, signed (RFC 9421 style, hmac-sha256 with the
base64 client secret) when a client secret is configured. Then, in JSON text messages numbered by
`seq` (each side its own, from 1; the client echoes our last as `serverseq`, we echo its last as
`clientseq`):

    open (media offers) -> opened (the one we pick)     ping -> pong
    paused / resumed (the client's own, or after our pause / resume)     discarded
    update -> updated          close -> (last events) closed          error: logged
    binary frames: interleaved samples of the picked media, in its `channels` order
    (`external` the customer, `internal` the agent), PCMU or L16 (little-endian) at 8 kHz

While the call is live we send `event` messages with a `transcript` entity per interim and final
(channelId: the index in the picked `channels`) and an `agentassist` entity with the final
utterance and any knowledge suggestions (type `faq`). Any violation (bad sequence, wrong id,
audio while paused or before `opened`, no two-channel media offered, ...) gets one `disconnect`
(reason `error`, with `info`), after which we wait for the client's `close` and answer `closed`;
bad credentials are refused with HTTP 401 before the upgrade.
"""

from gateway.audiohook.adapter import AudioHookAdapter, entities_for
from gateway.audiohook.auth import SIGNED, sign, signature_base, verify
from gateway.audiohook.session import AudioHookError, AudioHookSession, State, duration

__all__ = [
    "SIGNED", "AudioHookAdapter", "AudioHookError", "AudioHookSession", "State", "duration",
    "entities_for", "sign", "signature_base", "verify",
]  # fmt: skip
