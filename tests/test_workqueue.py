"""The Redis Streams job queue between gateways and workers, against a real redis-server.

A small transcriber stands in for whisper because what is under test is delivery (claims,
heartbeats, give-ups, duplicates, deadlines), not recognition; `tests/test_scaleout.py` runs the
real model in real worker processes and kills one mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from agent_assist.embedded_redis import EmbeddedRedis
from pipeline.bus.client import connect
from pipeline.bus.jobs import JobClient, JobFailed, JobsConfig, pcm16, samples
from pipeline.bus.remote import RemoteAsr
from pipeline.bus.worker import StreamWorker
from pipeline.runtime import metrics
from pipeline.speech.asr import AsrConfig, AsrResult, ModelOwner, PassKind
from pipeline.types import Word

AUDIO = (np.arange(1600, dtype=np.float32) % 200 - 100) / 32768.0


class Counting:
    """Transcribes to the audio's length, counting runs; `delay_s` makes each run slow."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.runs = 0
        self._lock = threading.Lock()

    def __call__(self, audio, kind):
        time.sleep(self.delay_s)
        with self._lock:
            self.runs += 1
        return AsrResult((Word(f"{kind.value}-{len(audio)}", 0.0, 0.5, 0.9),))


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = EmbeddedRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url, decode=False)
    await client.flushall()
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def running(worker: StreamWorker) -> AsyncIterator[StreamWorker]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def gateway(redis: Redis, config: JobsConfig) -> AsyncIterator[JobClient]:
    client = JobClient(redis, config)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def held_by(redis: Redis, config: JobsConfig, consumer: str) -> None:
    """Wait until `consumer` holds a final job."""
    for _ in range(500):
        with contextlib.suppress(ResponseError):  # no group yet
            pending = await redis.xpending_range(config.stream("final"), config.group, "-", "+", 9)
            if any(p["consumer"] == consumer.encode() for p in pending):
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{consumer} never took the job")


def owner_of(transcriber: Counting) -> ModelOwner:
    return ModelOwner(transcriber, AsrConfig(workers=1))


def test_audio_travels_as_exact_pcm():
    pcm = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    audio = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    assert np.array_equal(samples(pcm16(audio)), audio)


async def test_a_final_goes_through_a_worker_and_back(redis):
    config = JobsConfig(claim_idle_s=1.0)
    transcriber = Counting()
    owner = owner_of(transcriber)
    async with (
        gateway(redis, config) as client,
        running(StreamWorker(redis, config, "w1", owner, None)),
    ):
        asr = RemoteAsr(client)
        result = await asr.transcribe(PassKind.FINAL, ("call-1", "customer"), AUDIO)
        assert result is not None and result.text == f"final-{len(AUDIO)}"
        assert result.words[0].probability == pytest.approx(0.9)
        assert transcriber.runs == 1
        # answered entries are acknowledged and deleted: nothing is left pending
        assert await redis.xlen(config.stream("final")) == 0
        info = await redis.xpending(config.stream("final"), config.group)
        assert info["pending"] == 0
    owner.close()


async def test_work_left_by_a_dead_consumer_is_claimed_and_answered_once(redis):
    config = JobsConfig(claim_idle_s=0.5)
    transcriber = Counting()
    owner = owner_of(transcriber)
    claimed = metrics.JOBS_CLAIMED.labels("final")._value.get()
    async with gateway(redis, config) as client:
        asr = RemoteAsr(client)
        job = asyncio.create_task(asr.transcribe(PassKind.FINAL, ("call-2", "agent"), AUDIO))
        # a worker that takes the job and dies before answering it
        await redis.xgroup_create(config.stream("final"), config.group, id="0", mkstream=True)
        taken: list = []
        while not taken:
            taken = await redis.xreadgroup(
                config.group, "ghost", {config.stream("final"): ">"}, count=1, block=100
            )
        async with running(StreamWorker(redis, config, "w2", owner, None)):
            result = await asyncio.wait_for(job, 10)
        assert result is not None and result.text == f"final-{len(AUDIO)}"
    assert transcriber.runs == 1
    assert metrics.JOBS_CLAIMED.labels("final")._value.get() == claimed + 1
    owner.close()


async def test_a_slow_job_is_not_taken_from_a_live_worker(redis):
    """The heartbeat keeps a running job's idle time low: no second worker runs it."""
    config = JobsConfig(claim_idle_s=0.3, prefetch=1)
    slow, other = Counting(delay_s=1.5), Counting()
    owners = [owner_of(slow), owner_of(other)]
    async with gateway(redis, config) as client:
        asr = RemoteAsr(client)
        async with running(StreamWorker(redis, config, "slow", owners[0], None)):
            job = asyncio.create_task(asr.transcribe(PassKind.FINAL, ("call-3", "agent"), AUDIO))
            await held_by(redis, config, "slow")
            async with running(StreamWorker(redis, config, "other", owners[1], None)):
                result = await asyncio.wait_for(job, 10)
        assert result is not None
    assert (slow.runs, other.runs) == (1, 0)
    for owner in owners:
        owner.close()


async def test_a_job_that_keeps_failing_is_given_up_with_an_error(redis):
    config = JobsConfig(claim_idle_s=0.3, max_deliveries=2, final_timeout_s=20)
    owner = owner_of(Counting())
    given_up = metrics.JOBS_GIVEN_UP.labels("final")._value.get()
    async with gateway(redis, config) as client:
        asr = RemoteAsr(client)
        job = asyncio.create_task(asr.transcribe(PassKind.FINAL, ("call-4", "agent"), AUDIO))
        await redis.xgroup_create(config.stream("final"), config.group, id="0", mkstream=True)
        for ghost in ("ghost-1", "ghost-2"):  # two workers die on it in turn
            got: list = []
            while not got:
                got = await redis.xreadgroup(
                    config.group, ghost, {config.stream("final"): ">"}, count=1, block=100
                )
                if not got:  # the second ghost takes it over from the first
                    await asyncio.sleep(0.35)
                    got = await redis.xautoclaim(
                        config.stream("final"), config.group, ghost, 300, count=1
                    )
                    got = got[1]
        async with running(StreamWorker(redis, config, "w", owner, None)):
            with pytest.raises(JobFailed, match="2 deliveries"):
                await asyncio.wait_for(job, 10)
    assert metrics.JOBS_GIVEN_UP.labels("final")._value.get() == given_up + 1
    owner.close()


async def test_a_stale_interim_is_answered_as_shed_without_running(redis):
    config = JobsConfig(claim_idle_s=1.0)
    transcriber = Counting()
    owner = owner_of(transcriber)
    async with gateway(redis, config) as client:
        job = asyncio.create_task(
            client.call(
                "interim",
                {"stream": json.dumps(["call-5", "customer"]), "audio": pcm16(AUDIO)},
                5.0,
                deadline=time.time() - 1,
            )
        )
        async with running(StreamWorker(redis, config, "w", owner, None)):
            result = await asyncio.wait_for(job, 10)
    assert json.loads(result[b"data"]) is None
    assert transcriber.runs == 0
    owner.close()


async def test_a_second_result_for_a_job_is_dropped_and_counted(redis):
    config = JobsConfig(claim_idle_s=1.0)
    owner = owner_of(Counting())
    late = metrics.JOB_LATE_RESULTS._value.get()
    async with gateway(redis, config) as client:
        async with running(StreamWorker(redis, config, "w", owner, None)):
            result = await RemoteAsr(client).transcribe(PassKind.FINAL, ("c", "agent"), AUDIO)
        assert result is not None
        # the same answer again, as from a worker that was thought dead but finished after all
        await redis.xadd(client.results, {"id": "no-longer-waited-for", "ok": "1", "data": "[]"})
        for _ in range(100):
            if metrics.JOB_LATE_RESULTS._value.get() > late:
                break
            await asyncio.sleep(0.05)
    assert metrics.JOB_LATE_RESULTS._value.get() == late + 1
    owner.close()


async def test_without_workers_a_final_times_out_with_a_clear_error(redis):
    config = JobsConfig(final_timeout_s=0.5)
    async with gateway(redis, config) as client:
        with pytest.raises(JobFailed, match="no worker answered a final job"):
            await RemoteAsr(client).transcribe(PassKind.FINAL, ("c", "agent"), AUDIO)


@pytest.mark.parametrize("reply", ["aa:call:victim", "other:results:gw1", "aa:results:a:b", "aa:x"])
async def test_a_worker_writes_only_to_result_streams_of_its_namespace(redis, reply):
    """A job is only a request: one naming any other key as its reply is run, acknowledged and
    dropped, its answer written nowhere (`agent_assist_jobs_done_total{outcome="bad_reply"}`)."""
    config = JobsConfig(final_timeout_s=1.5)
    transcriber = Counting()
    owner = owner_of(transcriber)
    refused = metrics.JOBS_DONE.labels("final", "bad_reply")._value.get()
    async with (
        gateway(redis, config) as client,
        running(StreamWorker(redis, config, "w1", owner, None)),
    ):
        client.results = reply  # as a forged job would name it
        with pytest.raises(JobFailed):
            await RemoteAsr(client).transcribe(PassKind.FINAL, ("c", "agent"), AUDIO)
        assert transcriber.runs == 1
        assert await redis.exists(reply) == 0
        assert await redis.xlen(config.stream("final")) == 0  # acknowledged and deleted
    assert metrics.JOBS_DONE.labels("final", "bad_reply")._value.get() == refused + 1
    assert config.is_results("aa:results:gw-1.a") and not config.is_results("aa:results:")
    owner.close()
