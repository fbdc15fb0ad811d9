"""A speaker's turn: their finals until the other party takes the floor.

A customer rarely says one thing in one final: a pause splits "i have been waiting since
monday" from "and nobody has called me back". Judged piece by piece, the neutral half and the
angry half disagree; judged as a turn, the whole text is read at once. `Turn` gathers a turn's
finals as they come; the mood stage judges the turn's text so far at each final (what the
frustration score uses) and, when the other party says something that is not a backchannel
(`TAKES_FLOOR_WORDS` words or more), publishes the turn's sentiment once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.mood.sentiment import Sentiment
from pipeline.types import TranscriptEvent

TAKES_FLOOR_WORDS = 3  # a final this long from the other party ends a turn; "mm-hmm" does not


@dataclass
class Turn:
    """A speaker's turn in progress: their finals until the other party takes the floor."""

    start: float
    end: float = 0.0
    utterances: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    arousals: list[float] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    sentiment: Sentiment | None = None

    def add(self, event: TranscriptEvent) -> None:
        self.end = event.end
        self.utterances.append(event.utterance)
        self.texts.append(event.text.strip())
        self.probabilities += [w.probability for w in event.words if w.probability > 0]

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    @property
    def arousal(self) -> float | None:
        return sum(self.arousals) / len(self.arousals) if self.arousals else None

    @property
    def confidence(self) -> float | None:
        """The mean probability of the turn's words (None: the recognizer gave none)."""
        return mean_or_none(self.probabilities)


def word_confidence(event: TranscriptEvent) -> float | None:
    """The mean probability of a final's words (None: the recognizer gave none)."""
    return mean_or_none([w.probability for w in event.words if w.probability > 0])


def mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
