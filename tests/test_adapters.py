"""The protocol state machines of the adapters, without sockets: AudioHook's sequence rules and
its published signature example, Twilio's ordering and signature, the audio fork's metadata,
the WebRTC answer's Opus parameters."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from websockets.datastructures import Headers

from gateway.audiofork import parse_fork
from gateway.audiohook import (
    AudioHookError,
    AudioHookSession,
    duration,
    sign,
    signature_base,
    verify,
)
from gateway.ingest import Refusal
from gateway.twilio import TwilioStream, signature, signed_urls
from gateway.webrtc import opus_answer
from loadtest.clients import twilio_messages

# The example request of Genesys's AudioHook security documentation, and its signature.
DOC_HEADERS = Headers(
    {
        "Host": "audiohook.example.com",
        "Audiohook-Organization-Id": "d7934305-0972-4844-938e-9060eef73d05",
        "Audiohook-Correlation-Id": "e160e428-53e2-487c-977d-96989bf5c99d",
        "Audiohook-Session-Id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
        "X-API-KEY": "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
        "Signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
        "Signature-Input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" '
        '"audiohook-session-id" "audiohook-correlation-id" "x-api-key");'
        'keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";'
        'alg="hmac-sha256";created=1641013200;expires=3282026430',
    }
)
DOC_SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
DOC_TARGET = "/api/v1/voicebiometrics/ws"


def test_audiohook_signature_matches_the_documented_example():
    base = signature_base(DOC_HEADERS, DOC_TARGET, DOC_HEADERS["Signature-Input"])
    assert sign(DOC_SECRET, base) == "NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4="
    key = DOC_HEADERS["X-API-KEY"]
    assert verify(DOC_HEADERS, DOC_TARGET, key, DOC_SECRET, now=lambda: 1641013205) is None
    assert "fresh" in verify(DOC_HEADERS, DOC_TARGET, key, DOC_SECRET, now=lambda: 1641099999)
    assert "verify" in verify(DOC_HEADERS, "/other", key, DOC_SECRET, now=lambda: 1641013205)
    assert "X-API-KEY" in verify(DOC_HEADERS, DOC_TARGET, "another", None)


def session_after_open() -> AudioHookSession:
    s = AudioHookSession("30b0e395-84d3-4570-ac13-9a62d8f514c0")
    kind, _ = s.parse(message(s, "open", 1))
    assert kind == "open"
    s.open(
        {
            "conversationId": "090eaa2f-72fa-480a-83e0-8667ff89c0ec",
            "organizationId": "d7934305-0972-4844-938e-9060eef73d05",
            "media": [
                {
                    "type": "audio",
                    "format": "L16",
                    "channels": ["external", "internal"],
                    "rate": 8000,
                },
                {
                    "type": "audio",
                    "format": "PCMU",
                    "channels": ["internal", "external"],
                    "rate": 8000,
                },
                {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
            ],
        }
    )
    return s


def message(s: AudioHookSession, kind: str, seq: int, **extra) -> str:
    msg = {"version": "2", "id": s.id, "type": kind, "seq": seq, "serverseq": s.seq,
           "position": "PT0S", "parameters": {}}  # fmt: skip
    return json.dumps(msg | extra)


def test_audiohook_picks_two_channel_pcmu_and_keeps_its_channel_order():
    s = session_after_open()
    assert s.media is not None and s.media.format == "PCMU"
    assert s.media.channels == ("internal", "external")
    pcm = s.audio(bytes([0x80, 0xFF] * 4), 65536)  # internal loud, external quiet (mu-law)
    assert pcm.shape == (4, 2) and abs(int(pcm[0, 0])) < abs(int(pcm[0, 1]))  # customer first
    opened = s.message("opened", media=[s.media.to_dict()])
    assert (opened["seq"], opened["clientseq"]) == (1, 1)


def test_audiohook_sequence_rules():
    s = session_after_open()
    with pytest.raises(AudioHookError, match="not \\+1"):
        s.parse(message(s, "ping", 3))
    with pytest.raises(AudioHookError, match="serverseq"):
        s.parse(message(s, "ping", 2, serverseq=5))
    with pytest.raises(AudioHookError, match="identifier"):
        s.parse(message(s, "ping", 2, id="00000000-0000-0000-0000-000000000001"))
    assert s.parse(message(s, "ping", 2))[0] == "ping"
    with pytest.raises(AudioHookError, match="whole"):
        s.audio(b"\x00" * 3, 65536)
    out = s.disconnect(AudioHookError("x", "Client Error: test"))
    assert out is not None and out["type"] == "disconnect"
    assert s.disconnect(AudioHookError("x", "again")) is None, "one disconnect per session"
    assert s.parse(message(s, "close", 9))[0] == "close", "close is taken after a disconnect"


def test_audiohook_durations():
    assert duration(12.34) == "PT12.34S" and duration(0) == "PT0S"


def test_twilio_places_chunks_by_timestamp_and_drops_duplicates():
    pcm = np.zeros((480, 2), dtype=np.int16)
    pcm[160:320, 0] = 8000  # the customer's second 20 ms is loud
    messages = [m for _, m in twilio_messages(pcm, "CA" + "1" * 32)]
    stream = TwilioStream()
    stream.receive(json.dumps(messages[0]))  # connected
    start = stream.receive(json.dumps(messages[1]))
    assert start.call_id.startswith("CA") and start.tracks == (0, 1)
    media = messages[2:-1]
    order = [media[i] for i in (2, 3, 0, 1, 4, 5)]  # the second 20 ms arrives first
    out = [stream.receive(json.dumps(m)) for m in [*order, order[0]]]
    assert stream.duplicates == 1
    got = np.concatenate([o for o in out if o is not None and len(o)])
    rest = stream.receive(json.dumps(messages[-1]))
    got = np.concatenate([got, rest])
    assert len(got) == 480 and (got[160:320, 0] != 0).all() and (got[:160, 0] == 0).all()
    with pytest.raises(Refusal, match="after stop"):
        stream.receive(json.dumps(messages[2]))


def test_twilio_signature_of_the_url_twilio_dialled():
    token, url = "12345", "wss://assist.example.com/twilio"
    expected = base64.b64encode(
        __import__("hmac").new(token.encode(), url.encode(), "sha1").digest()
    ).decode()
    assert signature(token, url) == expected
    variants = signed_urls("wss://assist.example.com", "/twilio")
    assert url in variants and "wss://assist.example.com:443/twilio" in variants


def test_fork_metadata_and_query():
    start = parse_fork("rate=16000&layout=agent,customer", '{"callId": "c1", "agentId": "a1"}')
    assert (start.call_id, start.agent_id, start.rate, start.order) == ("c1", "a1", 16000, [1, 0])
    assert parse_fork("", "free text from the dialplan").rate == 8000
    assert parse_fork("", '{"sampleRate": "16k", "uuid": "u-1"}').call_id == "u-1"
    with pytest.raises(Refusal, match="8000 or 16000"):
        parse_fork("rate=44100", None)


def test_the_webrtc_answer_asks_for_a_high_opus_bitrate_and_stereo():
    bare = "v=0\r\nm=audio 9 RTP 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000"
    out = opus_answer(bare, stereo=True).split("\r\n")
    fmtp = out[out.index("a=rtpmap:111 opus/48000/2") + 1]
    assert fmtp.startswith("a=fmtp:111 ") and "maxaveragebitrate=128000" in fmtp
    assert "stereo=1" in fmtp and "sprop-stereo=1" in fmtp
    given = bare + "\r\na=fmtp:111 minptime=10;useinbandfec=1"
    fmtps = [x for x in opus_answer(given, stereo=False).split("\r\n") if x.startswith("a=fmtp")]
    assert len(fmtps) == 1 and "useinbandfec=1" in fmtps[0] and "stereo" not in fmtps[0]


def test_audiosocket_takes_only_loopback_and_the_allowed_networks():
    from gateway.audiosocket import AudioSocketServer
    from gateway.calls import GatewayConfig

    def allowed(peer, *nets):
        server = AudioSocketServer(None, GatewayConfig(audiosocket_allow=nets))  # type: ignore[arg-type]
        return server._allowed(peer)

    assert allowed(("127.0.0.1", 5000)) and allowed(("::1", 5000, 0, 0))
    assert not allowed(("10.1.2.3", 5000)) and not allowed(None) and not allowed(("bogus", 1))
    assert allowed(("10.1.2.3", 5000), "10.1.0.0/16") and not allowed(
        ("10.2.0.1", 1), "10.1.0.0/16"
    )
