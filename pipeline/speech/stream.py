"""Incremental transcription of one channel: VAD utterances in, interim and final transcripts out.

While an utterance grows, an interim pass runs on all of it every `interim_interval_s` of new
audio, stretched by the model owner's `interim_scale` when the model is loaded (one at a time per
channel); the commit policy turns successive passes into a committed
prefix and an unstable tail. At the utterance's end a final pass with word timings runs, and
finals of a channel are emitted strictly in order. Interim results that come back after their
utterance ended are discarded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.runtime import metrics
from pipeline.speech.asr import AsrService, PassKind
from pipeline.speech.commit import CommitPolicy
from pipeline.speech.redact import RedactConfig, Redactor
from pipeline.types import (
    PCM,
    PIPELINE_RATE,
    Channel,
    Samples,
    TranscriptEvent,
    VadEvent,
    VadEventKind,
    Word,
)

log = logging.getLogger(__name__)

Emit = Callable[[TranscriptEvent], Awaitable[None]]
OnFinal = Callable[[TranscriptEvent, Samples], Awaitable[None]]  # a final and its audio


@dataclass(frozen=True, slots=True)
class StreamConfig:
    interim_interval_s: float = 1.0
    min_interim_audio_s: float = 0.6
    agreement: int = 2
    pending_finals: int = 8  # utterances waiting for their final before the call is paused
    redact: RedactConfig = field(default_factory=RedactConfig)  # before anything leaves


@dataclass(eq=False)
class _Utterance:
    number: int
    start_sample: int
    started_at: float  # wall clock when its first audio arrived
    chunks: list[PCM] = field(default_factory=list)
    length: int = 0
    end_sample: int | None = None
    ended_at: float = 0.0
    policy: CommitPolicy = field(default_factory=CommitPolicy)
    interims: int = 0
    last_interim_len: int = 0
    interim_running: bool = False

    def audio(self, upto: int | None = None) -> Samples:
        pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        if upto is not None:
            pcm = pcm[:upto]
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


class ChannelStream:
    """One channel's transcription. `push` VAD events; `close` waits for the last final."""

    def __init__(
        self,
        call_id: str,
        channel: Channel,
        owner: AsrService,
        config: StreamConfig,
        emit: Emit,
        tasks: asyncio.TaskGroup,
        on_final: OnFinal | None = None,
    ) -> None:
        self.call_id = call_id
        self._on_final = on_final
        self.channel = channel
        self._owner = owner
        self._config = config
        self._redactor = Redactor(config.redact)
        self._emit = emit
        self._tasks = tasks
        self._current: _Utterance | None = None
        self._count = 0
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=4096)  # (position, wall time)
        self._finals: asyncio.Queue[_Utterance | None] = asyncio.Queue(config.pending_finals)
        self._final_task = tasks.create_task(self._finalise_loop())
        self._interval = int(config.interim_interval_s * PIPELINE_RATE)
        self._min_interim = int(config.min_interim_audio_s * PIPELINE_RATE)

    async def push(self, events: list[VadEvent], position: int, arrived_at: float) -> None:
        """Handle the VAD events of audio up to sample `position`, which arrived at `arrived_at`."""
        self._arrivals.append((position, arrived_at))
        for ev in events:
            if ev.kind is VadEventKind.START:
                self._count += 1
                metrics.UTTERANCES.labels(self.channel.label).inc()
                self._current = _Utterance(self._count, ev.sample, self._arrival(ev.sample))
                self._current.policy = CommitPolicy(self._config.agreement)
            elif ev.kind is VadEventKind.AUDIO and self._current is not None:
                assert ev.pcm is not None
                self._current.chunks.append(ev.pcm)
                self._current.length += len(ev.pcm)
                self._maybe_interim(self._current)
            elif ev.kind is VadEventKind.END and self._current is not None:
                utt, self._current = self._current, None
                utt.end_sample = ev.sample
                utt.ended_at = self._arrival(ev.sample)
                await self._finals.put(utt)  # waits when finals pile up: back-pressure

    def _arrival(self, sample: int) -> float:
        """Wall-clock time at which audio sample `sample` reached the server."""
        for position, t in self._arrivals:
            if position >= sample:
                return t
        return self._arrivals[-1][1]

    async def close(self) -> None:
        await self._finals.put(None)
        await self._final_task

    def _maybe_interim(self, utt: _Utterance) -> None:
        if (
            utt.interim_running
            or utt.length < self._min_interim
            or utt.length - utt.last_interim_len < self._interval * self._owner.interim_scale
        ):
            return
        utt.interim_running = True
        utt.last_interim_len = utt.length
        self._tasks.create_task(self._interim(utt, utt.audio()))

    async def _interim(self, utt: _Utterance, audio: Samples) -> None:
        try:
            result = await self._owner.transcribe(
                PassKind.INTERIM, (self.call_id, self.channel.label), audio
            )
        except Exception:  # an interim is best effort: never let it end the call
            log.exception("interim pass failed", extra={"call_id": self.call_id})
            metrics.ERRORS.labels("interim").inc()
            return
        finally:
            utt.interim_running = False
        if result is None or utt.end_sample is not None:
            return  # shed under load, or the utterance ended while it ran
        partial = utt.policy.update(result.texts)
        if not partial.committed and not partial.tail:
            return
        first = utt.interims == 0
        utt.interims += 1
        start = utt.start_sample / PIPELINE_RATE
        # PII goes before the text leaves; a redacted run that crosses the commit point is
        # held in the unstable tail until all of it is committed
        tokens = self._redactor.tokens([*partial.committed, *partial.tail], open_end=True)
        n = len(partial.committed)
        committed = " ".join(t.text for t in tokens if t.last < n)
        unstable = " ".join(t.text for t in tokens if t.last >= n)
        await self._emit(
            TranscriptEvent(
                call_id=self.call_id,
                channel=self.channel,
                utterance=utt.number,
                start=start,
                end=start + len(audio) / PIPELINE_RATE,
                text=" ".join(filter(None, (committed, unstable))),
                final=False,
                committed=committed,
                unstable=unstable,
            )
        )
        if first:
            metrics.FIRST_INTERIM_LATENCY.observe(time.monotonic() - utt.started_at)
        self._maybe_interim(utt)  # audio may have grown past the next interval meanwhile

    async def _finalise_loop(self) -> None:
        while (utt := await self._finals.get()) is not None:
            try:
                await self._finalise(utt)
            except Exception:
                log.exception(
                    "final transcript failed",
                    extra={"call_id": self.call_id, "utterance": utt.number},
                )
                metrics.ERRORS.labels("final").inc()

    async def _finalise(self, utt: _Utterance) -> None:
        assert utt.end_sample is not None
        length = utt.end_sample - utt.start_sample
        audio = utt.audio(length)
        result = await self._owner.transcribe(
            PassKind.FINAL, (self.call_id, self.channel.label), audio
        )
        assert result is not None  # finals are never shed
        start = utt.start_sample / PIPELINE_RATE
        end = utt.end_sample / PIPELINE_RATE
        on_call_clock = [
            Word(w.text, round(start + w.start, 3), round(start + w.end, 3), w.probability)
            for w in result.words
        ]
        words, redacted = self._redactor.words(utt.policy.finalize(on_call_clock, start, end))
        for kind in redacted:
            metrics.PII_REDACTED.labels(kind.value).inc()
        if not words and utt.interims == 0:
            return  # nothing was said that the model could read, and nothing to retract
        final = TranscriptEvent(
            call_id=self.call_id,
            channel=self.channel,
            utterance=utt.number,
            start=start,
            end=end,
            text=" ".join(w.text for w in words),
            final=True,
            words=tuple(words),
            latency=time.monotonic() - utt.ended_at,
        )
        await self._emit(final)
        metrics.FINAL_LATENCY.observe(time.monotonic() - utt.ended_at)
        if self._on_final is not None:
            await self._on_final(final, audio)
