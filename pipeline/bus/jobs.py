"""Model work over Redis Streams: gateways hand ASR and sentiment passes to a pool of workers.

    gateway process                          Redis                            worker processes
    ChannelStream --RemoteAsr-------XADD--> {p}:jobs:final     --XREADGROUP--> ModelOwner
                                    XADD--> {p}:jobs:interim   (group            (batched)
    CallMood -----RemoteSentiment---XADD--> {p}:jobs:sentiment  "workers")     sentiment owner
    one future per job id <--XREAD-- {p}:results:{gateway} <--XADD, then XACK + XDEL--

The call session, its channel streams and its mood stage are the same code as in one process:
they are handed an ASR service and a sentiment service, local (`ModelOwner`, the sentiment owner)
or remote (`RemoteAsr`, `RemoteSentiment`). A worker runs the very same owners, so passes from
calls on any gateway are batched together there.

Delivery is at least once, and the gateway makes it exactly once:

- A worker keeps its running entries fresh: every `claim_idle_s / 3` it re-claims them
  (`XCLAIM ... JUSTID`), which resets their idle time.
- Every worker looks for entries pending longer than `claim_idle_s` (`XPENDING ... IDLE`): those
  of a worker that died or hung. It claims them (`XCLAIM`) and runs them. An entry delivered
  `max_deliveries` times is given up (acked, deleted, answered with an error) instead of taking
  down one worker after another.
- A worker writes the result before it acknowledges the entry, so a crash in between runs the job
  twice. The gateway settles each job's future once; a second result is dropped and counted.
- Interims carry a deadline: a stale one is answered as shed without running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from pipeline.mood.sentiment import Sentiment, SentimentOwner
from pipeline.runtime import metrics
from pipeline.speech.asr import AsrResult, ModelOwner, PassKind
from pipeline.types import Samples, Word

log = logging.getLogger(__name__)

Fields = dict[bytes, bytes]
SENTIMENT = "sentiment"
KINDS = (PassKind.FINAL.value, SENTIMENT, PassKind.INTERIM.value)  # the order workers read in
BLOCK_MS = 500  # a blocking read's longest wait: how soon a reader notices it should stop
GONE_MS = 3_600_000  # a consumer idle this long with nothing pending is removed from the group


class JobFailed(RuntimeError):
    """A worker answered a job with an error, or nobody answered in time."""


@dataclass(frozen=True, slots=True)
class JobsConfig:
    prefix: str = "aa"
    group: str = "workers"
    claim_idle_s: float = 5.0  # a pending entry idle this long belongs to a dead worker
    max_deliveries: int = 3
    final_timeout_s: float = 120.0
    interim_timeout_s: float = 3.0  # an interim's deadline: later than this it is not worth it
    sentiment_timeout_s: float = 30.0
    prefetch: int = 4  # jobs a worker holds at once (its model owner batches them)
    results_ttl_s: int = 3600  # a gateway's result stream outlives it by this much

    def stream(self, kind: str) -> str:
        return f"{self.prefix}:jobs:{kind}"

    def results(self, gateway: str) -> str:
        return f"{self.prefix}:results:{gateway}"


def pcm16(audio: Samples) -> bytes:
    """Float samples as 16-bit PCM: exact for audio that came from 16-bit PCM."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2").tobytes()


def samples(pcm: bytes) -> Samples:
    return (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


# --- the gateway side ---------------------------------------------------------------------------
class JobClient:
    """Puts jobs on the streams and waits for their results on this gateway's result stream."""

    def __init__(self, redis: Redis, config: JobsConfig, gateway: str | None = None) -> None:
        self.redis = redis  # decode_responses=False: audio travels as bytes
        self.config = config
        self.gateway = gateway or uuid.uuid4().hex[:12]
        self.results = config.results(self.gateway)
        self._waiting: dict[str, asyncio.Future[Fields]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="job-results")

    async def close(self) -> None:
        self._closing = True  # not cancelled: redis-py can swallow a cancellation mid-command
        if self._reader is not None:
            await self._reader
        for future in self._waiting.values():
            future.cancel()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self.results)

    async def call(
        self, kind: str, fields: dict[str, bytes | str], wait_s: float, deadline: float = 0.0
    ) -> Fields:
        """Send one job and wait for its result fields; JobFailed on an error or no answer."""
        job = uuid.uuid4().hex
        future: asyncio.Future[Fields] = asyncio.get_running_loop().create_future()
        self._waiting[job] = future
        sent = time.monotonic()
        try:
            entry: dict[str, bytes | str] = {
                "id": job,
                "reply": self.results,
                "deadline": repr(deadline),
                **fields,
            }
            await self._send(kind, entry, sent + wait_s)
            metrics.JOBS_SENT.labels(kind).inc()
            try:
                result = await asyncio.wait_for(future, max(0.0, sent + wait_s - time.monotonic()))
            except TimeoutError:
                metrics.JOB_TIMEOUTS.labels(kind).inc()
                raise JobFailed(f"no worker answered a {kind} job in {wait_s:g} s") from None
        finally:
            self._waiting.pop(job, None)
        metrics.JOB_SECONDS.labels(kind).observe(time.monotonic() - sent)
        if result.get(b"ok") != b"1":
            raise JobFailed(result.get(b"error", b"worker error").decode(errors="replace"))
        return result

    async def _send(self, kind: str, entry: dict[str, bytes | str], until: float) -> None:
        """XADD, retried while Redis is away (until the job's own timeout)."""
        delay = 0.05
        while True:
            try:
                await self.redis.xadd(self.config.stream(kind), entry)  # type: ignore[arg-type]
                return
            except (RedisError, OSError) as exc:
                metrics.BUS_ERRORS.labels("job_send").inc()
                if time.monotonic() + delay > until:
                    raise JobFailed(f"could not queue a {kind} job: {exc}") from exc
                log.warning("queueing a %s job failed (%s); retrying", kind, exc)
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def _read(self) -> None:
        last = b"0-0"
        delay = 0.05
        while not self._closing:
            try:
                reply = await self.redis.xread({self.results: last}, count=256, block=BLOCK_MS)
                got = _entries(reply)
                delay = 0.05
            except (RedisError, OSError) as exc:
                metrics.BUS_ERRORS.labels("job_results").inc()
                log.warning("reading job results failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            for _stream, entries in got:
                for entry_id, fields in entries:
                    last = entry_id
                    future = self._waiting.get((fields or {}).get(b"id", b"").decode())
                    if future is None or future.done():
                        metrics.JOB_LATE_RESULTS.inc()  # a job run twice, or given up on
                    else:
                        future.set_result(fields or {})
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.xdel(self.results, *(e for e, _ in entries))


class RemoteAsr:
    """The ASR service of a gateway whose models run in workers: `ModelOwner`'s interface."""

    def __init__(self, client: JobClient, final_slots: int = 64, max_interim_scale: float = 4.0):
        self._client = client
        self._final_slots = asyncio.Semaphore(final_slots)
        self._max_scale = max_interim_scale
        self._scale = 1.0

    @property
    def interim_scale(self) -> float:
        """The interim cadence the workers ask for (their model owner's, sent with results)."""
        return self._scale

    async def transcribe(
        self, kind: PassKind, stream: tuple[str, str], audio: Samples
    ) -> AsrResult | None:
        cfg = self._client.config
        fields: dict[str, bytes | str] = {"stream": json.dumps(stream), "audio": pcm16(audio)}
        if kind is PassKind.FINAL:
            async with self._final_slots:  # back-pressure on this gateway's calls
                result = await self._client.call(kind.value, fields, cfg.final_timeout_s)
        else:
            deadline = time.time() + cfg.interim_timeout_s
            try:
                result = await self._client.call(
                    kind.value, fields, cfg.interim_timeout_s + 2.0, deadline
                )
            except JobFailed:
                metrics.INTERIMS_SHED.labels("timeout").inc()
                return None
            with contextlib.suppress(KeyError, ValueError):
                self._scale = min(self._max_scale, max(1.0, float(result[b"scale"])))
        data = json.loads(result[b"data"])
        if data is None:
            return None
        return AsrResult(words_of(data))


class RemoteSentiment:
    """The sentiment service of a gateway whose models run in workers: the owner's `submit`."""

    def __init__(self, client: JobClient) -> None:
        self._client = client

    async def submit(self, text: str) -> Sentiment:
        result = await self._client.call(
            SENTIMENT, {"text": text}, self._client.config.sentiment_timeout_s
        )
        return Sentiment.from_probs(json.loads(result[b"data"]))

    def close(self) -> None:
        pass


# --- the worker side ----------------------------------------------------------------------------
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
        delay = 0.05
        while not self._stop.is_set():
            async with self._room:
                await self._room.wait_for(
                    lambda: len(self._running) < self.config.prefetch or self._stop.is_set()
                )
            if self._stop.is_set():
                return
            free = self.config.prefetch - len(self._running)
            try:
                got = await self._read(free)
                delay = 0.05
            except (RedisError, OSError) as exc:
                metrics.BUS_ERRORS.labels("job_read").inc()
                log.warning("worker %s: reading jobs failed (%s); retrying", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            for key, entries in got:
                for entry_id, fields in entries:
                    self._start(_kind_of(key), entry_id, fields)

    async def _read(self, free: int) -> list[tuple[bytes, list[tuple[bytes, Fields | None]]]]:
        """Finals first: the other streams only when no final waits (blocking up to a second)."""
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
        return _entries(got)

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
                data = None if result is None else [list(_word(w)) for w in result.words]
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
        results = fields.get(b"reply", b"").decode()
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
                if _text(group.get("name")) == self.config.group:
                    backlog = int(group.get("lag") or 0) + int(group.get("pending") or 0)
                    metrics.JOBS_BACKLOG.labels(kind).set(backlog)
            consumers: list[dict[str, Any]] = await self.redis.xinfo_consumers(
                key, self.config.group
            )
            for c in consumers:
                if int(c.get("pending") or 0) == 0 and int(c.get("idle") or 0) > GONE_MS:
                    await self.redis.xgroup_delconsumer(key, self.config.group, c["name"])


def _entries(got: Any) -> list[tuple[bytes, list[tuple[bytes, Fields | None]]]]:
    """XREAD / XREADGROUP replies as (stream, [(id, fields)]), whichever protocol answered."""
    if not got:
        return []
    if isinstance(got, dict):
        got = got.items()
    return [(stream, list(entries)) for stream, entries in got]


def _kind_of(key: bytes | str) -> str:
    return _text(key).rsplit(":", 1)[-1]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _word(w: Word) -> tuple[str, float, float, float]:
    return (w.text, w.start, w.end, w.probability)


def words_of(data: Sequence[Sequence[Any]]) -> tuple[Word, ...]:
    return tuple(Word(str(t), float(s), float(e), float(p)) for t, s, e, p in data)
