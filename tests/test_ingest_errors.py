"""The bad-input matrix of every telephony protocol, against a gateway with credentials set.

Each offender gets its protocol's own way of saying no (an HTTP status before the upgrade, a
WebSocket close code, an AudioHook `disconnect`, an AudioSocket hang-up frame, an HTTP error for
a WebRTC offer), is counted in `agent_assist_protocol_errors_total{protocol,kind}`, and a good
call streaming through the same gateway the whole time loses nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_assist.replay import replay
from gateway.calls import GatewayConfig, IngestKey
from gateway.server import Gateway
from gateway.twilio import signature
from loadtest.clients import (
    LOCAL,
    audiohook_headers,
    audiohook_session,
    audiosocket_frame,
    open_parameters,
    twilio_messages,
    webrtc_offer,
)
from loadtest.protocols import wait_ended
from pipeline.bus.redis_bus import call_state
from pipeline.runtime import metrics
from pipeline.session import Stages
from pipeline.types import Channel
from tests.conftest import script_lines

TWILIO_TOKEN = "twilio-auth-token"
API_KEY = "audiohook-api-key"
SECRET = base64.b64encode(b"audiohook client secret").decode()
FORK_TOKEN = WEBRTC_TOKEN = "ingest-errors-key-0123456789"  # the gateway's ingest key ...
ROTATED = "ingest-errors-key-rotated-9876"  # ... and the same tenant's next one, both valid
LOCAL_GW_KEY = {"Authorization": f"Bearer {FORK_TOKEN}"}
TONE = (np.sin(np.arange(8000 * 2) / 8000 * 2 * np.pi * 440) * 3000).astype(np.int16)


@pytest.fixture(scope="module")
async def gw(service) -> AsyncIterator[Gateway]:
    """A second gateway on the same model and Redis, with every credential configured."""
    s = service.settings
    config = GatewayConfig(
        host=s.host,
        port=0,
        start_timeout_s=3.0,
        drain_timeout_s=30.0,
        twilio_auth_token=TWILIO_TOKEN,
        audiohook_api_key=API_KEY,
        audiohook_client_secret=SECRET,
        ingest_keys=(IngestKey("errors", FORK_TOKEN), IngestKey("errors", ROTATED)),
        metadata_fields=frozenset({"queue", "ani"}),
        audiosocket_port=0,
        webrtc_port=0,
    )
    gateway = Gateway(config, service.bus, Stages(service.owner, s.vad(), s.stream()))
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest.fixture(scope="module")
async def good_call(gw, sample_path) -> AsyncIterator[asyncio.Task[Any]]:
    """The sample call streams through the same gateway while every offender is refused."""
    task = asyncio.create_task(
        replay(sample_path, gw.url, speed=3.0, call_id="good-neighbour", key=FORK_TOKEN)
    )
    await asyncio.sleep(1.0)
    yield task
    task.cancel()


async def ended_meta(service: Any, keys: Any, call_id: str) -> dict[str, str]:
    await wait_ended(service.bus.redis, keys, call_id, within=15)
    meta, _ = await call_state(service.bus.redis, keys, call_id)
    return meta


def counted(protocol: str, kind: str) -> float:
    return metrics.PROTOCOL_ERRORS.labels(protocol, kind)._value.get()


async def closed_with(url: str, messages: list[str | bytes], **kw: Any) -> tuple[int | None, str]:
    async with connect(url, **kw) as ws:
        try:
            for m in messages:
                await ws.send(m)
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        return ws.close_code, ws.close_reason


# --- credentials -------------------------------------------------------------------------------


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"user:{password}".encode()).decode()}


async def test_native_refuses_a_missing_wrong_or_url_borne_key_before_the_upgrade(gw, good_call):
    before = counted("native", "unauthorized")
    refused = [
        (gw.url, {}),
        (gw.url, {"Authorization": "Bearer not-the-key-0123456789"}),
        (gw.url, basic("not-the-key-0123456789")),
        (gw.url + f"?token={FORK_TOKEN}", {}),  # a URL lands in logs: never looked at
    ]
    for url, headers in refused:
        with pytest.raises(InvalidStatus) as exc:
            async with connect(url, additional_headers=headers):
                pass
        assert exc.value.response.status_code == 401
        assert b"ingest key" in exc.value.response.body
    assert counted("native", "unauthorized") == before + len(refused)
    not_ascii = [("Host", "a.example"), ("Authorization", "Bearer clé-fausse-0123456789")]
    assert await raw_status(gw.port, "/v1/stream", not_ascii) in (400, 401)  # never a 500


async def test_either_key_of_a_tenant_opens_a_call_recorded_under_that_tenant(
    gw, service, keys, good_call
):
    """Rotation: the tenant's old and new keys both work until the old one is removed."""
    for n, headers in enumerate(({"Authorization": f"Bearer {ROTATED}"}, basic(FORK_TOKEN))):
        call_id = f"rotated-{n}-{uuid.uuid4().hex[:6]}"
        start = {"type": "start", "call_id": call_id, "sample_rate": 8000, "encoding": "pcm16"}
        async with connect(gw.url, additional_headers=headers) as ws:
            await ws.send(json.dumps(start))
            assert json.loads(await ws.recv())["type"] == "started"
            await ws.send(json.dumps({"type": "stop"}))
            async for _ in ws:
                pass
        assert (await ended_meta(service, keys, call_id))["tenant"] == "errors"


async def test_an_ingest_without_its_credential_is_closed_to_everyone(service):
    """On loopback with nothing configured (and no --insecure), every ingest says no and why."""
    s = service.settings
    config = GatewayConfig(host=s.host, port=0, webrtc_port=0)
    closed = Gateway(config, service.bus, Stages(service.owner, s.vad(), s.stream()))
    await closed.start()
    try:
        before = counted("twilio", "not_configured")
        for path, setting in [
            ("/v1/stream", b"--ingest-keys"),
            ("/twilio", b"--twilio-auth-token"),
            ("/audiohook", b"--audiohook-api-key"),
            ("/audiofork", b"--ingest-keys"),
        ]:
            headers = audiohook_headers(path, "x", str(uuid.uuid4()), str(uuid.uuid4()), "k")
            with pytest.raises(InvalidStatus) as exc:
                async with connect(closed.url_for(path), additional_headers=headers):
                    pass
            assert exc.value.response.status_code == 401
            assert setting in exc.value.response.body, exc.value.response.body
        assert counted("twilio", "not_configured") == before + 1
        assert closed.webrtc is not None
        code, reply = await asyncio.to_thread(
            post, f"{closed.webrtc.url}/webrtc/offer", offer(), "any-key-at-all-0123"
        )
        assert (code, reply["error"]) == (401, "not_configured")
    finally:
        await closed.stop()


METADATA = {"queue": "billing", "ani": "+1 (555) 555-0100", "ssn": "078-05-1120", "notes": "VIP"}
KEPT = {"queue": "billing", "ani": "***0100"}  # configured: queue and ani; a number is masked


async def stored_metadata(service: Any, keys: Any, call_id: str) -> dict[str, str]:
    meta = await ended_meta(service, keys, call_id)
    assert "078-05-1120" not in json.dumps(meta) and "VIP" not in json.dumps(meta)
    return dict(json.loads(meta["metadata"]))


async def test_only_configured_metadata_is_kept_on_every_ingest(gw, service, keys, good_call):
    """Native, Twilio, the audio fork and AudioHook each send metadata; the call record keeps
    the configured fields, the caller's number masked, and drops the rest."""
    native = f"meta-native-{uuid.uuid4().hex[:6]}"
    start = {"type": "start", "call_id": native, "sample_rate": 8000, "encoding": "pcm16"}
    async with connect(gw.url, additional_headers=fork_headers()) as ws:
        await ws.send(json.dumps(start | {"metadata": METADATA}))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.send(json.dumps({"type": "stop"}))
        async for _ in ws:
            pass
    assert await stored_metadata(service, keys, native) == KEPT

    sid = "CA" + uuid.uuid4().hex
    pcm = np.zeros((1600, 2), dtype=np.int16)
    async with connect(gw.url_for("/twilio"), additional_headers=twilio_headers(gw)) as ws:
        for _, message in twilio_messages(pcm, sid, METADATA):
            await ws.send(json.dumps(message))
    assert await stored_metadata(service, keys, sid) == KEPT

    fork = f"meta-fork-{uuid.uuid4().hex[:6]}"
    async with connect(gw.url_for("/audiofork"), additional_headers=fork_headers()) as ws:
        await ws.send(json.dumps({"callId": fork} | METADATA))
        await ws.send(pcm.astype("<i2").tobytes())
    assert await stored_metadata(service, keys, fork) == KEPT

    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        conversation = str(uuid.uuid4())
        custom = {"queue": "billing", "notes": "VIP"}  # the caller's number is the participant's
        await client.send(
            "open", **open_parameters(conversation, client.organization_id, custom=custom)
        )
        await client.expect("opened")
        await client.send("close", reason="end")
        await client.expect("closed")
    assert await stored_metadata(service, keys, conversation) == {
        "queue": "billing",
        "ani": "***0100",
    }


async def test_insecure_opens_what_has_no_credential_and_says_so_at_every_start(
    service, keys, caplog
):
    s = service.settings
    config = GatewayConfig(host=s.host, port=0, ingests=("native",), insecure=True)
    stages = Stages(service.owner, s.vad(), s.stream())
    for _ in range(2):  # every start
        caplog.clear()
        opened = Gateway(config, service.bus, stages)
        await opened.start()
        try:
            warned = [r for r in caplog.records if r.levelname == "WARNING"]
            assert any("INSECURE" in r.getMessage() and "/v1/stream" in r.getMessage()
                       for r in warned)  # fmt: skip
        finally:
            await opened.stop()
    opened = Gateway(config, service.bus, stages)
    await opened.start()
    try:
        call_id = f"insecure-{uuid.uuid4().hex[:6]}"
        start = {"type": "start", "call_id": call_id, "sample_rate": 8000, "encoding": "pcm16"}
        async with connect(opened.url) as ws:  # no key at all
            await ws.send(json.dumps(start))
            assert json.loads(await ws.recv())["type"] == "started"
            await ws.send(json.dumps({"type": "stop"}))
            async for _ in ws:
                pass
        assert "tenant" not in await ended_meta(service, keys, call_id)
    finally:
        await opened.stop()


# --- Twilio -------------------------------------------------------------------------------------


def twilio_start(call_sid: str, **changes: Any) -> list[str]:
    """`connected` and `start` of a stream, with `start.start` fields changed."""
    pcm = np.zeros((160, 2), dtype=np.int16)
    out = [m for _, m in twilio_messages(pcm, call_sid)][:2]
    out[1]["start"] |= changes
    return [json.dumps(m) for m in out]


def twilio_media(payload: str, seq: int = 3, timestamp: int = 0) -> str:
    media = {"track": "inbound", "chunk": "1", "timestamp": str(timestamp), "payload": payload}
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "media": media})


SILENT_20MS = base64.b64encode(b"\xff" * 160).decode()
TWILIO_CASES = [
    ("not JSON", lambda sid: ["hello"], 1007, "bad_json"),
    ("media before start", lambda sid: [twilio_media(SILENT_20MS, 1)], 1002, "out_of_order"),
    (
        "wrong codec",
        lambda sid: twilio_start(sid, mediaFormat={"encoding": "audio/x-l16", "sampleRate": 16000}),
        1003,
        "unsupported_media",
    ),
    ("bad base64", lambda sid: [*twilio_start(sid), twilio_media("%%%")], 1007, "bad_media"),
    (
        "oversized payload",
        lambda sid: [*twilio_start(sid), twilio_media("/" * 20000)],
        1009,
        "frame_too_large",
    ),
    (
        "second start",
        lambda sid: [*twilio_start(sid), twilio_start(sid)[1].replace('"1"', '"9"')],
        1002,
        "second_start",
    ),
    (
        "unknown event",
        lambda sid: [*twilio_start(sid), json.dumps({"event": "hangup", "sequenceNumber": "3"})],
        1007,
        "unknown_event",
    ),
    # hostile input: client-supplied times, nesting and ids never size memory or a key
    (
        "timestamp 10 minutes ahead",
        lambda sid: [*twilio_start(sid), twilio_media(SILENT_20MS, timestamp=600_000)],
        1007,
        "bad_timestamp",
    ),
    (
        "timestamp 2**50",
        lambda sid: [*twilio_start(sid), twilio_media(SILENT_20MS, timestamp=2**50)],
        1007,
        "bad_timestamp",
    ),
    ("JSON nested 30,000 deep", lambda sid: ["[" * 30000 + "]" * 30000], 1007, "bad_json"),
    (
        "call sid with a colon",
        lambda sid: twilio_start(sid, callSid="CA:events"),
        1007,
        "bad_start",
    ),
]


def twilio_headers(gw: Gateway, token: str = TWILIO_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": signature(token, gw.url_for("/twilio"))}


@pytest.mark.parametrize(("name", "messages", "code", "kind"), TWILIO_CASES)
async def test_twilio_bad_input(gw, good_call, name, messages, code, kind):
    before = counted("twilio", kind)
    sid = "CA" + uuid.uuid4().hex
    got = await closed_with(
        gw.url_for("/twilio"), messages(sid), additional_headers=twilio_headers(gw)
    )
    assert got[0] == code, (name, got)
    assert counted("twilio", kind) == before + 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_a_time_far_ahead_costs_no_memory_and_little_cpu(gw, good_call):
    """One media message stamped 10 minutes (or 2**50 ms) ahead used to fill the gap with
    silence: 20 CPU-seconds and gigabytes. Now it is refused before it sizes anything."""
    for stamp in (600_000, 2**50, 10**18):
        sid = "CA" + uuid.uuid4().hex
        messages = [*twilio_start(sid), twilio_media(SILENT_20MS, timestamp=stamp)]
        rss, cpu = rss_mb(), time.thread_time()  # the event loop's thread runs the gateway
        got = await closed_with(
            gw.url_for("/twilio"), messages, additional_headers=twilio_headers(gw)
        )
        assert got[0] == 1007 and "ahead of the call" in got[1], got
        assert time.thread_time() - cpu < 1.0
        assert rss_mb() - rss < 50


async def raw_status(port: int, path: str, headers: list[tuple[str, str]]) -> int:
    """The HTTP status a hand-written handshake gets (clients will not repeat a header)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
               ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode())]  # fmt: skip
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers + upgrade)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return int(status.split()[1])


async def test_repeated_handshake_headers_get_a_400_not_a_500(gw, good_call):
    hosts = [("Host", "a.example"), ("Host", "b.example")]
    assert await raw_status(gw.port, "/twilio", hosts) == 400
    session = str(uuid.uuid4())
    twice = [("Audiohook-Session-Id", session)] * 2
    audiohook = [("Host", "a.example"), *twice, ("Audiohook-Organization-Id", session)]
    assert await raw_status(gw.port, "/audiohook", audiohook) == 400


async def test_a_call_id_live_on_one_gateway_is_refused_on_another(gw, service, good_call):
    """Ids are unique across gateways (a claim on Redis), not per process: the good call streams
    on `gw`; the service's own gateway, another process in production, refuses its id."""
    messages = [json.dumps({"type": "start", "version": 1, "call_id": "good-neighbour",
                            "sample_rate": 8000, "encoding": "pcm16"})]  # fmt: skip
    code, reason = await closed_with(service.url, messages, additional_headers=LOCAL.bearer())
    assert (code, reason) == (4409, "call_id is in use or was used before")


async def test_twilio_wrong_signature_is_refused_before_the_upgrade(gw, good_call):
    before = counted("twilio", "forbidden")
    for headers in ({}, twilio_headers(gw, "someone-else")):
        with pytest.raises(InvalidStatus) as exc:
            async with connect(gw.url_for("/twilio"), additional_headers=headers):
                pass
        assert exc.value.response.status_code == 403
    assert counted("twilio", "forbidden") == before + 2


async def test_twilio_stream_cut_mid_call_keeps_what_was_said(gw, service, keys, good_call):
    sid = "CA" + uuid.uuid4().hex
    pcm = np.stack([TONE, TONE], axis=1)
    disconnects = metrics.DISCONNECTS._value.get()
    async with connect(gw.url_for("/twilio"), additional_headers=twilio_headers(gw)) as ws:
        for i, (_, message) in enumerate(twilio_messages(pcm, sid)):
            if message["event"] == "stop":
                break
            if i == 2:
                dup = json.dumps(message)
                await ws.send(dup)  # a repeated sequence number is dropped, not an error
            await ws.send(json.dumps(message))
        ws.transport.abort()  # vanish: no stop, no close handshake
    meta = await ended_meta(service, keys, sid)
    assert meta["ended"] == "disconnect" and float(meta["duration"]) == pytest.approx(2.0, 0.05)
    assert metrics.DISCONNECTS._value.get() == disconnects + 1


# --- Genesys AudioHook --------------------------------------------------------------------------


def audiohook_url(gw: Gateway) -> str:
    return gw.url_for("/audiohook")


async def test_audiohook_refuses_wrong_credentials_with_401(gw, good_call):
    before = counted("audiohook", "unauthorized")
    url = audiohook_url(gw)
    target, authority = "/audiohook", url.split("/")[2]
    sid, org = str(uuid.uuid4()), str(uuid.uuid4())
    wrong = [
        audiohook_headers(target, authority, sid, org, "wrong-key", SECRET),
        audiohook_headers(target, authority, sid, org, API_KEY, None),  # unsigned
        audiohook_headers(target, authority, sid, org, API_KEY, base64.b64encode(b"x").decode()),
        audiohook_headers(target, authority, sid, org, API_KEY, SECRET, created=1_600_000_000),
    ]
    for headers in wrong:
        with pytest.raises(InvalidStatus) as exc:
            async with connect(url, additional_headers=headers):
                pass
        assert exc.value.response.status_code == 401
    assert counted("audiohook", "unauthorized") == before + len(wrong)
    headers = audiohook_headers(target, authority, sid, org, API_KEY, SECRET)
    async with connect(url, additional_headers=headers) as ws:  # the signature's first use
        await ws.close()
    with pytest.raises(InvalidStatus) as exc:  # captured and replayed: refused
        async with connect(url, additional_headers=headers):
            pass
    assert exc.value.response.status_code == 401
    assert b"replay" in exc.value.response.body
    del headers["Audiohook-Session-Id"]
    with pytest.raises(InvalidStatus) as exc:
        async with connect(url, additional_headers=headers):
            pass
    assert exc.value.response.status_code == 400


def envelope(client: Any, kind: str, **changes: Any) -> str:
    msg = {
        "version": "2",
        "id": client.id,
        "type": kind,
        "seq": client.seq + 1,
        "serverseq": client.server_seq,
        "position": "PT0S",
        "parameters": {},
    }
    return json.dumps(msg | changes)


async def opened(client: Any, **media: Any) -> dict[str, Any]:
    conversation = str(uuid.uuid4())
    params = open_parameters(conversation, client.organization_id, **media)
    await client.send("open", **params)
    return await client.expect("opened", within=10)


def bad_seq(client):
    return envelope(client, "ping", seq=client.seq + 5)


def wrong_id(client):
    return envelope(client, "ping", id=str(uuid.uuid4()))


AUDIOHOOK_CASES = [
    # (name, open first?, what to send, metric kind)
    ("not JSON", True, lambda c: "{oops", "bad_json"),
    ("JSON nested 30,000 deep", True, lambda c: "[" * 30000 + "]" * 30000, "bad_json"),
    ("seq not +1", True, bad_seq, "bad_sequence"),
    ("wrong session id", True, wrong_id, "bad_sequence"),
    ("unknown type", True, lambda c: envelope(c, "dance"), "unknown_message"),
    ("audio before open", False, lambda c: b"\xff" * 1600, "out_of_order"),
    ("frame not whole samples", True, lambda c: b"\xff" * 1601, "partial_frame"),
    ("oversized frame", True, lambda c: b"\xff" * 70000, "frame_too_large"),
]


@pytest.mark.parametrize(("name", "open_first", "send", "kind"), AUDIOHOOK_CASES)
async def test_audiohook_bad_input_gets_one_disconnect_then_closed(
    gw, good_call, name, open_first, send, kind
):
    before = counted("audiohook", kind)
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        if open_first:
            await opened(client)
        message = send(client)
        await client.ws.send(message)
        disconnect = await client.expect("disconnect", within=10)
        assert disconnect["parameters"]["reason"] == "error", disconnect
        assert disconnect["parameters"]["info"], disconnect
        await client.ws.send(b"\xff" * 160)  # ignored after the disconnect
        await client.send("close", reason="disconnect")
        closed = await client.expect("closed", within=30)
        assert closed["clientseq"] == client.seq
    assert counted("audiohook", kind) == before + 1, name
    assert sum(m["type"] == "disconnect" for m in client.received) == 1


async def test_audiohook_without_two_channels_is_refused(gw, good_call):
    before = counted("audiohook", "unsupported_media")
    mono = [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}]
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        params = open_parameters(str(uuid.uuid4()), client.organization_id, media=mono)
        await client.send("open", **params)
        disconnect = await client.expect("disconnect", within=10)
        assert "external and internal" in disconnect["parameters"]["info"]
        await client.send("close", reason="disconnect")
        await client.expect("closed")
    assert counted("audiohook", "unsupported_media") == before + 1


async def test_audiohook_lifecycle_ping_pause_update_and_probe(gw, service, keys, good_call):
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        reply = await opened(
            client,
            media=[
                {
                    "type": "audio",
                    "format": "L16",
                    "channels": ["internal", "external"],
                    "rate": 8000,
                }
            ],
        )
        media = reply["parameters"]["media"]
        assert media == [
            {"type": "audio", "format": "L16", "channels": ["internal", "external"], "rate": 8000}
        ]
        await client.send("ping", rtt="PT0.01S")
        pong = await client.expect("pong")
        assert pong["clientseq"] == client.seq
        pcm = np.stack([TONE * 0, TONE], axis=1)  # internal first: the agent's tone
        await client.ws.send(pcm[:1600].astype("<i2").tobytes())
        await client.send("paused")
        await client.ws.send(pcm[:160].astype("<i2").tobytes())  # audio while paused
        disconnect = await client.expect("disconnect")
        assert "paused" in disconnect["parameters"]["info"]
        await client.send("close", reason="disconnect")
        await client.expect("closed")
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        await opened(client)
        await client.send("paused")
        await client.send("resumed", start="PT0.2S", discarded="PT1.5S")
        await client.send("discarded", start="PT1.7S", discarded="PT0.3S")
        await client.send("update", language="en-GB")
        await client.expect("updated")
        await client.send("error", code=500, message="a client-side hiccup")
        await client.send("close", reason="end")
        await client.expect("closed")
        assert not [m for m in client.received if m["type"] == "disconnect"]
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        params = open_parameters("00000000-0000-0000-0000-000000000000", client.organization_id)
        await client.send("open", **params)
        probe = await client.expect("opened")
        assert probe["parameters"]["media"] == []
        await client.send("close", reason="end")
        await client.expect("closed")


async def test_audiohook_client_vanishing_ends_the_call(gw, service, keys, good_call):
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        conversation = str(uuid.uuid4())
        await client.send("open", **open_parameters(conversation, client.organization_id))
        await client.expect("opened")
        await client.ws.send(b"\xff" * 16000)
        await asyncio.sleep(0.2)
        client.ws.transport.abort()
    meta = await ended_meta(service, keys, conversation)
    assert meta["ended"] == "disconnect"


# --- FreeSWITCH audio fork ----------------------------------------------------------------------


def fork_headers(token: str = FORK_TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"fs:{token}".encode()).decode()}


FORK_CASES = [
    ("wrong rate", ['{"callId": "f1", "sampleRate": 44100}'], 1003, "unsupported_rate"),
    ("bad call id", ['{"callId": "a b/c"}'], 1007, "bad_metadata"),
    ("call id with a colon", ['{"callId": "victim:transcript"}'], 1007, "bad_metadata"),
    ("not whole frames", ['{"callId": "f2"}', b"\x00\x01\x02"], 1007, "partial_frame"),
    ("oversized frame", ['{"callId": "f3"}', bytes(65536 + 4)], 1009, "frame_too_large"),
]


@pytest.mark.parametrize(("name", "messages", "code", "kind"), FORK_CASES)
async def test_audiofork_bad_input(gw, good_call, name, messages, code, kind):
    before = counted("audiofork", kind)
    messages = [
        m.replace('"f', f'"{uuid.uuid4().hex[:6]}') if isinstance(m, str) else m for m in messages
    ]
    got = await closed_with(
        gw.url_for("/audiofork"),
        messages,
        additional_headers=fork_headers(),
        subprotocols=["audio.drachtio.org"],
    )
    assert got[0] == code, (name, got)
    assert counted("audiofork", kind) == before + 1


async def test_audiofork_needs_an_ingest_key_in_its_headers(gw, good_call):
    before = counted("audiofork", "unauthorized")
    url = gw.url_for("/audiofork")
    refused = [
        (url, {}),
        (url, fork_headers("wrong")),
        (url, {"Authorization": "Bearer wrong"}),
        (gw.url_for(f"/audiofork?token={FORK_TOKEN}"), {}),  # never in a URL
    ]
    for target, headers in refused:
        with pytest.raises(InvalidStatus) as exc:
            async with connect(target, additional_headers=headers):
                pass
        assert exc.value.response.status_code == 401
    assert counted("audiofork", "unauthorized") == before + len(refused)
    url = gw.url_for("/audiofork?call_id=fork-token-ok")
    async with connect(url, additional_headers={"Authorization": f"Bearer {FORK_TOKEN}"}) as ws:
        await ws.send(np.zeros(320, dtype="<i2").tobytes())


async def test_audiofork_second_fork_of_a_live_call_is_refused(gw, good_call):
    before = counted("audiofork", "call_in_use")
    url, meta = gw.url_for("/audiofork"), '{"callId": "fork-twice"}'
    async with connect(url, additional_headers=fork_headers()) as first:
        await first.send(meta)
        await first.send(np.zeros(640, dtype="<i2").tobytes())
        await asyncio.sleep(0.3)
        got = await closed_with(url, [meta], additional_headers=fork_headers())
        assert got[0] == 1008
    assert counted("audiofork", "call_in_use") == before + 1


async def test_audiofork_cut_mid_call_keeps_what_was_said(gw, service, keys, good_call):
    call = f"fork-cut-{uuid.uuid4().hex[:6]}"
    pcm = np.stack([TONE, TONE], axis=1).astype("<i2")
    async with connect(gw.url_for("/audiofork"), additional_headers=fork_headers()) as ws:
        await ws.send(json.dumps({"callId": call}))
        for i in range(0, len(pcm), 160):
            await ws.send(pcm[i : i + 160].tobytes())
        ws.transport.abort()
    meta = await ended_meta(service, keys, call)
    assert meta["ended"] == "disconnect" and float(meta["duration"]) == pytest.approx(2.0, 0.05)


# --- Asterisk AudioSocket -----------------------------------------------------------------------


async def audiosocket_reply(gw: Gateway, channel: Channel, data: bytes) -> bytes:
    assert gw.audiosocket is not None
    reader, writer = await asyncio.open_connection(gw.config.host, gw.audiosocket.ports[channel])
    writer.write(data)
    writer.write_eof()
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return reply


def uuid_frame() -> bytes:
    return audiosocket_frame(0x01, uuid.uuid4().bytes)


AUDIOSOCKET_CASES = [
    ("audio before the UUID", lambda: audiosocket_frame(0x10, bytes(320)), "uuid_first"),
    (
        "unknown frame type",
        lambda: uuid_frame() + audiosocket_frame(0x20, b"x"),
        "unsupported_type",
    ),
    (
        "24 kHz audio",
        lambda: uuid_frame() + audiosocket_frame(0x13, bytes(960)),
        "unsupported_type",
    ),
    ("odd slin bytes", lambda: uuid_frame() + audiosocket_frame(0x10, bytes(321)), "partial_frame"),
    ("oversized frame", lambda: uuid_frame() + struct.pack(">BH", 0x10, 0xFFFF), "frame_too_large"),
    (
        "cut inside a frame",
        lambda: uuid_frame() + struct.pack(">BH", 0x10, 320) + bytes(9),
        "truncated",
    ),
]


@pytest.mark.parametrize(("name", "data", "kind"), AUDIOSOCKET_CASES)
async def test_audiosocket_bad_input_is_hung_up(gw, good_call, name, data, kind):
    before = counted("audiosocket", kind)
    reply = await audiosocket_reply(gw, Channel.CUSTOMER, data())
    assert reply == b"\x00\x00\x00", (name, reply)
    assert counted("audiosocket", kind) == before + 1


async def test_audiosocket_same_leg_twice_is_refused(gw, good_call):
    before = counted("audiosocket", "call_in_use")
    call = uuid_frame()
    _, writer = await asyncio.open_connection(gw.config.host, gw.audiosocket.ports[Channel.AGENT])
    writer.write(call + audiosocket_frame(0x10, bytes(320)))
    await writer.drain()
    await asyncio.sleep(0.3)
    reply = await audiosocket_reply(gw, Channel.AGENT, call + audiosocket_frame(0x10, bytes(320)))
    assert reply == b"\x00\x00\x00"
    writer.write(audiosocket_frame(0x00))
    writer.close()
    assert counted("audiosocket", "call_in_use") == before + 1


# --- WebRTC -------------------------------------------------------------------------------------

OPUS_OFFER = """v=0\r
o=- 1 1 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
c=IN IP4 0.0.0.0\r
a=mid:0\r
a=sendonly\r
a=rtpmap:111 opus/48000/2\r
"""


def offer(sdp: str = OPUS_OFFER, **fields: Any) -> bytes:
    return json.dumps({"type": "offer", "sdp": sdp, "layout": "agent", **fields}).encode()


def post(url: str, body: bytes, token: str | None = WEBRTC_TOKEN) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


WEBRTC_CASES = [
    ("no token", offer(), None, 401, "unauthorized"),
    ("not JSON", b"{sdp", WEBRTC_TOKEN, 400, "bad_json"),
    ("JSON nested 30,000 deep", b"[" * 30000 + b"]" * 30000, WEBRTC_TOKEN, 400, "bad_json"),
    ("not an offer", json.dumps({"type": "answer"}).encode(), WEBRTC_TOKEN, 400, "bad_offer"),
    (
        "no Opus",
        offer(OPUS_OFFER.replace("opus/48000/2", "PCMU/8000").replace("111", "0")),
        WEBRTC_TOKEN,
        415,
        "unsupported_codec",
    ),
    ("two parties on one track", offer(layout="tracks"), WEBRTC_TOKEN, 415, "wrong_tracks"),
    ("broken SDP", offer(OPUS_OFFER.replace("a=mid:0", "a=mid")), WEBRTC_TOKEN, 400, "bad_sdp"),
    (
        "oversized",
        offer(OPUS_OFFER + "a=x:" + "y" * 70000 + "\r\n"),
        WEBRTC_TOKEN,
        413,
        "offer_too_large",
    ),
]


@pytest.mark.parametrize(("name", "body", "token", "status", "kind"), WEBRTC_CASES)
async def test_webrtc_bad_offers(gw, good_call, name, body, token, status, kind):
    before = counted("webrtc", kind)
    url = f"{gw.webrtc.url}/webrtc/offer"
    code, reply = await asyncio.to_thread(post, url, body, token)
    assert (code, reply.get("error")) == (status, kind), (name, reply)
    assert "reason" in reply
    assert counted("webrtc", kind) == before + 1


async def test_webrtc_second_offer_unknown_hangup_and_a_peer_that_goes_away(
    gw, service, keys, good_call, loopback_ice
):
    url = f"{gw.webrtc.url}/webrtc/offer"
    tone = np.repeat(TONE, 6)  # 2 s at 48 kHz
    call = f"webrtc-{uuid.uuid4().hex[:8]}"
    pc, status, reply = await webrtc_offer(url, [tone], call, "agent", WEBRTC_TOKEN)
    assert status == 200 and reply["call_id"] == call
    for _ in range(100):
        if pc.connectionState == "connected":
            break
        await asyncio.sleep(0.1)
    assert pc.connectionState == "connected"
    before = counted("webrtc", "call_in_use")
    second, status, reply = await webrtc_offer(url, [tone], call, "agent", WEBRTC_TOKEN)
    await second.close()
    assert (status, reply["error"]) == (409, "call_in_use")
    assert counted("webrtc", "call_in_use") == before + 1
    code, reply = await asyncio.to_thread(
        post, f"{gw.webrtc.url}/webrtc/hangup", b'{"call_id": "no-such-call"}'
    )
    assert (code, reply["error"]) == (404, "no_such_call")
    await asyncio.sleep(2.0)
    await pc.close()  # gone, without a hang-up
    meta = await ended_meta(service, keys, call)
    assert meta["ended"] == "disconnect" and meta["protocol"] == "webrtc"
    assert float(meta["duration"]) >= 1.5


# --- the neighbour ------------------------------------------------------------------------------


# --- every attack at once -----------------------------------------------------------------------


def deep(n: int = 100_000) -> str:
    """JSON nested `n` deep (200 kB: under the frame limit, over any parser's recursion)."""
    return "[" * n + "]" * n


def native_start(**changes: Any) -> str:
    start = {"type": "start", "call_id": f"fz-{uuid.uuid4().hex[:8]}", "sample_rate": 8000,
             "encoding": "pcm16"}  # fmt: skip
    return json.dumps(start | changes)


async def attack_native(gw: Gateway, messages: list[str | bytes]) -> int | None:
    return (await closed_with(gw.url, messages, additional_headers=LOCAL_GW_KEY))[0]


async def attack_twilio(gw: Gateway, messages: list[str]) -> int | None:
    url, headers = gw.url_for("/twilio"), twilio_headers(gw)
    return (await closed_with(url, messages, additional_headers=headers))[0]


async def attack_fork(gw: Gateway, messages: list[str | bytes]) -> int | None:
    url = gw.url_for("/audiofork")
    return (await closed_with(url, messages, additional_headers=fork_headers()))[0]


async def attack_audiohook(gw: Gateway, message: Callable[[Any], str]) -> int | str | None:
    """AudioHook's first answer to `message(client)`: its type (`disconnect`, then Genesys
    closes), or the close code."""
    async with audiohook_session(audiohook_url(gw), API_KEY, SECRET) as client:
        await client.ws.send(message(client))
        for _ in range(600):
            if client.received:
                return str(client.received[0]["type"])
            if client.ws.close_code is not None:
                return client.ws.close_code
            await asyncio.sleep(0.05)
        return None


def twilio_media_seq(digits: str) -> str:
    media = {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": SILENT_20MS}
    return json.dumps({"event": "media", "sequenceNumber": digits, "media": media})


async def fork_streams(gw: Gateway, messages: list[str | bytes]) -> str | int | None:
    """ "streaming" when the fork is still taking audio after `messages` (then it hangs up)."""
    url = gw.url_for("/audiofork")
    async with connect(url, additional_headers=fork_headers()) as ws:
        for m in messages:
            await ws.send(m)
        await asyncio.sleep(0.5)
        return "streaming" if ws.close_code is None else ws.close_code


def twilio_stop() -> str:
    return json.dumps({"event": "stop", "sequenceNumber": "9"})


Outcome = int | str | None  # a close code or HTTP status; AudioHook: "disconnect"
ATTACKS: list[tuple[str, Callable[[Gateway], Awaitable[Outcome]], set[Outcome]]] = [
    ("native: JSON nested 10^5 deep", lambda gw: attack_native(gw, [deep()]), {4400}),
    ("native: sample_rate 2**50",
     lambda gw: attack_native(gw, [native_start(sample_rate=2**50)]), {4415}),
    *[(f"native: call id with {c!r}",
       lambda gw, c=c: attack_native(gw, [native_start(call_id=f"victim{c}x")]), {4400})
      for c in (":", "*", "\n", ":transcript", " ")],
    ("native: a finished call's id",
     lambda gw: attack_native(gw, [native_start(call_id="fz-used")]), {4409}),
    ("native: an oversized frame",
     lambda gw: attack_native(gw, [native_start(), bytes(65536 + 4)]), {1009}),
    ("native: repeated Host", lambda gw: raw_status(
        gw.port, "/v1/stream", [("Host", "a"), ("Host", "b")]), {400, 401}),
    ("twilio: repeated Host", lambda gw: raw_status(
        gw.port, "/twilio", [("Host", "a"), ("Host", "b")]), {400}),
    ("native: non-ASCII key", lambda gw: raw_status(
        gw.port, "/v1/stream", [("Host", "a"), ("Authorization", "Bearer clé")]), {400, 401}),
    ("twilio: timestamp 2**50",
     lambda gw: attack_twilio(gw, [*twilio_start("CA" + uuid.uuid4().hex),
                                   twilio_media(SILENT_20MS, timestamp=2**50)]), {1007}),
    ("twilio: sequence number 2**50",
     lambda gw: attack_twilio(gw, [*twilio_start("CA" + uuid.uuid4().hex),
                                   twilio_media(SILENT_20MS, seq=2**50), twilio_stop()]),
     {1000}),
    ("twilio: sequence number of 10^4 digits",
     lambda gw: attack_twilio(gw, [*twilio_start("CA" + uuid.uuid4().hex),
                                   twilio_media_seq("9" * 10_000)]),
     {1007}),
    ("twilio: JSON nested 10^5 deep (over its 64 KiB message limit)",
     lambda gw: attack_twilio(gw, [deep()]), {1009}),
    ("twilio: JSON nested 30,000 deep (under it)",
     lambda gw: attack_twilio(gw, [deep(30_000)]), {1007}),
    ("twilio: callSid with ':'",
     lambda gw: attack_twilio(gw, twilio_start("CA:victim")), {1007}),
    ("audiohook: JSON nested 10^5 deep",
     lambda gw: attack_audiohook(gw, lambda c: deep()), {"disconnect"}),
    ("audiohook: JSON nested 30,000 deep",
     lambda gw: attack_audiohook(gw, lambda c: deep(30_000)), {"disconnect"}),
    ("audiohook: seq 2**50",
     lambda gw: attack_audiohook(gw, lambda c: envelope(c, "ping", seq=2**50)), {"disconnect"}),
    ("audiohook: discarded for 10^15 seconds", lambda gw: attack_audiohook(
        gw, lambda c: envelope(c, "discarded", parameters={"start": "PT0S",
                                                            "discarded": "PT1000000000000000S"})),
     {"disconnect"}),
    ("audio fork: call id with a newline",
     lambda gw: attack_fork(gw, ['{"callId": "victim\\ntranscript"}']), {1007}),
    ("audio fork: metadata nested 10^5 deep (free text: a call with an id of its own)",
     lambda gw: fork_streams(gw, [deep(), bytes(640)]), {"streaming"}),
]  # fmt: skip


async def test_every_attack_is_contained_and_costs_little(gw, service, keys, good_call):
    """The attacks of issue 15, each on its own connection beside the good call: each gets a
    clean refusal, costs under 1 CPU-second of the event loop and under 50 MB, and the good call
    streams on (`test_the_good_call_was_untouched`)."""
    used = native_start(call_id="fz-used")
    assert await attack_native(gw, [used, json.dumps({"type": "stop"})]) == 1000
    await ended_meta(service, keys, "fz-used")
    start_rss = rss_mb()
    for name, attack, expected in ATTACKS:
        rss, cpu = rss_mb(), time.thread_time()
        got = await asyncio.wait_for(attack(gw), 30)
        assert got in expected, (name, got)
        assert time.thread_time() - cpu < 1.0, name
        assert rss_mb() - rss < 50, name
    assert rss_mb() - start_rss < 50
    assert not good_call.done(), "the good call is still streaming"


async def test_the_good_call_was_untouched(gw, good_call, service, keys):
    result = await good_call
    assert result.close_code == 1000
    assert result.stopped["finals"] == len(script_lines())
    meta, _ = await call_state(service.bus.redis, keys, "good-neighbour")
    assert meta["ended"] == "stop"
