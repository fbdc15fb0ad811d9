"""Descriptive emotion labels ("feelings") of a customer's turn, zero-shot.

Beyond the three sentiment classes and the voice's calm / tense / agitated, a supervisor wants to
know *how* the customer feels: angry, frustrated, anxious, confused, disappointed, satisfied,
relieved, or neutral. No labelled data of that kind ships, so the judge is zero-shot and plain:

1. **Words**: the turn's sentence embedding (the assist stage's encoder, all-MiniLM-L6-v2 by
   default) against a few written example lines per feeling; a feeling's similarity is the
   mean of its two closest examples.
2. **Valence**: the turn's calibrated sentiment decides how much each group of feelings may
   win: the negative feelings share P(negative), satisfied and relieved share P(positive),
   neutral takes P(neutral). So "i am so worried" and "i'm so relieved" never swap sides on
   similar wording. Within the negative group, frustrated starts with the largest share
   (0.45; angry, anxious and disappointed 0.15, confused 0.1): on a service line most negative
   turns are frustration.
3. **Voice**: a raised voice (arousal at least 0.5 against the speaker's own baseline) favours
   angry over frustrated and disappointed; a calm one (under 0.2) the reverse.

    p(f) = softmax_f( similarity_f / 0.05 + log valence_f + voice_f )

`confidence` is the winner's probability. Evaluated with `python -m eval.feelings` on the
held-out test rows of the project's labelled utterances whose writing style names a feeling
(figures in the README); disappointed has no such rows and is not measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

EXAMPLES: dict[str, tuple[str, ...]] = {
    "angry": (
        "this is outrageous, i am absolutely furious",
        "i am so angry with your company right now",
        "don't you dare put me on hold again",
        "you lot are a disgrace, i have had it with you",
    ),
    "frustrated": (
        "it still doesn't work after everything i have tried",
        "this keeps happening and nobody ever fixes it",
        "i have been going round in circles for weeks",
        "why is this so difficult, i just want it sorted",
        "i have been waiting three weeks and still nothing",
        "you charged me twice and nobody has done anything about it",
    ),
    "anxious": (
        "i am really worried, what happens if the payment bounces",
        "i'm nervous that i will lose my booking",
        "please, i'm scared i will run out before it arrives",
        "is my money safe, i'm panicking a bit",
    ),
    "confused": (
        "sorry, i don't understand what you mean",
        "i'm confused, which option am i supposed to pick",
        "wait, so do i pay now or later, i'm lost",
        "that doesn't make sense to me, can you explain it again",
    ),
    "disappointed": (
        "i expected better from you, to be honest",
        "that's a shame, i was really hoping you could help",
        "i feel let down after being a customer for so long",
        "oh well, i suppose there is nothing you can do then",
    ),
    "satisfied": (
        "great, that's exactly what i needed, thank you",
        "perfect, that works for me",
        "you have been very helpful, i appreciate it",
        "lovely, thanks so much for sorting that out",
    ),
    "relieved": (
        "oh thank goodness, what a relief",
        "phew, i was so worried, thank you",
        "that's a weight off my mind",
        "oh finally, now i can relax",
    ),
    "neutral": (
        "my account number is four four one two",
        "yes, the address is twelve high street",
        "i'm calling to update my payment details",
        "can you tell me when the engineer is coming",
    ),
}
FEELINGS = tuple(EXAMPLES)
# How P(negative) is shared among the negative feelings before the words are heard: on a
# service line most negative turns are frustration (a base rate, not learnt from data).
NEGATIVE = {"angry": 0.15, "frustrated": 0.45, "anxious": 0.15, "confused": 0.1,
            "disappointed": 0.15}  # fmt: skip
POSITIVE = ("satisfied", "relieved")
TEMPERATURE = 0.05
RAISED, CALM = 0.5, 0.2  # voice arousal bounds
VOICE = math.log(2.0)  # how much a raised or calm voice moves angry against its neighbours


@dataclass(frozen=True, slots=True)
class Feeling:
    label: str
    confidence: float
    scores: dict[str, float]  # every feeling's probability


class FeelingJudge:
    """Feelings of turns from their embedding, sentiment and voice. Plain and synchronous."""

    def __init__(self, examples: Vectors | Mapping[str, Vectors]) -> None:
        """`examples`: each feeling's example embeddings (unit length), as `EXAMPLES` lists them:
        a mapping by feeling, or one array of all of them in that order."""
        if isinstance(examples, Mapping):
            self._examples = {f: np.asarray(examples[f]) for f in FEELINGS}
        else:
            at, self._examples = 0, {}
            for f in FEELINGS:
                n = len(EXAMPLES[f])
                self._examples[f] = np.asarray(examples[at : at + n])
                at += n

    @staticmethod
    def all_examples() -> list[str]:
        return [text for f in FEELINGS for text in EXAMPLES[f]]

    def judge(
        self, vector: Vectors, probs: Sequence[float], arousal: float | None = None
    ) -> Feeling:
        """`vector`: the turn's unit-length embedding; `probs`: its sentiment (negative,
        neutral, positive); `arousal`: its voice against the speaker's baseline, if known."""
        neg, neu, pos = (max(float(p), 1e-6) for p in probs)
        valence = {f: neg * share for f, share in NEGATIVE.items()}
        valence |= {f: pos / len(POSITIVE) for f in POSITIVE}
        valence["neutral"] = neu
        logits = {}
        for f in FEELINGS:
            sims = np.sort(self._examples[f] @ vector)[-2:]
            logits[f] = float(sims.mean()) / TEMPERATURE + math.log(valence[f])
        if arousal is not None and arousal >= RAISED:
            logits["angry"] += VOICE
            logits["frustrated"] -= VOICE / 2
            logits["disappointed"] -= VOICE / 2
        elif arousal is not None and arousal < CALM:
            logits["angry"] -= VOICE
        top = max(logits.values())
        exp = {f: math.exp(v - top) for f, v in logits.items()}
        total = sum(exp.values())
        scores = {f: round(v / total, 3) for f, v in exp.items()}
        label = max(scores, key=scores.__getitem__)
        return Feeling(label, scores[label], scores)
