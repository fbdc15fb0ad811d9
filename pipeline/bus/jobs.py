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
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline.runtime import metrics
from pipeline.runtime.retry import Retrying
from pipeline.speech import PassKind
from pipeline.types import Samples, Word

log = logging.getLogger(__name__)

Fields = dict[bytes, bytes]
SENTIMENT = "sentiment"
KINDS = (PassKind.FINAL.value, SENTIMENT, PassKind.INTERIM.value)  # the order workers read in
BLOCK_MS = 500  # a blocking read's longest wait: how soon a reader notices it should stop
GONE_MS = 3_600_000  # a consumer idle this long with nothing pending is removed from the group


class JobFailed(RuntimeError):
    """A worker answered a job with an error, or nobody answered in time."""


_GATEWAY = re.compile(r"[A-Za-z0-9._-]{1,64}")


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

    def is_results(self, stream: str) -> bool:
        """Whether `stream` is a gateway's result stream of this namespace: the only place a
        worker writes an answer (a job cannot send it to write anywhere else)."""
        gateway = stream.removeprefix(f"{self.prefix}:results:")
        return gateway != stream and _GATEWAY.fullmatch(gateway) is not None


def pcm16(audio: Samples) -> bytes:
    """Float samples as 16-bit PCM: exact for audio that came from 16-bit PCM."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2").tobytes()


def samples(pcm: bytes) -> Samples:
    return (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


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
        retrying = Retrying("job_send", f"queueing a {kind} job")
        while True:
            try:
                await self.redis.xadd(self.config.stream(kind), entry)  # type: ignore[arg-type]
                return
            except (RedisError, OSError) as exc:
                if not await retrying.failed(exc, until):
                    raise JobFailed(f"could not queue a {kind} job: {exc}") from exc

    async def _read(self) -> None:
        last = b"0-0"
        retrying = Retrying("job_results", "reading job results")
        while not self._closing:
            reply = self.redis.xread({self.results: last}, count=256, block=BLOCK_MS)
            for _stream, entries in await read_entries(reply, retrying):
                for entry_id, fields in entries:
                    last = entry_id
                    future = self._waiting.get((fields or {}).get(b"id", b"").decode())
                    if future is None or future.done():
                        metrics.JOB_LATE_RESULTS.inc()  # a job run twice, or given up on
                    else:
                        future.set_result(fields or {})
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.xdel(self.results, *(e for e, _ in entries))


Entries = list[tuple[bytes, list[tuple[bytes, Fields | None]]]]


async def read_entries(reply: Awaitable[Any], retrying: Retrying) -> Entries:
    """One XREAD / XREADGROUP's entries; none after a failure (logged, counted, waited out)."""
    try:
        got = entries_of(await reply)
    except (RedisError, OSError) as exc:
        await retrying.failed(exc)
        return []
    retrying.ok()
    return got


def entries_of(got: Any) -> Entries:
    """XREAD / XREADGROUP replies as (stream, [(id, fields)]), whichever protocol answered."""
    if not got:
        return []
    if isinstance(got, dict):
        got = got.items()
    return [(stream, list(entries)) for stream, entries in got]


def kind_of(key: bytes | str) -> str:
    return text_of(key).rsplit(":", 1)[-1]


def text_of(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def word_fields(w: Word) -> tuple[str, float, float, float]:
    return (w.text, w.start, w.end, w.probability)


def words_of(data: Sequence[Sequence[Any]]) -> tuple[Word, ...]:
    return tuple(Word(str(t), float(s), float(e), float(p)) for t, s, e, p in data)
