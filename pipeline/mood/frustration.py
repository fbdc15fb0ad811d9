"""The customer's frustration score: an explainable fusion of evidence, with hysteresis.

Four kinds of evidence, each in [0, 1], each fading with time (half-life `half_life_s`):

- **sentiment** `S`: the recent negativity of the customer's turns, a weighted mean of
  `max(0, P(negative) - P(positive))` per turn. A turn's weight halves with every later customer
  turn and with every `half_life_s` of age, and the mean starts from one neutral pseudo-turn
  before the customer's first (its weight halves per turn too). So the last two turns dominate:
  one negative remark leaves the score elevated, even as the customer's first words; two in a
  row make it high; a positive turn dilutes the negativity without cancelling it, so a new
  complaint after a fix shows again quickly.
- **arousal** `A`: the same weighted mean over the customer's arousal (prosody against their own
  baseline blended with typical speech, `pipeline.mood.prosody`).
- **cues** `C`: phrases that signal frustration whatever the tone: an escalation request (0.7),
  cancellation intent (0.7), a repeated contact (0.5), exasperation said outright ("this is
  ridiculous", "i am fed up", "you people": 0.5); combined as `1 - prod(1 - w_i * decay_i)`.
  Exasperation counts only aimed at the matter (`this/that/it is ...`), so small talk ("the
  traffic was ridiculous") stays out; sarcasm markers ("just what i needed", "great, another
  ...", "great, i can't wait to be disappointed again") are cues of 0.5 too.

Sarcasm: positive words with a repeated-contact, exasperation or sarcasm cue in the same turn
read negative (`read_sarcasm`, applied where the sentiment is taken, so `sentiment` and
`turn_sentiment` events say it too): "oh wonderful, that is just perfect, third time now".
- **conversation** `V`: the customer talking over the agent (0.3 each) and dead air the customer
  is left in (0.15 each), combined the same way.

    score = 1 - (1 - 0.85 S) (1 - 0.85 A) (1 - C) (1 - V)

Words are only as good as their transcript: a turn's negativity and its cues count in proportion
to the recognizer's confidence in its words, `clip((mean word probability - 0.5) / 0.3, 0, 1)`
(a garbled turn, mean probability 0.6, counts a third; a clean one, 0.8 or more, fully).

Any one strong kind can raise the score alone (angry words in a calm voice; a raised voice with
polite words); weak evidence of several kinds adds up. A clearly positive customer turn
(sentiment score at least 0.5, "okay, thank you, i really appreciate that") halves all the
evidence gathered before it: the matter was resolved.

**Evidence rules** decide how severe an alert the score may raise (`allows`, with the rule in
words in `evidence`), whatever the score; `words` is the sentiment and cue parts together,
`1 - (1 - S') (1 - C)`:

- critical: strong words (`words` >= 0.5, with a cue or a recent turn at least 0.9 negative
  among them: a very negative turn, a manager request, a cancellation, exasperation said
  outright), or some words (>= 0.2) together with voice (arousal part >= 0.2) or conversation
  (talk-over or dead air part >= 0.15);
- coaching at most: words alone that are not strong, or strong only as mildly negative turns
  adding up (a calm customer describing a problem over several turns), conversation alone,
  voice with conversation but no words, or voice alone: a raised voice is worth a nudge to the
  agent, never a supervisor's red alert by itself;
- none: voice alone while the customer is still in their baseline period (mostly judged against
  typical speech, not yet against their own voice), or no evidence.

Hysteresis: frustration becomes *active* when the score reaches `on` (0.6) and stays active until
it falls below `off` (0.4), so it does not flicker. The update that makes it active is an
*onset*. Levels: low (< off), elevated, high (>= on). Every update carries its reasons: each
kind's contribution with the turns, phrases and signals behind it.

This module is longer than most: the cue patterns, the evidence rules and the scorer that
applies them are read together.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.mood.sentiment import Sentiment, transcript_trust
from pipeline.types import FrustrationReason

SENTIMENT_WEIGHT = 0.85
AROUSAL_WEIGHT = 0.85
RESOLVED_SCORE = 0.5  # a customer turn at least this positive halves the cues and signals

# A cue right after a negation ("i don't want to cancel my account") does not count.
_NEGATION = re.compile(r"\b(not|no|never|don't|do not|won't|wouldn't|no need to)\b[\w' ]{0,16}$")
CUES: dict[str, tuple[float, re.Pattern[str]]] = {
    "escalation": (
        0.7,
        re.compile(
            r"\b(speak|talk)(ing)? (to|with) (a |an |your |the |someone'?s? )?"
            r"(manager|supervisor|superior|boss|someone (else|senior|in charge))"
            r"|\b(get|put|transfer) me (to|through to) (a |your |the )?(manager|supervisor)"
            r"|\bescalate (this|it|my)|\b(file|make|lodge) a (formal )?complaint"
        ),
    ),
    "cancellation": (
        0.7,
        re.compile(
            r"\b(cancel|close|terminate|end) (my|the|this|our) "
            r"(whole )?(contract|account|subscription|service|membership|policy|plan|line)"
            r"|\b(switch|switching|go|going|move|moving) (over )?to (a |another |your )?"
            r"(competitor|different (provider|company|bank|carrier))"
            r"|\b(i'm|i am) (leaving|done with you|taking my business)"
        ),
    ),
    "repeat_contact": (
        0.5,
        re.compile(
            r"\b(second|third|fourth|fifth|sixth|tenth|\d+(st|nd|rd|th)) time\b"
            r"|\b(already|keep|kept) (called|calling|told|explained|gave|given|giving|been through)"
            r"|\bcalled (you |in )?(before|again|already|(\w+ )?times)"
            r"|\bevery (single )?time i call|\bi (have|'ve) been (calling|on the phone) (for|all)"
            r"|\b(chased|chasing|followed up on) (this|it|them|you)"
            r"|\bnobody (ever )?(calls|called|rings|rang|gets|got|emails|emailed) (me |us )?back"
            r"|\b(transferred|passed around|put on hold) (twice|again|three times|all day)"
            r"|\b(explain|explained|repeat|repeated) (everything|it all|this|myself) "
            r"(again|for the \w+ time)"
        ),
    ),
    "exasperation": (
        0.5,
        re.compile(
            r"\b(this|that|it)('s| is)( all)? (absolutely |completely |just |totally |frankly "
            r"|simply |really )?(ridiculous|unacceptable|useless|a joke|disgraceful|a disgrace"
            r"|outrageous|pathetic|appalling|not good enough|not acceptable|a farce"
            r"|a waste of (my )?time)\b"
            r"|\b(i'm|i am) (so |really |absolutely |getting )?(fed up|sick (of|and tired)"
            r"|done waiting|losing my patience|at the end of my tether|furious|livid|fuming)"
            r"|\b(run|running|ran) out of patience|\byou people\b|\bwhy on earth\b"
            r"|\bhow many (more )?times (do|have|must|will)\b"
        ),
    ),
    "sarcasm": (
        0.5,
        re.compile(
            r"\bjust what i (needed|wanted)\b|\bthanks? (you )?(a lot |so much )?for nothing\b"
            r"|\b(great|wonderful|brilliant|perfect|fantastic|lovely|marvellous|terrific|super)"
            r"[,.!]* (so )?(yet )?(another|more of the same|again)\b"
            r"|\b(great|wonderful|brilliant|perfect|fantastic|lovely|marvellous|amazing|terrific)"
            r"\b[^.?!]{0,60}\b(disappointed|let down|yet again|as usual|nobody|a waste of)\b"
        ),
    ),
}
# Positive words with one of these cues in the same breath are sarcasm ("oh wonderful, that is
# just perfect, third time now"): `read_sarcasm` reads them negative.
SARCASM_CUES = ("repeat_contact", "exasperation", "sarcasm")
SIGNAL_WEIGHTS = {"talkover": 0.3, "dead_air": 0.15}
# Evidence rules: what each kind must reach (its weighted part of the score) to count.
STRONG_WORDS = 0.5  # words (sentiment and cues together) that alone support a critical alert
SOME_WORDS = 0.2  # words that, with voice or conversation, support a critical alert
POINTED = 0.9  # a recent turn at least this negative (trusted) makes words pointed
VOICE_EVIDENCE = 0.2
TALK_EVIDENCE = 0.15


def find_cues(text: str) -> list[tuple[str, str]]:
    """(cue kind, matched phrase) for each cue kind found in `text`."""
    low = " ".join(text.lower().replace("\u2019", "'").split())
    out = []
    for kind, (_, pattern) in CUES.items():
        for m in pattern.finditer(low):
            if not _NEGATION.search(low[: m.start()]):
                out.append((kind, m.group(0).strip()))
                break
    return out


def read_sarcasm(sentiment: Sentiment, text: str) -> Sentiment:
    """The sentiment of `text`, read negative when its words are positive (score 0.3 or more)
    but it carries a frustration cue (a repeated contact, exasperation, a sarcasm marker): the
    positive and negative probabilities swap. A second signal beside the classifier, which
    reads sarcasm word by word."""
    if sentiment.score < 0.3 or not any(k in SARCASM_CUES for k, _ in find_cues(text)):
        return sentiment
    return Sentiment.from_probs((sentiment.positive, sentiment.neutral, sentiment.negative))


@dataclass(frozen=True, slots=True)
class FrustrationConfig:
    half_life_s: float = 30.0
    on: float = 0.6
    off: float = 0.4

    def __post_init__(self) -> None:
        if not 0 < self.off < self.on <= 1:
            raise ValueError("frustration thresholds need 0 < off < on <= 1")


@dataclass(frozen=True, slots=True)
class FrustrationUpdate:
    at: float  # seconds on the call's clock
    score: float
    level: str  # low | elevated | high
    active: bool
    onset: bool
    components: dict[str, float]
    reasons: tuple[FrustrationReason, ...]
    trigger: str  # what caused this update: turn | talkover | dead_air
    allows: str = "critical"  # the highest alert the evidence supports: critical|coaching|none
    evidence: str = ""  # the evidence rule behind `allows`

    def fields(self) -> dict[str, Any]:
        """What a `FrustrationEvent` says of it (the event's envelope carries the time)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "at"}


@dataclass
class _Item:
    at: float
    value: float
    utterance: int = 0
    detail: str = ""
    phrase: str = ""
    turn: int = 0  # the customer's turn count when it was added
    settled: bool = True  # arousal: measured after the speaker's baseline period


@dataclass
class _State:
    sentiment: list[_Item] = field(default_factory=list)
    arousal: list[_Item] = field(default_factory=list)
    cues: list[_Item] = field(default_factory=list)  # value: the cue's weight
    signals: list[_Item] = field(default_factory=list)


def evidence_rule(
    parts: dict[str, float], voice_settled: bool, pointed: bool = True
) -> tuple[str, str]:
    """The highest alert a frustration score may raise, by the kinds of evidence behind it, and
    the rule that decided, in words. `parts` are the weighted components of the score;
    `pointed`: the words include a cue or a clearly negative turn (`POINTED`), not only mildly
    negative turns adding up."""
    words = 1 - (1 - parts["sentiment"]) * (1 - parts["cues"])
    voice = parts["arousal"] >= VOICE_EVIDENCE
    talk = parts["conversation"] >= TALK_EVIDENCE
    if words >= STRONG_WORDS and pointed:
        return "critical", "strong words"
    if words >= SOME_WORDS and (voice or talk):
        return "critical", "words with " + ("voice" if voice else "conversation")
    if words >= STRONG_WORDS:
        return "coaching", "negative words without a cue or a clearly angry turn: coaching at most"
    if words >= SOME_WORDS:
        return "coaching", "words alone, not strong: coaching at most"
    if voice and talk:
        return "coaching", "voice and conversation without words: coaching at most"
    if talk:
        return "coaching", "conversation alone: coaching at most"
    if voice and voice_settled:
        return "coaching", "voice alone: coaching at most"
    if voice:
        return "none", "voice alone in the baseline period: no alert"
    return "none", "no evidence"


class FrustrationScorer:
    """The customer's frustration over one call. Feed turns and signals in time order."""

    def __init__(self, config: FrustrationConfig | None = None) -> None:
        self.config = config or FrustrationConfig()
        self._s = _State()
        self._turns = 0
        self._resolved_turn = 0
        self.active = False
        self.last: FrustrationUpdate | None = None

    def turn(
        self,
        utterance: int,
        end: float,
        text: str,
        sentiment: Sentiment | None,
        arousal: float | None,
        word_confidence: float | None = None,
        voice_settled: bool = True,
        continues: bool = False,
    ) -> FrustrationUpdate:
        """A customer's final, ending at `end`, with its sentiment and arousal (None when
        unknown), the mean probability of its words (None: unknown, trusted fully), and whether
        the customer's voice baseline had left its baseline period (`voice_settled`).

        A turn may come in several finals: with `continues`, this final extends the customer's
        current turn, and `sentiment`, `arousal` and `word_confidence` are the *whole turn's* so
        far, replacing what the turn's earlier finals said (`text` is the new final's, for its
        cues). So a turn is judged once, on everything it said, not piece by piece."""
        s = self._s
        if continues and self._turns:
            s.sentiment = [i for i in s.sentiment if i.turn != self._turns]
            s.arousal = [i for i in s.arousal if i.turn != self._turns]
        else:
            self._turns += 1
        trust = transcript_trust(word_confidence)
        if sentiment is not None:
            resolved = sentiment.score >= RESOLVED_SCORE and trust > 0.5
            if resolved and self._resolved_turn != self._turns:
                self._resolved_turn = self._turns  # once per turn, however many finals
                for item in (*s.sentiment, *s.arousal, *s.cues, *s.signals):
                    item.value /= 2
            negativity = max(0.0, -sentiment.score) * trust
            s.sentiment.append(_Item(end, negativity, utterance, turn=self._turns))
        if arousal is not None:
            s.arousal.append(
                _Item(end, arousal, utterance, turn=self._turns, settled=voice_settled)
            )
        for kind, phrase in find_cues(text):
            s.cues.append(_Item(end, CUES[kind][0] * trust, utterance, kind, phrase))
        return self._update(end, "turn")

    def signal(self, kind: str, at: float) -> FrustrationUpdate:
        """A conversation signal that concerns the customer (they talked over the agent, or the
        agent left them in dead air), at `at` seconds."""
        self._s.signals.append(_Item(at, SIGNAL_WEIGHTS[kind], detail=kind))
        return self._update(at, kind)

    # -----------------------------------------------------------------------------------------
    def _decay(self, item: _Item, now: float) -> float:
        return float(0.5 ** (max(0.0, now - item.at) / self.config.half_life_s))

    def _weight(self, item: _Item, now: float) -> float:
        """How much an item still counts: its decay, halved per later customer turn (items
        that belong to no turn, cues and signals, only decay)."""
        later = self._turns - item.turn if item.turn else 0
        return self._decay(item, now) * 0.5**later

    def _mean(self, items: Sequence[_Item], now: float) -> float:
        """Weighted mean: a turn's weight halves per later customer turn and per half-life; a
        neutral pseudo-turn (value 0) stands before the customer's first turn."""
        weights = [self._weight(i, now) for i in items]
        prior = 0.5**self._turns
        return sum(w * i.value for w, i in zip(weights, items, strict=True)) / (
            sum(weights) + prior
        )

    def _noisy_or(self, items: Sequence[_Item], now: float) -> float:
        keep = 1.0
        for i in items:
            keep *= 1 - i.value * self._decay(i, now)
        return 1 - keep

    def _update(self, now: float, trigger: str) -> FrustrationUpdate:
        s, cfg = self._s, self.config
        sent = self._mean(s.sentiment, now)
        arousal = self._mean(s.arousal, now)
        cues = self._noisy_or(s.cues, now)
        conv = self._noisy_or(s.signals, now)
        parts = {
            "sentiment": SENTIMENT_WEIGHT * sent,
            "arousal": AROUSAL_WEIGHT * arousal,
            "cues": cues,
            "conversation": conv,
        }
        keep = 1.0
        for v in parts.values():
            keep *= 1 - v
        score = round(1 - keep, 3)
        was = self.active
        if score >= cfg.on:
            self.active = True
        elif score < cfg.off:
            self.active = False
        level = "high" if score >= cfg.on else "elevated" if score >= cfg.off else "low"
        allows, evidence = evidence_rule(parts, self._voice_settled(now), self._pointed(now))
        update = FrustrationUpdate(
            at=now,
            score=score,
            level=level,
            active=self.active,
            onset=self.active and not was,
            components={k: round(v, 3) for k, v in parts.items()},
            reasons=self._reasons(parts, now),
            trigger=trigger,
            allows=allows,
            evidence=evidence,
        )
        self.last = update
        return update

    def _pointed(self, now: float) -> bool:
        """Whether the words include a cue or a clearly negative recent turn."""
        if self._noisy_or(self._s.cues, now) >= 0.05:
            return True
        return any(i.value >= POINTED for i in self._s.sentiment if self._weight(i, now) >= 0.25)

    def _voice_settled(self, now: float) -> bool:
        """Whether the arousal that counts now comes mostly from after the baseline period."""
        weights = [(self._weight(i, now), i) for i in self._s.arousal]
        settled = sum(w * i.value for w, i in weights if i.settled)
        return settled >= 0.5 * sum(w * i.value for w, i in weights) > 0

    def _reasons(self, parts: dict[str, float], now: float) -> tuple[FrustrationReason, ...]:
        s = self._s
        out: list[FrustrationReason] = []

        def recent(items: Sequence[_Item]) -> list[_Item]:
            return [i for i in items if self._weight(i, now) >= 0.25]

        graded = (  # kind, weight, items, a turn counts from, what the mean means
            ("sentiment", SENTIMENT_WEIGHT, s.sentiment, 0.2,
             "negative customer turns (recent negativity {:.2f})"),
            ("arousal", AROUSAL_WEIGHT, s.arousal, 0.33,
             "voice raised against the customer's baseline (arousal {:.2f})"),
        )  # fmt: skip
        for kind, weight, items, least, detail in graded:
            if parts[kind] > 0.01:
                turns = tuple(i.utterance for i in recent(items) if i.value >= least)
                text = detail.format(parts[kind] / weight)
                out.append(FrustrationReason(kind, parts[kind], text, turns))
        for item in recent(s.cues):
            out.append(
                FrustrationReason(
                    "cue",
                    item.value * self._decay(item, now),
                    item.detail.replace("_", " "),
                    (item.utterance,),
                    item.phrase,
                )
            )
        for item in recent(s.signals):
            detail = (
                "customer talked over the agent"
                if item.detail == "talkover"
                else "customer left in dead air"
            )
            out.append(FrustrationReason(item.detail, item.value * self._decay(item, now), detail))
        out.sort(key=lambda r: -r.contribution)
        return tuple(out)
