"""The assist stage of one call: alert rules, knowledge suggestions and the customer's feelings.

    every event the call emits (in seq order) --> queue --> CallAssist
        final transcript with words --embed (encoder owner, batched across calls)--> vector
        RuleEngine.feed(event, using the vector for semantic rules)  --> alert events
        KnowledgeBase.suggest_vector(vector) for customer finals       --> suggestions event
        customer turn_sentiment + the turn's text (embedded) and voice
            --> FeelingJudge (`feelings.py`)                           --> feeling event (+ rules)

The sentence encoder runs on its own owner thread (`BatchOwner`), never on the event loop; the
rule engine and the knowledge ranking are cheap synchronous code (dot products with example
vectors embedded once at start-up). `AssistServices` holds what all calls share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pipeline.assist.embed import SentenceEncoder, Vectors
from pipeline.assist.feelings import FeelingJudge
from pipeline.assist.knowledge import DEFAULT_KNOWLEDGE, KnowledgeBase, load_knowledge
from pipeline.assist.rules import DEFAULT_RULES, Match, Rule, RuleEngine, RuleType, load_rules
from pipeline.runtime import metrics
from pipeline.runtime.owner import BatchConfig, BatchOwner
from pipeline.types import (
    AlertEvent,
    Channel,
    EmotionEvent,
    Event,
    FeelingEvent,
    SuggestionEvent,
    TranscriptEvent,
    TurnSentimentEvent,
)

log = logging.getLogger(__name__)

Emit = Callable[[Event], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AssistConfig:
    rules_file: Path = DEFAULT_RULES
    knowledge_file: Path | None = DEFAULT_KNOWLEDGE  # None: no suggestions
    encoder: str = "minilm"
    device: str = "cpu"
    threads: int = 1
    top_k: int = 3
    min_score: float = 0.45
    feelings: bool = True  # label how the customer feels each turn


class AssistServices:
    """Shared by every call: the rules, the knowledge base, one encoder owner thread."""

    def __init__(
        self,
        rules: Sequence[Rule],
        knowledge: KnowledgeBase | None = None,
        encoder: SentenceEncoder | None = None,
        feelings: bool = False,
    ) -> None:
        self.rules = list(rules)
        self.knowledge = knowledge
        self.encoder = encoder
        self.feelings = (
            FeelingJudge(encoder.examples(FeelingJudge.all_examples()))
            if feelings and encoder is not None
            else None
        )
        self._semantic = {
            r.channel for r in rules if r.type is RuleType.PHRASE and r.match is Match.SEMANTIC
        }
        if (self._semantic or knowledge is not None) and encoder is None:
            raise ValueError("semantic rules and knowledge suggestions need a sentence encoder")
        self._owner: BatchOwner[str, Vectors] | None = None
        if encoder is not None:
            for rule in rules:
                if rule.match is Match.SEMANTIC:
                    encoder.examples(rule.phrases)  # embedded once, before any call
            self._owner = BatchOwner(
                "encoder", lambda texts: list(encoder.encode(texts)), BatchConfig()
            )

    @classmethod
    def load(cls, config: AssistConfig) -> AssistServices:
        """Read and check the rules and knowledge files (`ConfigError` names file, line, field)."""
        rules = load_rules(config.rules_file)
        entries = load_knowledge(config.knowledge_file) if config.knowledge_file else None
        needs_encoder = (
            entries is not None or config.feelings or any(r.match is Match.SEMANTIC for r in rules)
        )
        encoder = (
            SentenceEncoder(config.encoder, config.threads, config.device)
            if needs_encoder
            else None
        )
        knowledge = (
            KnowledgeBase(entries, encoder, config.top_k, config.min_score)
            if entries is not None and encoder is not None
            else None
        )
        return cls(rules, knowledge, encoder, config.feelings)

    def wants_vector(self, channel: Channel) -> bool:
        return channel.label in self._semantic or (
            channel is Channel.CUSTOMER and self.knowledge is not None
        )

    async def embed(self, text: str) -> Vectors:
        assert self._owner is not None
        return await self._owner.submit(text)

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()


class CallAssist:
    """The rules and suggestions of one call. `observe` every event the call emits, in order."""

    def __init__(
        self, call_id: str, services: AssistServices, emit: Emit, tasks: asyncio.TaskGroup
    ) -> None:
        self.call_id = call_id
        self._services = services
        self._emit = emit
        self.engine = RuleEngine(call_id, services.rules, self._similarity)
        self._vector: Vectors | None = None
        # The customer's recent finals (text, voice arousal) by utterance, until their turn's
        # sentiment arrives: at most KEEP of each, the oldest dropped.
        self._texts: dict[int, str] = {}
        self._arousal: dict[int, float] = {}
        # Unbounded: events arrive from inside the call's emit, which must never wait on us.
        # It holds at most the events of the few milliseconds the rules take.
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._worker = tasks.create_task(self._work())

    def observe(self, event: Event) -> None:
        if not isinstance(event, AlertEvent | SuggestionEvent | FeelingEvent):  # not our own
            self._queue.put_nowait(event)

    async def close(self) -> None:
        """After the call's last event: finish the rules for everything observed."""
        self._queue.put_nowait(None)
        await self._worker

    async def _work(self) -> None:
        while (event := await self._queue.get()) is not None:
            try:
                await self._handle(event)
            except Exception:
                log.exception("assist failed", extra={"call_id": self.call_id})
                metrics.ERRORS.labels("assist").inc()

    async def _handle(self, event: Event) -> None:
        self._vector = None
        if (
            isinstance(event, TranscriptEvent)
            and event.final
            and event.text.strip()
            and self._services.wants_vector(event.channel)
        ):
            self._vector = await self._services.embed(event.text)
        await self._rules(event)
        if self._services.feelings is not None and event.channel is Channel.CUSTOMER:
            await self._feel(event)
        kb = self._services.knowledge
        if (
            kb is not None
            and self._vector is not None
            and isinstance(event, TranscriptEvent)
            and event.channel is Channel.CUSTOMER
            and (found := kb.suggest_vector(self._vector))
        ):
            metrics.SUGGESTIONS.inc()
            await self._emit(
                SuggestionEvent(
                    call_id=self.call_id,
                    channel=Channel.CUSTOMER,
                    start=event.start,
                    end=event.end,
                    utterance=event.utterance,
                    items=tuple(found),
                )
            )

    async def _rules(self, event: Event) -> None:
        for alert in self.engine.feed(event):
            metrics.ALERTS.labels(alert.severity).inc()
            await self._emit(alert)

    async def _feel(self, event: Event) -> None:
        """Keep the customer's finals and voice; at their turn's sentiment, judge its feeling."""
        if isinstance(event, TranscriptEvent) and event.final and event.text.strip():
            _keep(self._texts, event.utterance, event.text.strip())
        elif isinstance(event, EmotionEvent):
            _keep(self._arousal, event.utterance, event.arousal)
        elif isinstance(event, TurnSentimentEvent):
            texts = [self._texts.pop(u) for u in event.utterances if u in self._texts]
            voice = [self._arousal.pop(u) for u in event.utterances if u in self._arousal]
            if not texts:
                return
            judge = self._services.feelings
            assert judge is not None
            vector = await self._services.embed(" ".join(texts))
            arousal = sum(voice) / len(voice) if voice else None
            got = judge.judge(vector, event.probs, arousal)
            feeling = FeelingEvent(
                call_id=self.call_id, channel=event.channel, start=event.start, end=event.end,
                utterances=event.utterances, label=got.label, confidence=got.confidence,
                scores=got.scores,
            )  # fmt: skip
            await self._emit(feeling)
            await self._rules(feeling)

    def _similarity(self, text: str, examples: Sequence[str]) -> list[float]:
        if self._vector is None:  # a semantic rule on a channel we did not embed
            return [0.0] * len(examples)
        assert self._services.encoder is not None
        return [float(x) for x in self._services.encoder.examples(examples) @ self._vector]


KEEP = 16


def _keep(store: dict[int, T], key: int, value: T) -> None:
    store[key] = value
    while len(store) > KEEP:
        del store[next(iter(store))]
