"""Speech recognition: a synchronous whisper engine, and the one owner that serves every call.

The owner runs the engine on its own threads (never on the event loop) and feeds them from a
bounded queue with two lanes. Finals go first and are never dropped: when their lane is full,
callers wait, which in turn stops reading from their sockets. Interims are best effort: a newer
interim of the same channel replaces the queued one, the oldest interim makes room when the lane
is full, and an interim that waited longer than `interim_max_wait_s` is no longer worth running.
Each of those sheds is counted.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline import metrics
from pipeline.commit import Word, normalize_word
from pipeline.models import resolve_model

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.float32]


class PassKind(enum.Enum):
    INTERIM = "interim"
    FINAL = "final"


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
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class AsrResult:
    words: tuple[Word, ...]  # times relative to the start of the audio; -1 when not timed

    @property
    def texts(self) -> list[str]:
        return [w.text for w in self.words]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def cut_repetitions(words: Sequence[Word], max_repeats: int) -> list[Word]:
    """Cut a hallucination loop: an n-gram (n <= 8) repeated back to back over max_repeats times.

    Keeps the first `max_repeats` copies and drops everything after the loop starts repeating.
    """
    norm = [normalize_word(w.text) for w in words]
    for i in range(len(norm)):
        for n in range(1, 9):
            gram = norm[i : i + n]
            if len(gram) < n:
                break
            reps = 1
            while norm[i + reps * n : i + (reps + 1) * n] == gram:
                reps += 1
            if reps > max_repeats:
                return list(words[: i + max_repeats * n])
    return list(words)


class WhisperEngine:
    """faster-whisper with the guards against text invented on silence. Not thread-bound."""

    def __init__(self, config: AsrConfig, progress: Callable[[int, int], None] | None = None):
        from faster_whisper import WhisperModel  # heavy import, only where a model is loaded

        self.config = config
        self.model_path = resolve_model(config.model, config.cache_dir, progress)
        self.model = WhisperModel(
            self.model_path,
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            num_workers=config.workers,
        )

    def transcribe(self, audio: Samples, kind: PassKind) -> AsrResult:
        c = self.config
        final = kind is PassKind.FINAL
        segments, _info = self.model.transcribe(
            audio,
            language=c.language,
            beam_size=c.beam_size if final else c.interim_beam_size,
            temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if final else 0.0,
            condition_on_previous_text=False,  # no text carried between windows or calls
            no_speech_threshold=c.no_speech_threshold,
            log_prob_threshold=c.log_prob_threshold,
            compression_ratio_threshold=c.compression_ratio_threshold,
            word_timestamps=final,  # interims decode as finals do, only without the alignment
            vad_filter=False,  # the pipeline's VAD already gates what reaches the model
        )
        words: list[Word] = []
        for seg in segments:  # a lazy generator: the work happens here, on this thread
            if (
                seg.no_speech_prob > c.no_speech_threshold
                and seg.avg_logprob < c.log_prob_threshold
            ):
                continue
            if final and seg.words:
                words.extend(
                    Word(w.word.strip(), round(w.start, 3), round(w.end, 3), w.probability)
                    for w in seg.words
                    if w.word.strip()
                )
            else:
                words.extend(Word(t, -1.0, -1.0) for t in seg.text.split())
        return AsrResult(tuple(cut_repetitions(words, c.max_repeats)))


Transcriber = Callable[[Samples, PassKind], AsrResult]


@dataclass(eq=False)
class _Request:
    kind: PassKind
    stream: tuple[str, str]  # (call id, channel): an interim replaces its stream's queued one
    audio: Samples
    future: Future[AsrResult | None]
    queued_at: float = field(default_factory=time.monotonic)


class ModelOwner:
    """Owns one model for all calls; `await transcribe(...)` from any coroutine."""

    def __init__(self, transcriber: Transcriber, config: AsrConfig) -> None:
        self._transcribe = transcriber
        self.config = config
        self._lock = threading.Condition()
        self._finals: deque[_Request] = deque()
        self._interims: OrderedDict[tuple[str, str], _Request] = OrderedDict()
        self._final_slots = asyncio.Semaphore(config.final_queue_size)  # queued or running
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"asr-{i}", daemon=True)
            for i in range(config.workers)
        ]
        for t in self._threads:
            t.start()

    @classmethod
    def load(
        cls, config: AsrConfig, progress: Callable[[int, int], None] | None = None
    ) -> ModelOwner:
        engine = WhisperEngine(config, progress)
        return cls(engine.transcribe, config)

    @property
    def depth(self) -> tuple[int, int]:
        with self._lock:
            return len(self._finals), len(self._interims)

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
            if self._closed:
                raise RuntimeError("model owner is closed")
            if kind is PassKind.FINAL:
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

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for req in self._interims.values():
                self._shed(req, "shutdown")
            self._interims.clear()
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout=30)

    def _shed(self, request: _Request, reason: str) -> None:
        metrics.INTERIMS_SHED.labels(reason).inc()
        _resolve(request.future, None)

    def _update_depth(self) -> None:
        metrics.ASR_QUEUE_DEPTH.labels("final").set(len(self._finals))
        metrics.ASR_QUEUE_DEPTH.labels("interim").set(len(self._interims))

    def _next(self) -> _Request | None:
        with self._lock:
            while True:
                if self._finals:
                    req = self._finals.popleft()
                    break
                now = time.monotonic()
                while self._interims:
                    _, req = self._interims.popitem(last=False)
                    if now - req.queued_at <= self.config.interim_max_wait_s:
                        break
                    self._shed(req, "late")
                else:
                    if self._closed:
                        return None
                    self._lock.wait()
                    continue
                break
            self._update_depth()
            return req

    def _work(self) -> None:
        while (req := self._next()) is not None:
            if req.future.cancelled():  # its caller went away while it waited
                continue
            t0 = time.perf_counter()
            try:
                result = self._transcribe(req.audio, req.kind)
            except Exception as exc:
                log.exception("ASR %s pass failed", req.kind.value)
                metrics.ERRORS.labels("asr").inc()
                _resolve(req.future, exc)
                continue
            metrics.ASR_SECONDS.labels(req.kind.value).observe(time.perf_counter() - t0)
            metrics.ASR_AUDIO_SECONDS.labels(req.kind.value).inc(len(req.audio) / 16000)
            _resolve(req.future, result)


def _resolve(future: Future[AsrResult | None], outcome: AsrResult | Exception | None) -> None:
    """Settle a future that its awaiting caller may have cancelled meanwhile."""
    try:
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        pass
