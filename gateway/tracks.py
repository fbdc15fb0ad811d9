"""Two parties that arrive apart, made into one stereo stream by sample position.

Twilio sends each track in its own messages, stamped with a timestamp; Asterisk AudioSocket sends
each leg on its own connection. `TrackAligner` places every chunk at its position (or right after
the track's previous chunk), holds a hole open for packets that arrive late and out of order, and
once the other side is `hold_s` ahead treats the hole as lost audio: silence, counted. A track
that is absent or has ended is silence without holding anything up.

Positions come from the client (Twilio's timestamps, WebRTC's RTP time), so they are bounded
before they size anything: a chunk placed more than `max_ahead_s` past what was already emitted
is a `TrackJump`, for the adapter to refuse or to re-anchor, never a buffer of silence up to it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pipeline.types import PCM


class TrackJump(ValueError):
    """A chunk placed too far ahead of the call (a client-supplied time that would size memory)."""


class TrackAligner:
    def __init__(
        self,
        rate: int,
        hold_s: float = 0.4,
        channels: int = 2,
        tracks: Iterable[int] | None = None,
        max_ahead_s: float = 10.0,
    ) -> None:
        """`tracks`: the channels expected to send (default all); others are silence."""
        self.rate = rate
        self.hold = int(hold_s * rate)
        self.max_ahead = int(max_ahead_s * rate)
        self.channels = channels
        self._data = np.zeros((0, channels), dtype=np.int16)
        self._filled = np.zeros((0, channels), dtype=bool)
        self.base = 0  # sample position of _data[0]: everything before was emitted
        self._next = [0] * channels  # where a chunk without a position goes
        expected = set(range(channels) if tracks is None else tracks)
        self._live = [c in expected for c in range(channels)]  # expected or sending, not ended
        self.gap_samples = 0  # holes emitted as silence
        self.late_samples = 0  # audio that came after its place was emitted: dropped

    def put(self, channel: int, pcm: PCM, start: int | None = None) -> None:
        """A chunk of one track; `start`: its first sample's position (None: after the last)."""
        if start is None:
            start = self._next[channel]
        end = start + len(pcm)
        if end - self.base > self.max_ahead:
            ahead, most = (end - self.base) / self.rate, self.max_ahead / self.rate
            raise TrackJump(f"audio placed {ahead:.0f} s ahead of the call (at most {most:.0f} s)")
        self._next[channel] = max(self._next[channel], end)
        self._live[channel] = True
        if end <= self.base:
            self.late_samples += len(pcm)
            return
        if start < self.base:
            self.late_samples += self.base - start
            pcm, start = pcm[self.base - start :], self.base
        self._grow(end - self.base)
        at = start - self.base
        self._data[at : at + len(pcm), channel] = pcm
        self._filled[at : at + len(pcm), channel] = True

    def end(self, channel: int) -> None:
        """The track is over (a leg hung up): silence from now on, nothing waits for it."""
        self._live[channel] = False

    def join(self, channel: int) -> int:
        """A track that starts now (a leg that connects late) goes on from the earliest position
        not yet emitted: its start, if the others were held for it (an expected track), else
        where the call is. Returns that position."""
        self._next[channel] = max(self._next[channel], self.base)
        return self._next[channel]

    def pop(self) -> PCM:
        """The stereo frames that are ready: every live track has them, or waited long enough."""
        if not len(self._data):
            return self._data[:0]
        ready = [self._contiguous(c) for c in range(self.channels) if self._live[c]]
        if not ready:
            return self._take(0)
        n = min(ready)
        ahead = max(self._next) - self.base
        return self._take(max(n, ahead - self.hold))

    def take_lost(self) -> float:
        """Seconds of holes filled with silence and of late audio dropped since the last call."""
        lost = (self.gap_samples + self.late_samples) / self.rate
        self.gap_samples = self.late_samples = 0
        return lost

    def flush(self) -> PCM:
        """Everything buffered, holes as silence (the call ended)."""
        return self._take(len(self._data))

    def _contiguous(self, channel: int) -> int:
        holes = np.flatnonzero(~self._filled[:, channel])
        return int(holes[0]) if len(holes) else len(self._data)

    def _take(self, n: int) -> PCM:
        n = max(0, min(n, len(self._data)))
        out = self._data[:n]
        for c in range(self.channels):  # a live track's holes, an ended one's up to its end
            reached = n if self._live[c] else min(n, max(0, self._next[c] - self.base))
            self.gap_samples += int((~self._filled[:reached, c]).sum())
        self._data, self._filled = self._data[n:], self._filled[n:]
        self.base += n
        return out

    def _grow(self, size: int) -> None:
        if size > len(self._data):
            more = size - len(self._data)
            pad = np.zeros((more, self.channels), dtype=np.int16)
            self._data = np.concatenate([self._data, pad])
            self._filled = np.concatenate([self._filled, np.zeros((more, self.channels), bool)])
