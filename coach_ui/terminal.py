"""A live two-speaker transcript with the customer's mood, in a terminal (the demo's view).

Finals print as lines with the latency the client saw. Under each final, once its mood is known,
a dimmed line shows its sentiment and tone and, for the customer, the frustration score (marked
when frustration becomes active, with its main reasons). Talk-overs and dead air print as they
end. The newest interim stays on one status line below, its committed part plain and its
unstable tail dimmed, when the output is a terminal; without a terminal interims are not shown.
Alerts print as they fire (severity, rule, the agent's prompt); knowledge suggestions print the
best entry's title and match score.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

from pipeline.types import (
    AlertEvent,
    Channel,
    EmotionEvent,
    FrustrationEvent,
    SentimentEvent,
    SignalEvent,
    SuggestionEvent,
    TalkStatsEvent,
    TranscriptEvent,
    parse_message,
)

DIM, BOLD, RESET, CLEAR = "\x1b[2m", "\x1b[1m", "\x1b[0m", "\r\x1b[K"
SPEAKER = {Channel.CUSTOMER: "CUSTOMER", Channel.AGENT: "AGENT   "}
INDENT = " " * 20


def clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:04.1f}"


class TerminalTranscript:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self._status = False
        self._mood: dict[tuple[Channel, int], list[str]] = {}

    def show(self, message: dict[str, Any], latency: float | None) -> None:
        """One message as the gateway sent it (events are parsed back into their classes;
        the native protocol's own messages, such as `started`, show nothing)."""
        if "v" not in message:
            return
        event = parse_message(message)
        if isinstance(event, TranscriptEvent):
            self._transcript(event, latency)
        elif isinstance(event, SentimentEvent):
            self._note(event, f"{event.label} {event.score:+.2f}")
        elif isinstance(event, EmotionEvent) and not event.baseline:
            self._note(event, f"{event.label} voice")
        elif isinstance(event, TalkStatsEvent) and event.channel is Channel.AGENT:
            self._flush_mood(event, "")
        elif isinstance(event, FrustrationEvent) and event.utterance is not None:
            self._flush_mood(event, _frustration(event))
        elif isinstance(event, AlertEvent):
            mark = {"critical": "!!", "coaching": "->", "info": "--"}.get(event.severity, "--")
            self._line(
                f"{INDENT}{BOLD}{mark} {event.severity.upper()} {event.rule}{RESET}: {event.prompt}"
            )
        elif isinstance(event, SuggestionEvent) and event.items:
            best = event.items[0]
            self._line(f"{INDENT}{DIM}?? suggest: {best.title} ({best.score:.2f}){RESET}")
        elif isinstance(event, SignalEvent) and event.final:
            who = event.channel.label
            if event.kind == "talkover":
                other = "agent" if event.channel is Channel.CUSTOMER else "customer"
                text = f"talk-over: {who} cut in on {other}"
            else:
                text = f"dead air, waiting for the {who}"
            duration = event.end - event.start
            self._line(f"[{clock(event.start)}] {DIM}-- {text} ({duration:.1f} s){RESET}")

    def _transcript(self, event: TranscriptEvent, latency: float | None) -> None:
        who = SPEAKER[event.channel]
        if event.final:
            if not event.text:
                self._clear()
                return
            lag = f"  (final +{latency:.2f} s)" if latency is not None else ""
            at = f"[{clock(event.start)}]"
            self._line(f"{at} {BOLD}{who}{RESET}  {event.text}{DIM}{lag}{RESET}")
        elif self.tty:
            width = shutil.get_terminal_size().columns
            name = who.strip().lower()
            text = f"  ... {name}: {event.committed} {DIM}{event.unstable}{RESET}"
            self.out.write(CLEAR + text[: width + len(DIM) + len(RESET)])
            self._status = True
            self.out.flush()

    def _note(self, event: SentimentEvent | EmotionEvent, text: str) -> None:
        self._mood.setdefault((event.channel, event.utterance), []).append(text)

    def _flush_mood(self, event: TalkStatsEvent | FrustrationEvent, extra: str) -> None:
        key = (event.channel, 0)
        if isinstance(event, FrustrationEvent):
            key = (event.channel, event.utterance or 0)
        else:  # the agent's last final
            key = max((k for k in self._mood if k[0] is Channel.AGENT), default=key, key=_order)
        parts = self._mood.pop(key, [])
        if extra:
            parts.append(extra)
        if parts:
            self._line(f"{INDENT}{DIM}{' · '.join(parts)}{RESET}")

    def _line(self, text: str) -> None:
        if not self.tty:
            text = text.replace(DIM, "").replace(BOLD, "").replace(RESET, "")
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def _clear(self) -> None:
        if self._status:
            self.out.write(CLEAR)
            self._status = False


def _order(key: tuple[Channel, int]) -> tuple[int, int]:
    return key[0].value, key[1]


def _frustration(event: FrustrationEvent) -> str:
    text = f"frustration {event.score:.2f} {event.level}"
    if event.onset:
        reasons = ", ".join(r.phrase or r.kind for r in event.reasons[:3] if r.contribution > 0.1)
        text = f"{RESET}{BOLD}!! FRUSTRATED{RESET}{DIM} {text[12:]} ({reasons})"
    elif event.active:
        text += " (still frustrated)"
    return text
