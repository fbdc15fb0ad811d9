"""One call, wired: interleaved audio -> per channel (resample -> VAD -> transcription) -> mood.

    bytes --decode--> (frames, 2) int16
        channel 0 customer --Resampler--> VadSegmenter --> ChannelStream --+--> sink(event)
        channel 1 agent    --Resampler--> VadSegmenter --> ChannelStream --+
                                    |  VAD events                  | finals + their audio
                                    +------------> CallMood <-------+
                      (talk-over, dead air, sentiment, emotion, talk stats, frustration) --> sink
    every event ---> CallAssist (alert rules, knowledge suggestions) --> alert, suggestions --> sink

The session numbers events (`seq`) and hands them to its sink, which publishes them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.assist.call_assist import AssistServices, CallAssist
from pipeline.mood.call_mood import CallMood, MoodServices
from pipeline.runtime import metrics
from pipeline.speech.asr import AsrService
from pipeline.speech.audio import Resampler, decode_interleaved
from pipeline.speech.stream import ChannelStream, StreamConfig
from pipeline.speech.vad import VadConfig, VadSegmenter
from pipeline.types import PCM, CallInfo, Channel, Event, TranscriptEvent, VadEvent

Sink = Callable[[Event], Awaitable[None]]


class _ChannelPipe:
    def __init__(self, info: CallInfo, channel: Channel, vad: VadConfig, stream: ChannelStream):
        self.channel = channel
        self.resampler = Resampler(info.sample_rate)
        self.vad = VadSegmenter(vad)
        self.stream = stream

    async def push(self, pcm: PCM, last: bool = False) -> list[VadEvent]:
        out = self.resampler.push(pcm, last=last)
        events = self.vad.push(out)
        if last:
            events += self.vad.flush()
        await self.stream.push(events, self.resampler.samples_out, time.monotonic())
        return events


@dataclass(frozen=True, slots=True)
class Stages:
    """What every call of a process shares: the speech service (a local owner or workers), the
    stages' configs, and the mood and assist services (None: that stage is off)."""

    asr: AsrService
    vad: VadConfig = field(default_factory=VadConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    mood: MoodServices | None = None
    assist: AssistServices | None = None


class CallSession:
    """Use as `async with CallSession(...) as s: await s.feed(payload) ...; await s.finish()`."""

    def __init__(self, info: CallInfo, stages: Stages, sink: Sink) -> None:
        self.info = info
        self.stages = stages
        self.mood: CallMood | None = None
        self.assist: CallAssist | None = None
        self._sink = sink
        self._tasks = asyncio.TaskGroup()
        self._pipes: list[_ChannelPipe] = []
        self._seq = 0
        self._emit_lock = asyncio.Lock()
        self.samples_in = 0
        self.finished = False

    async def __aenter__(self) -> CallSession:
        await self._tasks.__aenter__()
        stages, call_id = self.stages, self.info.call_id
        if stages.mood is not None:
            self.mood = CallMood(call_id, stages.mood, self._emit, self._tasks)
        if stages.assist is not None:
            self.assist = CallAssist(call_id, stages.assist, self._emit, self._tasks)
        self._pipes = [
            _ChannelPipe(
                self.info,
                channel,
                stages.vad,
                ChannelStream(
                    call_id,
                    channel,
                    stages.asr,
                    stages.stream,
                    self._emit,
                    self._tasks,
                    self.mood.final if self.mood is not None else None,
                ),
            )
            for channel in Channel
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.finished and exc[0] is None:
            await self.finish()
        await self._tasks.__aexit__(*exc)  # type: ignore[arg-type]

    @property
    def duration(self) -> float:
        return self.samples_in / self.info.sample_rate

    async def feed(self, payload: bytes) -> None:
        """Whole interleaved frames of the call's encoding (the gateway checks the length)."""
        await self.feed_pcm(decode_interleaved(payload, self.info.encoding, self.info.channels))

    async def feed_pcm(self, frames: PCM) -> None:
        """(n, channels) int16 samples at the call's rate: column 0 customer, 1 agent."""
        if not len(frames):
            return
        self.samples_in += len(frames)
        events = {}
        for pipe in self._pipes:
            metrics.AUDIO_SECONDS.labels(pipe.channel.label).inc(
                len(frames) / self.info.sample_rate
            )
            events[pipe.channel] = await pipe.push(frames[:, pipe.channel.value].copy())
        await self._activity(events)

    async def _activity(self, events: dict[Channel, list[VadEvent]]) -> None:
        if self.mood is not None:
            position = min(pipe.vad.position for pipe in self._pipes)
            speaking = {p.channel: p.vad.voiced_until for p in self._pipes if p.vad.in_speech}
            await self.mood.activity(events, position, speaking)

    async def finish(self) -> None:
        """End of audio: close utterances in progress and wait for every final."""
        if self.finished:
            return
        self.finished = True
        events = {}
        for pipe in self._pipes:
            events[pipe.channel] = await pipe.push(np.zeros(0, dtype=np.int16), last=True)
        await self._activity(events)
        for pipe in self._pipes:
            await pipe.stream.close()
        if self.mood is not None:
            await self.mood.close(max(pipe.resampler.samples_out for pipe in self._pipes))
        if self.assist is not None:
            await self.assist.close()

    async def _emit(self, event: Event) -> None:
        async with self._emit_lock:  # sinks see events in `seq` order
            self._seq += 1
            if isinstance(event, TranscriptEvent):
                kind = "final" if event.final else "interim"
                metrics.TRANSCRIPTS.labels(event.channel.label, kind).inc()
            event = replace(event, seq=self._seq)
            await self._sink(event)
            if self.assist is not None:
                self.assist.observe(event)
