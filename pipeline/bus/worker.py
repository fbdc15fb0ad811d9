"""The worker side of the job streams: one consumer of the `workers` group.

It reads jobs (finals first), runs them on the same model owners a single process uses (so passes
from every gateway's calls are batched together), answers each on its gateway's result stream,
keeps the entries it runs alive, claims those of a dead worker, gives up on one that keeps
failing, and drains on stop. The delivery rules are in `pipeline.bus.jobs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from pipeline.bus.jobs import (
    BLOCK_MS,
    GONE_MS,
    KINDS,
    SENTIMENT,
    Fields,
    JobsConfig,
    kind_of,
    read_entries,
    samples,
    text_of,
    word_fields,
)
from pipeline.mood import SentimentOwner
from pipeline.runtime import metrics
from pipeline.runtime.retry import Retrying
from pipeline.speech import ModelOwner, PassKind

log = logging.getLogger(__name__)


class StreamWorker:
    """One consumer of the `workers` group: reads jobs, runs them on its owners, answers them."""

    def __init__(
        self,
        redis: Redis,
        config: JobsConfig,
        name: str,
        asr: ModelOwner | None,
        sentiment: SentimentOwner | None,
    ) -> None:
        self.redis = redis  # decode_responses=False
        self.config = config
        self.name = name
        self._asr = asr
        self._sentiment = sentiment
        self.kinds = [k for k in KINDS if (sentiment if k == SENTIMENT else asr) is not None]
        if not self.kinds:
            raise ValueError("a worker needs the speech model, the sentiment model or both")
        self._running: dict[tuple[str, bytes], asyncio.Task[None]] = {}  # by (kind, entry id)
        self._room = asyncio.Condition()
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then finish (and answer) the jobs already taken."""
        await self._create_groups()
        log.info(
            "worker %s: serving %s jobs from %s",
            self.name,
            ", ".join(self.kinds),
            self.config.stream("*"),
        )
        self._stop = stop
        helpers = [
            asyncio.create_task(self._every(self.config.claim_idle_s / 3, self._heartbeat)),
            asyncio.create_task(self._every(self.config.claim_idle_s / 2, self._claim)),
            asyncio.create_task(self._every(2.0, self._gauge_backlog)),
        ]
        reader = asyncio.create_task(self._read_loop())
        try:
            await stop.wait()
        finally:
            stop.set()
            async with self._room:
                self._room.notify_all()
            await reader  # within BLOCK_MS (see `_every` on cancelling)
            running = list(self._running.values())
            if running:
                log.info("worker %s: finishing %d jobs", self.name, len(running))
                await asyncio.wait(running, timeout=self.config.final_timeout_s)
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _create_groups(self) -> None:
        for kind in self.kinds:
            try:
                await self.redis.xgroup_create(
                    self.config.stream(kind), self.config.group, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # --- reading --------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        retrying = Retrying("job_read", f"worker {self.name}: reading jobs")
        while not self._stop.is_set():
            async with self._room:
                await self._room.wait_for(
                    lambda: len(self._running) < self.config.prefetch or self._stop.is_set()
                )
            if self._stop.is_set():
                return
            free = self.config.prefetch - len(self._running)
            for key, entries in await read_entries(self._read(free), retrying):
                for entry_id, fields in entries:
                    self._start(kind_of(key), entry_id, fields)

    async def _read(self, free: int) -> Any:
        """A raw XREADGROUP reply: finals first, the other streams only when no final waits
        (blocking up to `BLOCK_MS`)."""
        cfg = self.config
        first = [k for k in self.kinds if k == PassKind.FINAL.value]
        got: Any = []
        if first:
            got = await self.redis.xreadgroup(
                cfg.group, self.name, {cfg.stream(k): ">" for k in first}, count=free
            )
        if not got:  # wait for work on any stream
            streams: dict[Any, Any] = {cfg.stream(k): ">" for k in self.kinds}
            got = await self.redis.xreadgroup(
                cfg.group, self.name, streams, count=free, block=BLOCK_MS
            )
        return got

    def _start(self, kind: str, entry_id: bytes, fields: Fields | None) -> None:
        if fields is None or (kind, entry_id) in self._running:
            return  # deleted meanwhile, or already ours
        task = asyncio.create_task(self._handle(kind, entry_id, fields))
        self._running[(kind, entry_id)] = task

    async def _handle(self, kind: str, entry_id: bytes, fields: Fields) -> None:
        try:
            reply = await self._run(kind, fields)
            await self._answer(kind, entry_id, fields, reply)
        except (RedisError, OSError) as exc:  # unacknowledged: claimed again after claim_idle_s
            metrics.BUS_ERRORS.labels("job_answer").inc()
            log.warning("worker %s: answering a %s job failed: %s", self.name, kind, exc)
        finally:
            self._running.pop((kind, entry_id), None)
            async with self._room:
                self._room.notify_all()

    async def _run(self, kind: str, fields: Fields) -> dict[str, str]:
        """Run one job; the result fields (never raises for a model error: answers it)."""
        deadline = float(fields.get(b"deadline", b"0") or 0)
        if deadline and time.time() > deadline:
            metrics.JOBS_DONE.labels(kind, "stale").inc()
            metrics.INTERIMS_SHED.labels("late").inc()
            return {"ok": "1", "data": "null"}
        try:
            if kind == SENTIMENT:
                assert self._sentiment is not None
                s = await self._sentiment.submit(fields[b"text"].decode())
                data: Any = [s.negative, s.neutral, s.positive]
                extra = {}
            else:
                assert self._asr is not None
                call, channel = json.loads(fields[b"stream"])
                result = await self._asr.transcribe(
                    PassKind(kind), (call, channel), samples(fields[b"audio"])
                )
                data = None if result is None else [list(word_fields(w)) for w in result.words]
                extra = {"scale": repr(self._asr.interim_scale)}
        except Exception as exc:
            log.exception("worker %s: %s job failed", self.name, kind)
            metrics.JOBS_DONE.labels(kind, "error").inc()
            return {"ok": "0", "error": f"{kind} failed on worker {self.name}: {exc!r}"}
        metrics.JOBS_DONE.labels(kind, "ok").inc()
        return {"ok": "1", "data": json.dumps(data), **extra}

    async def _answer(
        self, kind: str, entry_id: bytes, fields: Fields, reply: dict[str, str]
    ) -> None:
        cfg = self.config
        results = fields.get(b"reply", b"").decode(errors="replace")
        if results and not cfg.is_results(results):
            log.warning(
                "worker %s: a %s job names a reply stream outside %s:results:*; not answered",
                self.name,
                kind,
                cfg.prefix,
            )
            metrics.JOBS_DONE.labels(kind, "bad_reply").inc()
            results = ""
        pipe = self.redis.pipeline(transaction=False)
        if results:
            answer: dict[Any, Any] = {"id": fields.get(b"id", b""), "worker": self.name, **reply}
            pipe.xadd(results, answer)
            pipe.expire(results, cfg.results_ttl_s)
        pipe.xack(cfg.stream(kind), cfg.group, entry_id)
        pipe.xdel(cfg.stream(kind), entry_id)
        await pipe.execute()

    # --- keeping work alive ---------------------------------------------------------------------
    async def _every(self, period: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` every `period` until the worker stops (no task here is ever cancelled:
        redis-py can swallow a cancellation in the middle of a command and go on)."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), period)
            if self._stop.is_set():
                return
            try:
                await step()
            except (RedisError, OSError) as exc:
                metrics.BUS_ERRORS.labels("job_upkeep").inc()
                log.warning("worker %s: %s failed: %s", self.name, step.__name__, exc)

    async def _heartbeat(self) -> None:
        """Reset the idle time of the entries being run, so no other worker claims them."""
        by_kind: dict[str, list[Any]] = {}
        for kind, entry_id in list(self._running):
            by_kind.setdefault(kind, []).append(entry_id)
        for kind, ids in by_kind.items():
            key = self.config.stream(kind)
            held: list[dict[str, Any]] = await self.redis.xpending_range(
                key, self.config.group, "-", "+", len(ids) + 64, consumername=self.name
            )
            mine = {p["message_id"] for p in held}
            ids = [i for i in ids if i in mine]  # not one another worker took while we stalled
            if ids:
                await self.redis.xclaim(key, self.config.group, self.name, 0, ids, justid=True)

    async def _claim(self) -> None:
        """Take over entries that another consumer has left idle past `claim_idle_s`."""
        cfg = self.config
        idle_ms = int(cfg.claim_idle_s * 1000)
        for kind in self.kinds:
            key = cfg.stream(kind)
            pending: list[dict[str, Any]] = await self.redis.xpending_range(
                key, cfg.group, min="-", max="+", count=64, idle=idle_ms
            )
            stale = {p["message_id"]: p for p in pending if p["consumer"].decode() != self.name}
            if not stale:
                continue
            ids: list[Any] = list(stale)
            claimed: list[Any] = await self.redis.xclaim(key, cfg.group, self.name, idle_ms, ids)
            for entry_id, fields in claimed:
                if fields is None:
                    continue
                owner = stale[entry_id]["consumer"].decode()
                delivered = stale[entry_id]["times_delivered"]
                if delivered >= cfg.max_deliveries:
                    metrics.JOBS_GIVEN_UP.labels(kind).inc()
                    log.error(
                        "worker %s: a %s job was delivered %d times without an answer; giving up",
                        self.name,
                        kind,
                        delivered,
                    )
                    error = f"{kind} job failed on {delivered} deliveries"
                    await self._answer(kind, entry_id, fields, {"ok": "0", "error": error})
                    continue
                metrics.JOBS_CLAIMED.labels(kind).inc()
                log.warning("worker %s: claimed a %s job left by %s", self.name, kind, owner)
                self._start(kind, entry_id, fields)

    async def _gauge_backlog(self) -> None:
        """Export the backlog; forget consumers gone for an hour with nothing pending."""
        for kind in self.kinds:
            key = self.config.stream(kind)
            groups: list[dict[str, Any]] = await self.redis.xinfo_groups(key)
            for group in groups:
                if text_of(group.get("name")) == self.config.group:
                    backlog = int(group.get("lag") or 0) + int(group.get("pending") or 0)
                    metrics.JOBS_BACKLOG.labels(kind).set(backlog)
            consumers: list[dict[str, Any]] = await self.redis.xinfo_consumers(
                key, self.config.group
            )
            for c in consumers:
                if int(c.get("pending") or 0) == 0 and int(c.get("idle") or 0) > GONE_MS:
                    await self.redis.xgroup_delconsumer(key, self.config.group, c["name"])
