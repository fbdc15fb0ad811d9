"""WebRTC ingest with aiortc: an HTTP offer/answer endpoint and a small softphone page.

    POST /webrtc/offer  {"sdp": "...", "type": "offer", "call_id": "...", "agent_id": "...",
                         "layout": "tracks" | "stereo" | "agent" | "customer"}
      -> 200 {"sdp": "...", "type": "answer", "call_id": "..."}
    GET  /softphone     a page that streams a microphone or a WAV file to the endpoint
    POST /webrtc/hangup {"call_id": "..."}  ends the call (closing the page does too)

`layout`: "tracks" (default) is two audio tracks, the first the customer and the second the
agent (SIP-to-WebRTC gateways send one per party); "stereo" is one stereo Opus track, left the
customer, right the agent (the answer carries `stereo=1;sprop-stereo=1` so the browser keeps both
channels); "agent" or "customer" is one track of that party alone (an agent's softphone mic).
Only Opus is accepted. Bad input is answered with an HTTP error and a JSON
`{"error": kind, "reason": ...}`: 400 malformed, 401 without an ingest key (`Authorization:
Bearer KEY`, the native protocol's keys; the softphone page asks for one), 409 call id
in use, 413 oversized, 415 no Opus or the wrong number of audio tracks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any

import numpy as np
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from gateway.calls import CallHub, CallInUse, GatewayConfig, LiveCall
from gateway.ingest import (
    Refusal,
    id_problem,
    key_refusal,
    load_json,
    party,
    refused,
)
from gateway.tracks import TrackAligner, TrackJump
from pipeline.runtime import metrics
from pipeline.types import PCM, CallInfo, Encoding

log = logging.getLogger(__name__)

PROTOCOL = "webrtc"
BAD, UNAUTHORIZED, CONFLICT = HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED, HTTPStatus.CONFLICT
TOO_LARGE, UNSUPPORTED = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNSUPPORTED_MEDIA_TYPE
RATE = 48000  # Opus, as aiortc decodes it
LAYOUTS = {"tracks": 2, "stereo": 1, "agent": 1, "customer": 1}
MAX_OFFER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    call_id: str
    agent_id: str
    layout: str


def parse_offer(body: bytes) -> Offer:
    if len(body) > MAX_OFFER:
        raise Refusal(TOO_LARGE, "offer_too_large", "offer over 64 KiB")
    try:
        data = load_json(body)
    except ValueError:
        raise Refusal(BAD, "bad_json", "body is not JSON") from None
    if not isinstance(data, dict) or data.get("type") != "offer":
        raise Refusal(BAD, "bad_offer", 'body must be {"type": "offer", "sdp": ...}')
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise Refusal(BAD, "bad_offer", "sdp must be an SDP offer")
    call_id = data.get("call_id") or f"webrtc-{uuid.uuid4().hex[:12]}"
    agent_id = data.get("agent_id", "")
    if (problem := id_problem(call_id, agent_id, ("call_id", "agent_id"))) is not None:
        raise Refusal(BAD, "bad_offer", problem)
    layout = data.get("layout", "tracks")
    if layout not in LAYOUTS:
        raise Refusal(BAD, "bad_offer", f"layout must be one of {', '.join(LAYOUTS)}")
    audio = sdp.count("\nm=audio ")
    if audio != LAYOUTS[layout]:
        raise Refusal(
            UNSUPPORTED,
            "wrong_tracks",
            f"layout {layout} needs {LAYOUTS[layout]} audio track(s), the offer has {audio}",
        )
    if "opus/48000" not in sdp.lower():
        raise Refusal(
            UNSUPPORTED,
            "unsupported_codec",
            "the offer has no Opus; only Opus is accepted",
        )
    return Offer(sdp, call_id, agent_id, layout)


OPUS_BITRATE = 128_000  # per track: speech for a recognizer, not for an ear, so well above VoIP's


def opus_answer(sdp: str, stereo: bool) -> str:
    """The answer's Opus parameters: a high bitrate (the browser's default, ~32 kb/s, costs the
    recognizer words), and for a stereo track `stereo=1;sprop-stereo=1` so both channels stay."""
    params = {"maxaveragebitrate": str(OPUS_BITRATE), "maxplaybackrate": "48000"}
    if stereo:
        params |= {"stereo": "1", "sprop-stereo": "1"}
    opus = {m.group(1) for m in re.finditer(r"a=rtpmap:(\d+) opus/48000", sdp, re.I)}
    have = {m.group(1) for m in re.finditer(r"a=fmtp:(\d+) ", sdp)}
    out = []
    for line in sdp.split("\r\n"):
        m = re.match(r"a=fmtp:(\d+) (.*)", line)
        if m and m.group(1) in opus:
            given = dict(p.split("=", 1) for p in m.group(2).split(";") if "=" in p)
            line = f"a=fmtp:{m.group(1)} " + ";".join(
                f"{k}={v}" for k, v in (given | params).items()
            )
        out.append(line)
        m = re.match(r"a=rtpmap:(\d+) opus/48000", line, re.I)
        if m and m.group(1) not in have:
            out.append(f"a=fmtp:{m.group(1)} " + ";".join(f"{k}={v}" for k, v in params.items()))
    return "\r\n".join(out)


@dataclass(eq=False)
class _Peer:
    pc: RTCPeerConnection
    offer: Offer
    aligner: TrackAligner
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: bool = False  # ended by /webrtc/hangup (else the peer went away)
    task: asyncio.Task[None] | None = None


class WebRtcServer:
    def __init__(self, hub: CallHub, config: GatewayConfig) -> None:
        self.hub = hub
        self.config = config
        self._peers: dict[str, _Peer] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_OFFER * 2)
        app.router.add_get("/softphone", self._page)
        app.router.add_get("/softphone.js", self._script)
        app.router.add_post("/webrtc/offer", self._offer)
        app.router.add_post("/webrtc/hangup", self._hangup)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner,
            self.config.host,
            self.config.webrtc_port or 0,
            ssl_context=self.config.tls,
        )
        await self._site.start()
        server = self._site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        log.info("WebRTC offers on %s/webrtc/offer, softphone %s/softphone", self.url, self.url)

    async def stop(self, force: bool = False) -> None:
        peers = list(self._peers.values())
        if force:
            for peer in peers:
                await peer.pc.close()
        await asyncio.gather(*(p.task for p in peers if p.task is not None), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return _static("softphone.html", "text/html")

    async def _script(self, request: web.Request) -> web.StreamResponse:
        return _static("softphone.js", "application/javascript")

    async def _offer(self, request: web.Request) -> web.StreamResponse:
        try:
            if (refusal := key_refusal(request.headers, self.config, "WebRTC")) is not None:
                raise refusal
            offer = parse_offer(await request.read())
            if self.hub.in_use(offer.call_id) or offer.call_id in self._peers:
                raise Refusal(CONFLICT, "call_in_use", f"call {offer.call_id} is already streaming")
            answer = await self._answer(offer)
        except Refusal as err:
            refused(PROTOCOL, err.kind, err.reason, request.remote)
            return web.json_response({"error": err.kind, "reason": err.reason}, status=err.code)
        return web.json_response({"type": "answer", "sdp": answer, "call_id": offer.call_id})

    async def _hangup(self, request: web.Request) -> web.StreamResponse:
        if (refusal := key_refusal(request.headers, self.config, "WebRTC")) is not None:
            refused(PROTOCOL, refusal.kind, refusal.reason, request.remote)
            return web.json_response({"error": refusal.kind, "reason": refusal.reason}, status=401)
        with contextlib.suppress(ValueError, AttributeError):
            peer = self._peers.get(load_json(await request.read()).get("call_id"))
            if peer is not None:
                peer.hung_up = True
                peer.ended.set()
                return web.json_response({"ok": True})
        return web.json_response({"error": "no_such_call"}, status=404)

    async def _answer(self, offer: Offer) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        one = party(offer.layout)  # a one-party layout: that party's track only
        parties = (0, 1) if one is None else (one.value,)
        peer = _Peer(pc, offer, TrackAligner(RATE, hold_s=0.5, tracks=parties))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                peer.tracks.append(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                peer.ended.set()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            capabilities = RTCRtpReceiver.getCapabilities("audio")
            codecs = capabilities.codecs if capabilities is not None else []
            opus = [c for c in codecs if c.mimeType.lower() == "audio/opus"]
            for transceiver in pc.getTransceivers():
                transceiver.setCodecPreferences(opus)
                transceiver.direction = "recvonly"
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and friends on a bad SDP
            await pc.close()
            raise Refusal(BAD, "bad_sdp", f"the offer could not be answered: {exc}") from None
        self._peers[offer.call_id] = peer
        peer.task = asyncio.create_task(self._run(peer))
        sdp = pc.localDescription.sdp
        return opus_answer(sdp, stereo=offer.layout == "stereo")

    async def _run(self, peer: _Peer) -> None:
        offer = peer.offer
        info = CallInfo(offer.call_id, offer.agent_id, RATE, Encoding.PCM16)
        try:
            async with self.hub.call(info, PROTOCOL, meta={"layout": offer.layout}) as call:
                readers = [
                    asyncio.create_task(self._read(peer, call, i, t))
                    for i, t in enumerate(peer.tracks)
                ]
                ended = asyncio.create_task(peer.ended.wait())
                await asyncio.wait([ended, *readers], return_when=asyncio.FIRST_COMPLETED)
                if not peer.ended.is_set():
                    await asyncio.wait(readers)  # every track ended or went silent
                call.ended = "stop" if peer.hung_up else "disconnect"
                for task in (ended, *readers):
                    task.cancel()
                await call.feed_pcm(peer.aligner.flush())
                # RTP packets that never came (or came too late): silence in their place
                metrics.MEDIA_GAPS.labels(PROTOCOL).inc(peer.aligner.take_lost())
        except CallInUse:
            log.warning("call %s already streaming", offer.call_id)
        except Exception:
            log.exception("WebRTC call failed", extra={"call_id": offer.call_id})
        finally:
            self._peers.pop(offer.call_id, None)
            await peer.pc.close()

    async def _read(self, peer: _Peer, call: LiveCall, index: int, track: MediaStreamTrack) -> None:
        """One track's frames, placed by their RTP time (a lost packet leaves a gap of silence)."""
        layout = peer.offer.layout
        channels = (
            [0, 1] if layout == "stereo" else [one.value if (one := party(layout)) else index]
        )
        origin: int | None = None  # the call position of pts 0
        while True:
            try:  # a peer that vanished without closing sends nothing: given up after a while
                frame = await asyncio.wait_for(track.recv(), self.config.start_timeout_s)
            except (MediaStreamError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    refused(PROTOCOL, "no_media", "no audio for a while", None, call.info.call_id)
                for c in channels:
                    peer.aligner.end(c)
                return
            pcm = _frame_pcm(frame)
            pts = int(frame.pts or 0)
            if origin is None:
                origin = max(peer.aligner.join(c) for c in channels) - pts
            try:
                _place(peer, channels, pcm, origin + pts)
            except TrackJump:  # RTP time jumped (the sender's clock, or a hostile peer)
                refused(PROTOCOL, "rtp_jump", "RTP time jumped ahead", None, call.info.call_id)
                origin = max(peer.aligner.join(c) for c in channels) - pts  # go on from here
                _place(peer, channels, pcm, origin + pts)
            ready = peer.aligner.pop()
            if len(ready):
                await call.feed_pcm(ready)


def _place(peer: _Peer, channels: list[int], pcm: PCM, at: int) -> None:
    """One frame's audio at `at` on the call's clock, into each of its channels."""
    for i, c in enumerate(channels):
        column = pcm[:, min(i, pcm.shape[1] - 1)] if peer.offer.layout == "stereo" else pcm[:, 0]
        peer.aligner.put(c, column.copy(), at)


def _frame_pcm(frame: Any) -> PCM:
    """An aiortc audio frame (s16, 48 kHz, packed) as (n, channels) int16."""
    channels = len(frame.layout.channels)
    data: PCM = np.asarray(frame.to_ndarray(), dtype=np.int16)
    return data.reshape(-1, channels)


def _static(name: str, content_type: str) -> web.Response:
    text = resources.files("gateway").joinpath("static", name).read_text()
    return web.Response(text=text, content_type=content_type)
