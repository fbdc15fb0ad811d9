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

DIM, BOLD, RESET, CLEAR = "\x1b[2m", "\x1b[1m", "\x1b[0m", "\r\x1b[K"
SPEAKER = {"customer": "CUSTOMER", "agent": "AGENT   "}
INDENT = " " * 20


def clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:04.1f}"


class TerminalTranscript:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self._status = False
        self._mood: dict[tuple[str, int], list[str]] = {}

    def show(self, event: dict[str, Any], latency: float | None) -> None:
        kind = event.get("type")
        if kind == "transcript":
            self._transcript(event, latency)
        elif kind == "sentiment":
            self._note(event, f"{event['label']} {event['score']:+.2f}")
        elif kind == "emotion" and not event["baseline"]:
            self._note(event, f"{event['label']} voice")
        elif kind == "talk_stats" and event["channel"] == "agent":
            self._flush_mood(event, "")
        elif kind == "frustration" and event.get("utterance") is not None:
            self._flush_mood(event, _frustration(event))
        elif kind == "alert":
            mark = {"critical": "!!", "coaching": "->", "info": "--"}.get(event["severity"], "--")
            self._line(
                f"{INDENT}{BOLD}{mark} {event['severity'].upper()} {event['rule']}{RESET}: "
                f"{event['prompt']}"
            )
        elif kind == "suggestions" and event["items"]:
            best = event["items"][0]
            self._line(f"{INDENT}{DIM}?? suggest: {best['title']} ({best['score']:.2f}){RESET}")
        elif kind in ("talkover", "dead_air") and event["final"]:
            if kind == "talkover":
                text = f"talk-over: {event['channel']} cut in on {event['interrupted']}"
            else:
                text = f"dead air, waiting for the {event['channel']}"
            self._line(
                f"[{clock(event['start'])}] {DIM}-- {text} ({event['duration']:.1f} s){RESET}"
            )

    def _transcript(self, event: dict[str, Any], latency: float | None) -> None:
        who = SPEAKER.get(event["channel"], event["channel"])
        if event["final"]:
            if not event["text"]:
                self._clear()
                return
            lag = f"  (final +{latency:.2f} s)" if latency is not None else ""
            at = f"[{clock(event['start'])}]"
            self._line(f"{at} {BOLD}{who}{RESET}  {event['text']}{DIM}{lag}{RESET}")
        elif self.tty:
            width = shutil.get_terminal_size().columns
            text = (
                f"  ... {who.strip().lower()}: {event['committed']} {DIM}{event['unstable']}{RESET}"
            )
            self.out.write(CLEAR + text[: width + len(DIM) + len(RESET)])
            self._status = True
            self.out.flush()

    def _note(self, event: dict[str, Any], text: str) -> None:
        self._mood.setdefault((event["channel"], event["utterance"]), []).append(text)

    def _flush_mood(self, event: dict[str, Any], extra: str) -> None:
        key = (event["channel"], event.get("utterance") or 0)
        if event["type"] == "talk_stats":  # the agent's last final
            key = max((k for k in self._mood if k[0] == "agent"), default=key)
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


def _frustration(event: dict[str, Any]) -> str:
    text = f"frustration {event['score']:.2f} {event['level']}"
    if event["onset"]:
        reasons = ", ".join(
            r.get("phrase") or r["kind"] for r in event["reasons"][:3] if r["contribution"] > 0.1
        )
        text = f"{RESET}{BOLD}!! FRUSTRATED{RESET}{DIM} {text[12:]} ({reasons})"
    elif event["active"]:
        text += " (still frustrated)"
    return text
