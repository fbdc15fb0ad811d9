"""The mood stage of one call: sentiment, prosody emotion, conversation signals, frustration.

The synchronous cores (`RollingSentiment`, `ArousalTracker`, `ConversationTracker`,
`FrustrationScorer`) do the judging; this module only feeds them and emits their events:

    final transcript + its audio --(bounded queue, in order)--> sentiment (batched owner thread)
                                                               prosody   (prosody thread)
        --> sentiment, emotion, talk_stats and (customer) frustration events; a final of the
            other party ends the speaker's turn --> turn_sentiment (the whole turn's text)
    VAD events of both channels --> talkover / dead_air events (+ frustration when they concern
                                    the customer)

`MoodServices` holds what all calls share: the sentiment model's owner and the prosody thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from pipeline.mood.conversation import ConversationConfig, ConversationTracker, Signal, SignalKind
from pipeline.mood.frustration import (
    FrustrationConfig,
    FrustrationScorer,
    FrustrationUpdate,
    read_sarcasm,
)
from pipeline.mood.prosody import ArousalTracker, ProsodyConfig, measure
from pipeline.mood.sentiment import (
    RollingSentiment,
    Sentiment,
    SentimentConfig,
    SentimentService,
    load_owner,
    transcript_trust,
)
from pipeline.mood.turns import TAKES_FLOOR_WORDS, Turn, word_confidence
from pipeline.runtime import metrics
from pipeline.types import (
    PIPELINE_RATE,
    Channel,
    EmotionEvent,
    Event,
    FrustrationEvent,
    Samples,
    SentimentEvent,
    SignalEvent,
    TalkStatsEvent,
    TranscriptEvent,
    TurnSentimentEvent,
    VadEvent,
)

log = logging.getLogger(__name__)

Emit = Callable[[Event], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MoodConfig:
    sentiment_half_life_s: float = 30.0
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    prosody: ProsodyConfig = field(default_factory=ProsodyConfig)
    frustration: FrustrationConfig = field(default_factory=FrustrationConfig)
    pending: int = 32  # finals waiting for their mood before the call is paused


class MoodServices:
    """Shared by every call: one sentiment owner (batching), one prosody thread."""

    def __init__(self, config: MoodConfig, sentiment: SentimentService | None) -> None:
        self.config = config
        self.sentiment = sentiment
        self.prosody = ThreadPoolExecutor(1, thread_name_prefix="prosody")

    @classmethod
    def load(
        cls, config: MoodConfig, sentiment: SentimentConfig | SentimentService | None
    ) -> MoodServices:
        """With a sentiment config, load its model here; a service (workers') is used as is."""
        if isinstance(sentiment, SentimentConfig):
            sentiment = load_owner(sentiment)
        services = cls(config, sentiment)
        services.prosody.submit(_warm_up).result()  # librosa compiles its kernels once
        return services

    def close(self) -> None:
        if self.sentiment is not None:
            self.sentiment.close()
        self.prosody.shutdown(wait=True)


def _warm_up() -> None:
    t = np.arange(PIPELINE_RATE, dtype=np.float32) / PIPELINE_RATE
    measure((0.1 * np.sin(2 * np.pi * 150 * t)).astype(np.float32))


class CallMood:
    def __init__(
        self, call_id: str, services: MoodServices, emit: Emit, tasks: asyncio.TaskGroup
    ) -> None:
        self.call_id = call_id
        self._services = services
        cfg = services.config
        self._emit = emit
        self._rolling = {c: RollingSentiment(cfg.sentiment_half_life_s) for c in Channel}
        self._arousal = {c: ArousalTracker(cfg.prosody) for c in Channel}
        self._talk = ConversationTracker(cfg.conversation)
        self._turns: dict[Channel, Turn | None] = dict.fromkeys(Channel)
        self.frustration = FrustrationScorer(cfg.frustration)
        self._queue: asyncio.Queue[tuple[TranscriptEvent, Samples] | None] = asyncio.Queue(
            cfg.pending
        )
        self._worker = tasks.create_task(self._work())

    # --- input ---------------------------------------------------------------------------------
    async def final(self, event: TranscriptEvent, audio: Samples) -> None:
        """A final transcript (in order per channel) and its utterance's audio."""
        if event.text.strip():
            await self._queue.put((event, audio))  # waits when moods pile up: back-pressure

    async def activity(
        self,
        events: Mapping[Channel, list[VadEvent]],
        position: int,
        voiced_until: dict[Channel, int],
    ) -> None:
        signals: list[Signal] = []
        for channel, evs in events.items():
            signals += self._talk.vad(channel, evs)
        signals += self._talk.advance(position, voiced_until)
        for signal in signals:
            await self._signal(signal)

    async def close(self, position: int) -> None:
        """End of the call, after its last final: finish the moods, close open signals."""
        await self._queue.put(None)
        await self._worker
        for channel in Channel:
            await self._end_turn(channel)
        for signal in self._talk.close(position):
            await self._signal(signal)

    # --- signals -------------------------------------------------------------------------------
    async def _signal(self, signal: Signal) -> None:
        start, end = signal.seconds(PIPELINE_RATE)
        metrics.SIGNALS.labels(signal.kind.value).inc(signal.final)
        await self._emit(
            SignalEvent(
                call_id=self.call_id,
                channel=signal.channel,
                start=start,
                end=end,
                kind=signal.kind.value,
                final=signal.final,
            )
        )
        concerns_customer = (
            signal.kind is SignalKind.TALKOVER and signal.channel is Channel.CUSTOMER
        ) or (signal.kind is SignalKind.DEAD_AIR and signal.channel is Channel.AGENT)
        if signal.final and concerns_customer:
            await self._frustration(self.frustration.signal(signal.kind.value, end), None)

    # --- finals --------------------------------------------------------------------------------
    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                await self._analyse(*item)
            except Exception:
                log.exception("mood analysis failed", extra={"call_id": self.call_id})
                metrics.ERRORS.labels("mood").inc()

    async def _analyse(self, event: TranscriptEvent, audio: Samples) -> None:
        channel = event.channel
        other = Channel.AGENT if channel is Channel.CUSTOMER else Channel.CUSTOMER
        if len(event.text.split()) >= TAKES_FLOOR_WORDS:  # not a backchannel: the floor passes
            await self._end_turn(other)
        turn = self._turns[channel]
        continues = turn is not None
        if turn is None:
            turn = self._turns[channel] = Turn(event.start)
        turn.add(event)
        loop = asyncio.get_running_loop()
        got_sentiment, got_turn, got_features = await asyncio.gather(
            self._timed("sentiment", self._sentiment(event.text)),
            self._timed("sentiment", self._sentiment(turn.text) if continues else _none()),
            self._timed(
                "prosody",
                loop.run_in_executor(self._services.prosody, measure, audio, event.words),
            ),
            return_exceptions=True,
        )
        sentiment = _or_none(got_sentiment, "sentiment", self.call_id)
        features = _or_none(got_features, "prosody", self.call_id)
        if sentiment is not None:
            sentiment = read_sarcasm(sentiment, event.text)
        if continues:
            whole = _or_none(got_turn, "sentiment", self.call_id)
            turn.sentiment = None if whole is None else read_sarcasm(whole, turn.text)
        else:
            turn.sentiment = sentiment
        envelope = _Envelope(self.call_id, channel, event.start, event.end)

        if sentiment is not None:  # published as far as the words are trusted
            shown = sentiment.shrunk(transcript_trust(word_confidence(event)))
            rolling, trend = self._rolling[channel].add(event.end, shown.score)
            await self._emit(
                SentimentEvent(
                    **envelope.fields(),
                    utterance=event.utterance,
                    label=shown.label,
                    probs=(shown.negative, shown.neutral, shown.positive),
                    score=shown.score,
                    rolling=rolling,
                    trend=trend,
                )
            )
        arousal: float | None = None
        settled = True
        if features is not None:
            emotion = self._arousal[channel].update(features, event.text)
            arousal, settled = emotion.arousal, not emotion.baseline
            await self._emit(
                EmotionEvent(
                    **envelope.fields(),
                    utterance=event.utterance,
                    label=emotion.label,
                    arousal=emotion.arousal,
                    confidence=emotion.confidence,
                    baseline=emotion.baseline,
                    baseline_quality=emotion.baseline_quality,
                    pitch_hz=features.pitch_hz,
                    pitch_range_st=features.pitch_range_st,
                    loudness_db=features.loudness_db,
                    rate_wps=features.rate_wps,
                    relative={
                        "pitch_st": emotion.pitch_st,
                        "loudness_db": emotion.loudness_db,
                        "rate_pct": emotion.rate_pct,
                        "range_st": emotion.range_st,
                    },
                )
            )
        self._talk.add_words(channel, len(event.words))
        stats = self._talk.stats()
        await self._emit(
            TalkStatsEvent(
                call_id=self.call_id,
                channel=channel,
                start=0.0,
                end=max(stats.at_s, event.end),
                parties={
                    c.label: {
                        "talk_s": p.talk_s,
                        "share": p.share,
                        "words": p.words,
                        "wpm": p.wpm,
                        "interruptions": p.interruptions,
                    }
                    for c, p in stats.parties.items()
                },
                overlap_s=stats.overlap_s,
                dead_air_s=stats.dead_air_s,
            )
        )
        if arousal is not None:
            turn.arousals.append(arousal)
        if channel is Channel.CUSTOMER:  # judged on the turn so far, not this final alone
            update = self.frustration.turn(
                event.utterance, event.end, event.text, turn.sentiment, turn.arousal,
                turn.confidence, settled, continues,
            )  # fmt: skip
            await self._frustration(update, event)

    async def _end_turn(self, channel: Channel) -> None:
        """The floor has passed (or the call ended): the turn's sentiment on its whole text."""
        turn, self._turns[channel] = self._turns[channel], None
        if turn is None or turn.sentiment is None:
            return
        s = turn.sentiment.shrunk(transcript_trust(turn.confidence))
        await self._emit(
            TurnSentimentEvent(
                call_id=self.call_id, channel=channel, start=turn.start, end=turn.end,
                utterances=tuple(turn.utterances), label=s.label,
                probs=(s.negative, s.neutral, s.positive), score=s.score,
            )
        )  # fmt: skip

    async def _sentiment(self, text: str) -> Sentiment | None:
        owner = self._services.sentiment
        return None if owner is None else await owner.submit(text)

    @staticmethod
    async def _timed(stage: str, work: Awaitable[T]) -> T:
        t0 = time.monotonic()
        try:
            return await work
        finally:
            metrics.MOOD_SECONDS.labels(stage).observe(time.monotonic() - t0)

    async def _frustration(self, update: FrustrationUpdate, event: TranscriptEvent | None) -> None:
        metrics.FRUSTRATION_ONSETS.inc(update.onset)
        await self._emit(
            FrustrationEvent(
                call_id=self.call_id,
                channel=Channel.CUSTOMER,
                start=event.start if event is not None else update.at,
                end=update.at,
                utterance=event.utterance if event is not None else None,
                **update.fields(),
            )
        )


async def _none() -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Envelope:
    call_id: str
    channel: Channel
    start: float
    end: float

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _or_none(outcome: T | BaseException, stage: str, call_id: str) -> T | None:
    """A stage's result, or None (logged and counted) when it failed: the others go on."""
    if isinstance(outcome, BaseException):
        log.error("%s failed: %r", stage, outcome, extra={"call_id": call_id})
        metrics.ERRORS.labels(stage).inc()
        return None
    return outcome
