"""The serving process: Redis (configured or embedded), the model owners, the gateway, the panels.

With `role = gateway` the models are not loaded here: the calls' passes go over Redis Streams to
`agent-assist worker` processes (`agent_assist.worker`, `pipeline.bus.worker`).

Start-up refuses a malformed rules or knowledge file (file, line and field named) before any model
loads. The parts start in a fixed order on one `AsyncExitStack`, and stop in reverse, also when a
start fails half-way: stop accepting and drain calls, stop the panels, stop the stages' model
threads (or the job client), close Redis, stop the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
from collections.abc import Callable
from types import TracebackType

from agent_assist.embedded_redis import EmbeddedRedis
from agent_assist.settings import Settings
from coach_ui.server import PanelServer
from gateway.calls import IngestKey
from gateway.server import Gateway, exposure
from pipeline.assist.call_assist import AssistServices
from pipeline.assist.knowledge import load_knowledge
from pipeline.assist.rules import load_rules
from pipeline.bus.client import connect, masked
from pipeline.bus.jobs import JobClient
from pipeline.bus.redis_bus import RedisBus
from pipeline.bus.remote import RemoteAsr, RemoteSentiment
from pipeline.mood.call_mood import MoodServices
from pipeline.mood.sentiment import SentimentConfig, SentimentService
from pipeline.session import Stages
from pipeline.speech.asr import AsrService, ModelOwner

log = logging.getLogger(__name__)


class Service:
    def __init__(self, settings: Settings, progress: Callable[[int, int], None] | None = None):
        self.settings = settings
        self._progress = progress
        self.embedded: EmbeddedRedis | None = None
        self.redis_url = settings.redis_url or ""
        self.owner: AsrService | None = None
        self.jobs: JobClient | None = None
        self.bus: RedisBus | None = None
        self.gateway: Gateway | None = None
        self.mood: MoodServices | None = None
        self.assist: AssistServices | None = None
        self.panels: PanelServer | None = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    @property
    def ingest_key(self) -> str:
        """The first configured ingest key's secret (what a local client presents), or ""."""
        assert self.gateway is not None
        keys = self.gateway.config.ingest_keys
        return keys[0].secret if keys else ""

    async def __aenter__(self) -> Service:
        s = self.settings = minted(self.settings)
        if (problem := exposure(s.gateway())) is not None:  # before anything starts
            raise ValueError(problem)
        if s.assist:  # a broken rules or knowledge file stops us before anything starts
            cfg = s.assist_config()
            load_rules(cfg.rules_file)
            if cfg.knowledge_file is not None:
                load_knowledge(cfg.knowledge_file)
        async with contextlib.AsyncExitStack() as stack:  # on a failed start: undone in reverse
            await self._start(stack)
            self._stack = stack.pop_all()
        return self

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        """Each part once the parts it needs are up; each registers its stop as it starts, so
        the stack stops them in reverse: gateway (drains calls), panels, stages, Redis."""
        s = self.settings
        if not s.redis_url:
            self.embedded = await asyncio.to_thread(EmbeddedRedis().start)
            stack.callback(self.embedded.stop)
            self.redis_url = self.embedded.url
        redis = connect(self.redis_url, tls=s.redis_tls())
        stack.push_async_callback(redis.aclose)
        await redis.ping()
        self.bus = RedisBus(redis, s.bus())
        sentiment: SentimentConfig | SentimentService | None = s.sentiment()
        if s.role == "gateway":
            jobs_redis = connect(self.redis_url, decode=False, tls=s.redis_tls())
            self.jobs = JobClient(jobs_redis, s.jobs())
            stack.push_async_callback(self.jobs.redis.aclose)
            await self.jobs.start()
            stack.push_async_callback(self.jobs.close)
            log.info("models run in workers: jobs go to %s", s.jobs().stream("*"))
            self.owner = RemoteAsr(self.jobs, s.final_queue, s.asr().max_interim_scale)
            sentiment = RemoteSentiment(self.jobs) if sentiment is not None else None
        else:
            log.info("loading speech model %r on %s (%s)", s.model, s.device, s.compute_type)
            owner = await asyncio.to_thread(ModelOwner.load, s.asr(), self._progress)
            stack.push_async_callback(asyncio.to_thread, owner.close)
            self.owner = owner
        if s.mood:
            log.info("loading the mood stage (sentiment model %r)", s.sentiment_model)
            self.mood = await asyncio.to_thread(MoodServices.load, s.mood_config(), sentiment)
            stack.push_async_callback(asyncio.to_thread, self.mood.close)
        if s.assist:
            log.info("loading the assist stage (rules %s)", s.assist_config().rules_file)
            self.assist = await asyncio.to_thread(AssistServices.load, s.assist_config())
            stack.push_async_callback(asyncio.to_thread, self.assist.close)
        if s.panels:
            panel_redis = redis
            if s.panel_redis_url:  # the panels' own, read-only user
                panel_redis = connect(s.panel_redis_url, tls=s.redis_tls())
                stack.push_async_callback(panel_redis.aclose)
                await panel_redis.ping()
            self.panels = PanelServer(s.panel(), panel_redis, self.bus.keys, board_redis=redis)
            await self.panels.start()
            stack.push_async_callback(self.panels.stop)
        stages = Stages(self.owner, s.vad(), s.stream(), self.mood, self.assist)
        self.gateway = Gateway(s.gateway(), self.bus, stages)
        await self.gateway.start()
        stack.push_async_callback(self.gateway.stop)

    async def __aexit__(
        self, tp: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()


def minted(settings: Settings) -> Settings:
    """`settings` with the ingest key of `mint_ingest_key` when none is configured: made into
    that file (mode 0600) on the first start, read from it on every start. Its path is logged,
    never the key."""
    path = settings.mint_ingest_key
    if settings.ingest_keys or path is None:
        return settings
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = IngestKey("default", secrets.token_urlsafe(32))
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(key.text() + "\n")
        log.warning(
            "no ingest key was configured: made one for tenant 'default' in %s; clients "
            "present what follows 'default:' as Authorization: Bearer KEY",
            path,
        )
    return dataclasses.replace(settings, ingest_keys=path.read_text().strip())


async def serve(settings: Settings, progress: Callable[[int, int], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with Service(settings, progress) as service:
        log.info(
            "serving: stream calls to %s, metrics on http://%s:%d/metrics, redis %s",
            service.url,
            settings.host,
            service.gateway.port if service.gateway else 0,
            masked(service.redis_url),
        )
        gw = service.gateway
        if gw is not None:
            for path in ("/twilio", "/audiohook", "/audiofork"):
                log.info("%s: %s", path.strip("/"), gw.url_for(path))
            if gw.audiosocket is not None:
                ports = list(gw.audiosocket.ports.values())
                log.info("audiosocket: customer legs tcp port %d, agent legs %d", *ports)
            if gw.webrtc is not None:
                log.info(
                    "webrtc: %s/webrtc/offer, softphone %s/softphone", gw.webrtc.url, gw.webrtc.url
                )
        if service.panels is not None:
            p = service.panels
            log.info("wall board: %s", p.url("/wallboard"))
            log.info("agent panel: %s (replace AGENT_ID)", p.url("/agent/AGENT_ID"))
            if not (settings.panel_secret or settings.oidc_issuer):
                log.warning(
                    "no --panel-secret nor --oidc-issuer: the panels' key is random, so no one "
                    "can sign in; set AGENT_ASSIST_PANEL_SECRET and mint with agent-assist token"
                )
        await stop.wait()
        log.info("shutting down")
