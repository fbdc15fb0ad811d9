"""Speech recognition: a synchronous whisper engine, and the one owner that serves every call.

The owner runs the engine on its own threads (never on the event loop) and feeds them from a
bounded queue with two lanes. Its default scheduler (`batched`):

- **Batches across calls.** A free worker takes every waiting pass of one kind, up to `max_batch`,
  and runs them as one batch: one encoder call over all their 30 s windows, one beam search
  (CTranslate2's batch `encode` and `generate`). Whisper pays for a full window however short the
  audio, so a batch of eight costs far less than eight passes.
- **Finals first.** Finals are never dropped: when their lane is full, callers wait, which in turn
  stops reading from their sockets. A batch of finals always goes before any interim, and with
  two workers or more, interims may keep all but one of them busy: a pass cannot be interrupted,
  so a final that arrives finds a worker free instead of waiting for interims to finish.
- **Interims are best effort.** A newer interim of the same channel replaces the queued one, the
  oldest interim makes room when the lane is full, and an interim that waited longer than
  `interim_max_wait_s` (its deadline) is no longer worth running. Each shed is counted.
- **Cadence adapts to load.** `interim_scale` grows with how long interims wait for the model;
  channels multiply their interim interval by it, so a loaded worker is asked for fewer interims
  instead of shedding most of them.

- **A shorter encoder window.** Whisper pads every pass to a 30 s window, and its encoder's cost
  grows faster than the window: a 20 s window (`min_window_s`; the audio plus 3 s when longer)
  makes a pass about twice as cheap on a CPU, for about 0.3 WER points (see the README).
  Interims may get a shorter one (`interim_min_window_s`): lighter, but their committed words
  then vary more from run to run.

The `baseline` scheduler is the policy of open streaming-whisper servers, kept to measure against
(`loadtest/loadgen.py`): every pass on its own, first come first served, nothing shed, a fixed
interim cadence.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.runtime import metrics
from pipeline.runtime.owner import OwnerThreads, settle
from pipeline.types import Samples, Word

log = logging.getLogger(__name__)


class PassKind(enum.Enum):
    INTERIM = "interim"
    FINAL = "final"


class Scheduler(enum.Enum):
    BATCHED = "batched"  # batches across calls, finals first, adaptive interims
    BASELINE = "baseline"  # one pass at a time, first come first served, fixed cadence


@dataclass(frozen=True, slots=True)
class AsrConfig:
    model: str = "base"
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 1  # per worker
    workers: int = 2  # inferences that run at once
    language: str | None = "en"
    beam_size: int = 5  # finals
    interim_beam_size: int = 5  # the encoder dominates; greedy interims commit worse words
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    max_repeats: int = 3
    final_queue_size: int = 64
    interim_queue_size: int = 16
    interim_max_wait_s: float = 1.0
    scheduler: Scheduler = Scheduler.BATCHED
    max_batch: int = 8  # passes run together (batched scheduler)
    max_interim_scale: float = 4.0  # the most the interim interval stretches under load
    min_window_s: float = 20.0  # encoder window: at least this, the audio + 3 s if longer
    interim_min_window_s: float = 20.0  # the same for interim passes
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 5.0 <= min(self.min_window_s, self.interim_min_window_s) <= 30.0 or (
            max(self.min_window_s, self.interim_min_window_s) > 30.0
        ):
            raise ValueError(
                "min_window_s and interim_min_window_s must be between 5 and 30 s "
                "(whisper's window is 30 s)"
            )
        if self.max_batch < 1 or self.workers < 1:
            raise ValueError("max_batch and workers must be at least 1")


@dataclass(frozen=True, slots=True)
class AsrResult:
    words: tuple[Word, ...]  # times relative to the start of the audio; -1 when not timed

    @property
    def texts(self) -> list[str]:
        return [w.text for w in self.words]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


Transcriber = Callable[[Samples, PassKind], AsrResult]
BatchTranscriber = Callable[[Sequence[Samples], PassKind], list[AsrResult]]


def one_by_one(transcriber: Transcriber) -> BatchTranscriber:
    def run(audios: Sequence[Samples], kind: PassKind) -> list[AsrResult]:
        return [transcriber(audio, kind) for audio in audios]

    return run


class AsrService(Protocol):
    """What a call needs of speech recognition: a `ModelOwner` here, or `RemoteAsr` (workers)."""

    @property
    def interim_scale(self) -> float: ...

    async def transcribe(
        self, kind: PassKind, stream: tuple[str, str], audio: Samples
    ) -> AsrResult | None: ...


@dataclass(eq=False)
class _Request:
    kind: PassKind
    stream: tuple[str, str]  # (call id, channel): an interim replaces its stream's queued one
    audio: Samples
    future: Future[AsrResult | None]
    queued_at: float = field(default_factory=time.monotonic)


class ModelOwner(OwnerThreads[list[_Request]]):
    """Owns one model for all calls; `await transcribe(...)` from any coroutine."""

    def __init__(
        self,
        transcriber: Transcriber | None,
        config: AsrConfig,
        batch: BatchTranscriber | None = None,
    ) -> None:
        if batch is None:
            assert transcriber is not None, "a transcriber or a batch transcriber"
            batch = one_by_one(transcriber)
        super().__init__("asr", config.workers)
        self._run = batch
        self.config = config
        self.baseline = config.scheduler is Scheduler.BASELINE
        self._finals: deque[_Request] = deque()
        self._interims: OrderedDict[tuple[str, str], _Request] = OrderedDict()
        self._fifo: deque[_Request] = deque()  # the baseline's one queue
        self._final_slots = asyncio.Semaphore(config.final_queue_size)  # queued or running
        self._interim_wait = 0.0  # moving average of an interim's wait for the model, seconds
        self._interims_running = 0  # workers busy with an interim batch
        self._busy = 0  # workers busy with any batch
        self._interim_workers = max(1, config.workers - 1)  # the rest stay free for finals
        self._start()

    @classmethod
    def load(
        cls, config: AsrConfig, progress: Callable[[int, int], None] | None = None
    ) -> ModelOwner:
        from pipeline.speech.whisper import WhisperEngine  # the engine imports faster-whisper

        engine = WhisperEngine(config, progress)
        return cls(engine.transcribe, config, engine.transcribe_batch)

    @property
    def depth(self) -> tuple[int, int]:
        with self._lock:
            return self._depth()

    @property
    def interim_scale(self) -> float:
        """How much longer than usual channels should wait between interims (1 when idle).

        Grows by one for every half second interims currently wait for the model, up to
        `max_interim_scale`; always 1 for the baseline's fixed cadence.
        """
        if self.baseline:
            return 1.0
        return min(self.config.max_interim_scale, 1.0 + self._interim_wait / 0.5)

    async def transcribe(
        self, kind: PassKind, stream: tuple[str, str], audio: Samples
    ) -> AsrResult | None:
        """Run one pass. Finals always return a result; an interim returns None when shed."""
        if kind is PassKind.FINAL:
            # A final is never dropped: with the lane full, wait for room (callers then stop
            # reading their sockets: back-pressure instead of loss).
            async with self._final_slots:
                return await self._submit(kind, stream, audio)
        return await self._submit(kind, stream, audio)

    async def _submit(
        self, kind: PassKind, stream: tuple[str, str], audio: Samples
    ) -> AsrResult | None:
        future: Future[AsrResult | None] = Future()
        request = _Request(kind, stream, audio, future)
        with self._lock:
            self._check_open()
            if self.baseline:
                self._fifo.append(request)
            elif kind is PassKind.FINAL:
                self._finals.append(request)
            else:
                old = self._interims.pop(stream, None)
                if old is not None:
                    self._shed(old, "superseded")
                elif len(self._interims) >= self.config.interim_queue_size:
                    _, oldest = self._interims.popitem(last=False)
                    self._shed(oldest, "queue_full")
                self._interims[stream] = request
            self._update_depth()
            self._lock.notify()
        return await asyncio.wrap_future(future)

    def _closing(self) -> None:
        for req in self._interims.values():
            self._shed(req, "shutdown")
        self._interims.clear()

    def _shed(self, request: _Request, reason: str) -> None:
        metrics.INTERIMS_SHED.labels(reason).inc()
        settle(request.future, None)

    def _depth(self) -> tuple[int, int]:
        finals, interims = len(self._finals), len(self._interims)
        for req in self._fifo:
            finals += req.kind is PassKind.FINAL
            interims += req.kind is PassKind.INTERIM
        return finals, interims

    def _update_depth(self) -> None:
        finals, interims = self._depth()
        metrics.ASR_QUEUE_DEPTH.labels("final").set(finals)
        metrics.ASR_QUEUE_DEPTH.labels("interim").set(interims)

    def _take(self) -> list[_Request]:
        """The next batch, or [] when nothing waits. Called with the lock held."""
        batch = self._choose()
        if batch:
            self._update_depth()
        return batch

    def _choose(self) -> list[_Request]:
        if self.baseline:
            return [self._fifo.popleft()] if self._fifo else []
        # spread the waiting passes over the free workers before batching them: on a CPU a batch
        # costs nearly what its passes cost one after another, while free workers run in parallel
        free = max(1, self.config.workers - self._busy)
        if self._finals:
            size = min(self.config.max_batch, -(-len(self._finals) // free))
            self._busy += 1
            return [self._finals.popleft() for _ in range(size)]
        if self._interims_running >= self._interim_workers:
            return []
        free = min(free, self._interim_workers - self._interims_running)
        size = min(self.config.max_batch, -(-len(self._interims) // free))
        now, batch = time.monotonic(), list[_Request]()
        while self._interims and len(batch) < size:
            _, req = self._interims.popitem(last=False)
            wait = now - req.queued_at
            self._interim_wait += 0.2 * (wait - self._interim_wait)
            if wait <= self.config.interim_max_wait_s:
                batch.append(req)
            else:
                self._shed(req, "late")
        if not self._interims and not batch:
            self._interim_wait *= 0.5  # idle: the cadence recovers
        self._interims_running += bool(batch)
        self._busy += bool(batch)
        return batch

    def _done(self, batch: list[_Request]) -> None:
        if not self.baseline:
            self._busy -= 1
            self._interims_running -= batch[0].kind is PassKind.INTERIM

    def _run_batch(self, batch: list[_Request]) -> None:
        batch = [req for req in batch if not req.future.cancelled()]  # callers gone
        if not batch:
            return
        kind = batch[0].kind
        t0 = time.monotonic()
        try:
            results = self._run([req.audio for req in batch], kind)
        except Exception as exc:
            log.exception("ASR %s batch of %d failed", kind.value, len(batch))
            metrics.ERRORS.labels("asr").inc()
            for req in batch:
                settle(req.future, exc)
            return
        metrics.ASR_SECONDS.labels(kind.value).observe(time.monotonic() - t0)
        metrics.ASR_BATCH_SIZE.labels(kind.value).observe(len(batch))
        for req, result in zip(batch, results, strict=True):
            metrics.ASR_AUDIO_SECONDS.labels(kind.value).inc(len(req.audio) / 16000)
            metrics.ASR_WAIT.labels(kind.value).observe(t0 - req.queued_at)
            settle(req.future, result)
