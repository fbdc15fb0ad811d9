"""Conversation signals from the two channels' voice activity: a synchronous state machine.

Fed with each channel's VAD events (their `voiced` samples bound the speech itself, without the
VAD's padding) and, after every stretch of audio, the position reached:

- **talk-over**: both parties speaking at once for at least `talkover_min_s`. Raised while it
  goes on (`final: false`, once) and again when it ends (`final: true`, with its duration). Its
  channel is the party who started talking second (the interrupter); a tie counts against the
  customer.
- **dead air**: neither party speaking for at least `dead_air_min_s`, counted from the end of the
  last voiced frame (or the call's start). Raised once it passes the threshold and again when
  someone speaks or the call ends. Its channel is the party expected to speak: the one who did
  not speak last (the agent when nobody has spoken yet).
- **talk statistics**: each party's speaking time and share, words and words per minute (words
  come from final transcripts), interruptions, total talk-over and dead air.

All times are samples at `rate` on the call's clock; no wall clock anywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.types import PIPELINE_RATE, Channel, VadEvent, VadEventKind


class SignalKind(enum.Enum):
    TALKOVER = "talkover"
    DEAD_AIR = "dead_air"


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    talkover_min_s: float = 1.0
    dead_air_min_s: float = 5.0
    rate: int = PIPELINE_RATE


@dataclass(frozen=True, slots=True)
class Signal:
    kind: SignalKind
    channel: Channel  # talk-over: the interrupter; dead air: the party expected to speak
    start: int  # samples
    end: int
    final: bool

    def seconds(self, rate: int) -> tuple[float, float]:
        return self.start / rate, self.end / rate


@dataclass(frozen=True, slots=True)
class PartyStats:
    talk_s: float
    share: float
    words: int
    wpm: float
    interruptions: int


@dataclass(frozen=True, slots=True)
class TalkStats:
    at_s: float
    parties: dict[Channel, PartyStats]
    overlap_s: float
    dead_air_s: float


def _other(channel: Channel) -> Channel:
    return Channel.AGENT if channel is Channel.CUSTOMER else Channel.CUSTOMER


@dataclass
class _Party:
    speaking: bool = False
    since: int = 0  # first voiced sample of the speech in progress
    last_end: int = -1  # end of the last finished speech (-1: none yet)
    talk: int = 0  # samples of finished speech
    words: int = 0
    interruptions: int = 0
    forced_end: int | None = None  # a max-length cut, resumed by the forced START after it


class ConversationTracker:
    def __init__(self, config: ConversationConfig | None = None) -> None:
        self.config = config or ConversationConfig()
        rate = self.config.rate
        self._talkover_min = round(self.config.talkover_min_s * rate)
        self._dead_air_min = round(self.config.dead_air_min_s * rate)
        self._parties = {c: _Party() for c in Channel}
        self._position = 0
        self._last_speaker: Channel | None = None
        self._overlap_start: int | None = None  # both speaking since this sample
        self._overlap_raised = False
        self._overlap_total = 0
        self._silence_raised = False
        self._dead_air_total = 0

    # --- input ---------------------------------------------------------------------------------
    def vad(self, channel: Channel, events: Iterable[VadEvent]) -> list[Signal]:
        """One channel's VAD events, in order. Returns signals that these events close."""
        out: list[Signal] = []
        p = self._parties[channel]
        for ev in events:
            if ev.kind is VadEventKind.START:
                if ev.forced and p.forced_end is not None:
                    p.speaking, p.forced_end = True, None  # the same speech goes on
                    continue
                self._flush_forced(p)
                out += self._close_silence(ev.voiced)
                p.speaking, p.since = True, ev.voiced
                self._last_speaker = channel
                other = self._parties[_other(channel)]
                if other.speaking:
                    self._overlap_start = max(p.since, other.since)
            elif ev.kind is VadEventKind.END and p.speaking:
                if ev.forced:
                    p.forced_end = ev.voiced
                    continue
                out += self._end_speech(channel, p, ev.voiced)
        return out

    def add_words(self, channel: Channel, words: int) -> None:
        self._parties[channel].words += words

    def advance(self, position: int, voiced_until: Mapping[Channel, int]) -> list[Signal]:
        """Audio has been seen up to `position`; `voiced_until` gives, for each party speaking,
        the end of their last voiced frame. Returns signals raised by the passing time."""
        self._position = max(self._position, position)
        out: list[Signal] = []
        for p in self._parties.values():
            if p.forced_end is not None and not p.speaking:
                self._flush_forced(p)
        a, b = self._parties[Channel.CUSTOMER], self._parties[Channel.AGENT]
        if self._overlap_start is not None and not self._overlap_raised:
            now = min(
                voiced_until.get(Channel.CUSTOMER, position),
                voiced_until.get(Channel.AGENT, position),
            )
            if now - self._overlap_start >= self._talkover_min:
                self._overlap_raised = True
                out.append(
                    Signal(
                        SignalKind.TALKOVER, self._interrupter(), self._overlap_start, now, False
                    )
                )
        if not a.speaking and not b.speaking and not self._silence_raised:
            start = self._silence_start()
            if self._position - start >= self._dead_air_min:
                self._silence_raised = True
                out.append(
                    Signal(SignalKind.DEAD_AIR, self._expected(), start, self._position, False)
                )
        return out

    def close(self, position: int) -> list[Signal]:
        """End of the call: close what is still open."""
        self._position = max(self._position, position)
        out: list[Signal] = []
        for channel, p in self._parties.items():
            self._flush_forced(p)
            if p.speaking:
                out += self._end_speech(channel, p, self._position)
        out += self._close_silence(self._position)
        return out

    # --- output --------------------------------------------------------------------------------
    def stats(self) -> TalkStats:
        rate = self.config.rate
        talk = {}
        for channel, p in self._parties.items():
            current = max(0, self._position - p.since) if p.speaking else 0
            talk[channel] = (p.talk + current) / rate
        total = sum(talk.values())
        parties = {}
        for channel, p in self._parties.items():
            t = talk[channel]
            parties[channel] = PartyStats(
                talk_s=round(t, 2),
                share=round(t / total, 3) if total else 0.0,
                words=p.words,
                wpm=round(p.words / (t / 60), 1) if t > 0 else 0.0,
                interruptions=p.interruptions,
            )
        return TalkStats(
            at_s=round(self._position / rate, 3),
            parties=parties,
            overlap_s=round(self._overlap_total / rate, 2),
            dead_air_s=round(self._dead_air_total / rate, 2),
        )

    # --- internals -----------------------------------------------------------------------------
    def _interrupter(self) -> Channel:
        a, b = self._parties[Channel.CUSTOMER], self._parties[Channel.AGENT]
        return Channel.AGENT if b.since > a.since else Channel.CUSTOMER

    def _expected(self) -> Channel:
        return Channel.AGENT if self._last_speaker is None else _other(self._last_speaker)

    def _silence_start(self) -> int:
        return max(0, *(p.last_end for p in self._parties.values()))

    def _flush_forced(self, p: _Party) -> None:
        """A max-length cut that no forced START resumed was a real end."""
        if p.forced_end is not None:
            channel = next(c for c, q in self._parties.items() if q is p)
            end, p.forced_end = p.forced_end, None
            self._end_speech(channel, p, end)

    def _end_speech(self, channel: Channel, p: _Party, end: int) -> list[Signal]:
        out: list[Signal] = []
        end = max(end, p.since)
        if self._overlap_start is not None:
            overlap = end - self._overlap_start
            if overlap >= self._talkover_min:
                interrupter = self._interrupter()
                self._parties[interrupter].interruptions += 1
                self._overlap_total += overlap
                out.append(Signal(SignalKind.TALKOVER, interrupter, self._overlap_start, end, True))
            elif overlap > 0:
                self._overlap_total += overlap
            self._overlap_start = None
            self._overlap_raised = False
        p.talk += end - p.since
        p.speaking = False
        p.last_end = end
        return out

    def _close_silence(self, until: int) -> list[Signal]:
        if not self._silence_raised:
            return []
        self._silence_raised = False
        start = self._silence_start()
        self._dead_air_total += until - start
        return [Signal(SignalKind.DEAD_AIR, self._expected(), start, until, True)]
