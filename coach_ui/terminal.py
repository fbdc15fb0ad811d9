"""A live two-speaker transcript in a terminal (the demo's view).

Finals print as lines with the latency the client saw; the newest interim stays on one status
line below them, its committed part plain and its unstable tail dimmed, when the output is a
terminal. Without a terminal interims are not shown.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

DIM, BOLD, RESET, CLEAR = "\x1b[2m", "\x1b[1m", "\x1b[0m", "\r\x1b[K"
SPEAKER = {"customer": "CUSTOMER", "agent": "AGENT   "}


def clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:04.1f}"


class TerminalTranscript:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self._status = False

    def show(self, event: dict[str, Any], latency: float | None) -> None:
        if event.get("type") != "transcript":
            return
        who = SPEAKER.get(event["channel"], event["channel"])
        if event["final"]:
            if not event["text"]:
                return self._clear()
            lag = f"  (final +{latency:.2f} s)" if latency is not None else ""
            at = f"[{clock(event['start'])}]"
            if self.tty:
                self._clear()
                line = f"{at} {BOLD}{who}{RESET}  {event['text']}{DIM}{lag}{RESET}"
            else:
                line = f"{at} {who}  {event['text']}{lag}"
            self.out.write(line + "\n")
        elif self.tty:
            width = shutil.get_terminal_size().columns
            text = (
                f"  ... {who.strip().lower()}: {event['committed']} {DIM}{event['unstable']}{RESET}"
            )
            self.out.write(CLEAR + text[: width + len(DIM) + len(RESET)])
            self._status = True
        self.out.flush()

    def _clear(self) -> None:
        if self._status:
            self.out.write(CLEAR)
            self._status = False
