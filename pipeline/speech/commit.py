"""Commit policy for partial transcripts of one utterance (LocalAgreement-n).

While someone speaks, the utterance's audio is re-transcribed as it grows. A word becomes
*committed* once the last `agreement` hypotheses agree on it (after the committed prefix, compared
case- and punctuation-blind); committed words never change afterwards, not even in the final
transcript. The rest of the newest hypothesis is the *unstable tail*, shown greyed, free to change.

At end of speech the final pass (with word timings) is reconciled with the committed prefix: the
committed words stand as they were, taking the final pass's timings where the two align, and the
final pass supplies everything after them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from pipeline.types import Word

_NON_WORD = re.compile(r"[^\w']+")


def normalize_word(word: str) -> str:
    """Comparison form of a word: lower case, no punctuation."""
    return _NON_WORD.sub("", word.lower())


@dataclass(frozen=True, slots=True)
class Partial:
    committed: tuple[str, ...]
    tail: tuple[str, ...]
    newly_committed: int


class CommitPolicy:
    """Feed successive hypotheses of one growing utterance; get committed prefix and tail."""

    def __init__(self, agreement: int = 2) -> None:
        if agreement < 2:
            raise ValueError("agreement needs at least two hypotheses")
        self.agreement = agreement
        self.committed: list[str] = []
        self._tails: deque[list[str]] = deque(maxlen=agreement)

    def update(self, hypothesis: Sequence[str]) -> Partial:
        words = [w for w in hypothesis if normalize_word(w)]
        tail = words[_prefix_end(self.committed, words) :]
        self._tails.append(tail)
        newly = 0
        if len(self._tails) == self.agreement:
            newly = _common_prefix_len(list(self._tails))
            if newly:
                self.committed.extend(tail[:newly])
                for stored in self._tails:
                    del stored[:newly]
        return Partial(tuple(self.committed), tuple(self._tails[-1]), newly)

    def finalize(self, final: Sequence[Word], start: float, end: float) -> list[Word]:
        """The final transcript: committed words unchanged, then the final pass's remainder.

        `start`/`end` bound the utterance, for timing committed words the final pass missed.
        """
        final = [w for w in final if normalize_word(w.text)]
        if not self.committed:
            return list(final)
        cut = _prefix_end(self.committed, [w.text for w in final])
        anchors = _align(self.committed, [w.text for w in final[:cut]])
        words: list[Word] = []
        for i, text in enumerate(self.committed):
            j = anchors.get(i)
            if j is not None:
                words.append(Word(text, final[j].start, final[j].end, final[j].probability))
            else:
                words.append(Word(text, -1.0, -1.0, 0.0))  # timed below
        rest = final[cut:]
        _fill_times(words, start, rest[0].start if rest else end)
        return words + rest


def _prefix_end(committed: Sequence[str], words: Sequence[str]) -> int:
    """Index in `words` just past the part that corresponds to `committed`."""
    if not committed:
        return 0
    a = [normalize_word(w) for w in committed]
    b = [normalize_word(w) for w in words]
    if b[: len(a)] == a:
        return len(a)
    matcher = SequenceMatcher(a=a, b=b, autojunk=False)
    last_a, last_b = -1, -1
    for block in matcher.get_matching_blocks():
        if block.size:
            last_a, last_b = block.a + block.size - 1, block.b + block.size - 1
    # words of `committed` after its last match are assumed to take as many words of `words`
    return min(len(b), last_b + 1 + (len(a) - 1 - last_a))


def _align(committed: Sequence[str], words: Sequence[str]) -> dict[int, int]:
    a = [normalize_word(w) for w in committed]
    b = [normalize_word(w) for w in words]
    pairs: dict[int, int] = {}
    for block in SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            pairs[block.a + k] = block.b + k
    return pairs


def _common_prefix_len(tails: Sequence[Sequence[str]]) -> int:
    n = 0
    for column in zip(*tails, strict=False):
        if len({normalize_word(w) for w in column}) != 1:
            break
        n += 1
    return n


def _fill_times(words: list[Word], start: float, end: float) -> None:
    """Give untimed words (start < 0) even shares of the gap between their timed neighbours."""
    i = 0
    while i < len(words):
        if words[i].start >= 0:
            i += 1
            continue
        j = i
        while j < len(words) and words[j].start < 0:
            j += 1
        left = words[i - 1].end if i else start
        right = words[j].start if j < len(words) else max(end, left)
        step = max(right - left, 0.0) / (j - i)
        for k in range(i, j):
            t0 = left + step * (k - i)
            words[k] = Word(words[k].text, round(t0, 3), round(t0 + step, 3), 0.0)
        i = j
