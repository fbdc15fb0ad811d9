"""The worker process (`agent-assist worker`): the models, serving gateways over Redis Streams.

It loads the speech model (and the sentiment model unless the mood stage or its model is off),
joins the `workers` consumer group and runs jobs until SIGTERM or SIGINT; then it stops taking
jobs, finishes and answers those it holds, and exits. `/metrics` is served on `--port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable

from prometheus_client import start_http_server

from agent_assist.settings import Settings
from pipeline.bus.client import connect, masked
from pipeline.bus.worker import StreamWorker
from pipeline.mood.sentiment import SentimentOwner, load_owner
from pipeline.speech.asr import ModelOwner

log = logging.getLogger(__name__)


def consumer_name(settings: Settings) -> str:
    return settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"


async def work(settings: Settings, progress: Callable[[int, int], None] | None = None) -> None:
    """Run one worker until SIGINT or SIGTERM."""
    if not settings.redis_url:
        raise ValueError("a worker needs the gateways' Redis: set REDIS_URL or --redis-url")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:  # stops in reverse of start
        redis = connect(settings.redis_url, decode=False, tls=settings.redis_tls())
        stack.push_async_callback(redis.aclose)
        await redis.ping()
        log.info(
            "loading speech model %r on %s (%s)",
            settings.model,
            settings.device,
            settings.compute_type,
        )
        owner = await asyncio.to_thread(ModelOwner.load, settings.asr(), progress)
        stack.push_async_callback(asyncio.to_thread, owner.close)
        sentiment: SentimentOwner | None = None
        config = settings.sentiment()
        if settings.mood and config is not None:
            log.info("loading sentiment model %r", settings.sentiment_model)
            sentiment = await asyncio.to_thread(load_owner, config)
            stack.push_async_callback(asyncio.to_thread, sentiment.close)
        server, _ = start_http_server(settings.port, settings.host)
        stack.callback(server.shutdown)
        name = consumer_name(settings)
        log.info(
            "worker %s ready: metrics on http://%s:%d/metrics, redis %s",
            name,
            settings.host,
            server.server_port,
            masked(settings.redis_url),
        )
        await StreamWorker(redis, settings.jobs(), name, owner, sentiment).run(stop)
    log.info("worker stopped")
