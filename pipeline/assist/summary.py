"""A short extractive summary of a finished call: a few of its own utterances, in call order.

Sentence scoring after Luhn (1958): content words (not stop words, at least three letters) that
recur across the call are its topic words; an utterance scores by the density of topic words it
holds. The customer's first substantive turn (why they called) is always kept, and utterances that
fired a critical alert are boosted, so the summary says what the call was about, what went wrong
and how it ended. Plain code: no model, no network.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.types import AlertEvent, TranscriptEvent

STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just let me more most my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves yes okay ok um uh
    hi hello thank thanks please sure well really right get got going want know like also one
    today day call calling help""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class Line:
    channel: str
    utterance: int
    start: float
    text: str
    boost: float = 0.0  # added to the score (alerts)


def summarize(lines: Sequence[Line], size: int = 4) -> list[Line]:
    """The `size` most telling utterances, in call order."""
    words = [[w for w in _WORD.findall(x.text.lower()) if len(w) > 2 and w not in STOP]
             for x in lines]  # fmt: skip
    counts = Counter(w for ws in words for w in set(ws))
    topic = {w for w, n in counts.items() if n >= 2}
    scores: list[float] = []
    for line, ws in zip(lines, words, strict=True):
        hits = sum(w in topic for w in ws)
        scores.append(hits * hits / max(len(ws), 1) + line.boost if ws else line.boost)
    keep: set[int] = set()
    first = next(
        (i for i, (x, ws) in enumerate(zip(lines, words, strict=True))
         if x.channel == "customer" and len(ws) >= 2),
        None,
    )  # fmt: skip
    if first is not None:
        keep.add(first)
    for i in sorted(range(len(lines)), key=lambda i: (-scores[i], i)):
        if len(keep) >= size:
            break
        if scores[i] > 0:
            keep.add(i)
    return [lines[i] for i in sorted(keep)]


def call_summary(
    finals: Sequence[TranscriptEvent], alerts: Sequence[AlertEvent], size: int = 4
) -> list[dict[str, Any]]:
    """Summary lines (their wire form) of a call from its final transcripts and its alerts."""
    critical = {
        (a.channel.label, e.utterance)
        for a in alerts
        if a.severity == "critical"
        for e in a.evidence
        if e.utterance is not None
    }
    lines = [
        Line(f.channel.label, f.utterance, round(f.start, 3), f.text,
             1.0 if (f.channel.label, f.utterance) in critical else 0.0)
        for f in finals
        if f.text.strip()
    ]  # fmt: skip
    return [
        {"channel": x.channel, "utterance": x.utterance, "start": x.start, "text": x.text}
        for x in summarize(lines, size)
    ]
