"""Voice activity segmentation of one channel: a synchronous state machine over 16 kHz PCM.

webrtcvad judges 30 ms frames as voiced or not; the segmenter turns those judgements into
utterances. Speech starts once `min_speech_ms` of voiced frames have arrived without a silence of
`hangover_ms` between them (shorter blips are dropped); it ends after `hangover_ms` of silence.
Each utterance gets `pad_ms` of audio before its first voiced frame and after its last, and is cut
at `max_utterance_s` so that it always fits whisper's 30 s window.

Events carry sample indexes on the channel's 16 kHz clock, counted from the start of the call.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import webrtcvad

from pipeline.types import PCM, PIPELINE_RATE, VadEvent, VadEventKind

FRAME_MS = 30
FRAME = PIPELINE_RATE * FRAME_MS // 1000  # 480 samples


@dataclass(frozen=True, slots=True)
class VadConfig:
    aggressiveness: int = 2  # webrtcvad mode 0 (least) .. 3 (most aggressive filtering)
    min_speech_ms: int = 150
    hangover_ms: int = 500
    pad_ms: int = 300
    max_utterance_s: float = 20.0

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError("VAD aggressiveness must be 0, 1, 2 or 3")
        if self.min_speech_ms < FRAME_MS or self.hangover_ms < FRAME_MS:
            raise ValueError(f"min speech and hang-over must be at least {FRAME_MS} ms")
        if not 1.0 <= self.max_utterance_s <= 29.0:
            raise ValueError("max utterance must be between 1 and 29 s (whisper's window is 30 s)")


class _State(enum.Enum):
    SILENCE = 0
    PENDING = 1  # voiced frames seen, not yet min_speech_ms of them
    SPEECH = 2


FrameClassifier = Callable[[bytes], bool]


def webrtc_classifier(aggressiveness: int) -> FrameClassifier:
    vad = webrtcvad.Vad(aggressiveness)

    def is_speech(frame: bytes) -> bool:
        return bool(vad.is_speech(frame, PIPELINE_RATE))

    return is_speech


class VadSegmenter:
    """Push 16 kHz int16 PCM in any sizes, get START / AUDIO / END events back."""

    def __init__(self, config: VadConfig, classifier: FrameClassifier | None = None) -> None:
        self.config = config
        self._is_speech = classifier or webrtc_classifier(config.aggressiveness)
        self._pad = PIPELINE_RATE * config.pad_ms // 1000
        self._min_voiced = -(-config.min_speech_ms // FRAME_MS)  # frames, rounded up
        self._hangover = -(-config.hangover_ms // FRAME_MS)
        self._max_len = int(config.max_utterance_s * PIPELINE_RATE)
        self._pending = np.zeros(0, dtype=np.int16)  # samples not yet a whole frame
        self._pos = 0  # index of the next whole frame's first sample
        self._history: deque[PCM] = deque()  # recent frames, for the leading pad and PENDING
        self._history_start = 0
        self._state = _State.SILENCE
        self._candidate_start = 0
        self._voiced = 0
        self._silent_run = 0
        self._utt_start = 0
        self._last_voiced_end = 0
        self._emitted_to = 0  # utterance audio emitted up to this sample

    @property
    def in_speech(self) -> bool:
        return self._state is _State.SPEECH

    @property
    def voiced_until(self) -> int:
        """End of the last voiced frame seen (of the utterance in progress, while in speech)."""
        return self._last_voiced_end

    @property
    def position(self) -> int:
        """Samples consumed into whole frames so far."""
        return self._pos

    def push(self, pcm: PCM) -> list[VadEvent]:
        events: list[VadEvent] = []
        data = np.concatenate((self._pending, pcm)) if len(self._pending) else pcm
        n_frames = len(data) // FRAME
        for i in range(n_frames):
            self._frame(data[i * FRAME : (i + 1) * FRAME], events)
        self._pending = data[n_frames * FRAME :].copy()
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: close an utterance in progress (a client that vanished mid-sentence)."""
        events: list[VadEvent] = []
        if self._state is _State.SPEECH:
            tail = self._pending
            if len(tail):
                events.append(VadEvent(VadEventKind.AUDIO, self._pos, tail.copy()))
            events.append(
                VadEvent(VadEventKind.END, self._pos + len(tail), voiced=self._last_voiced_end)
            )
            self._state = _State.SILENCE
        self._pending = np.zeros(0, dtype=np.int16)
        return events

    def _frame(self, frame: PCM, events: list[VadEvent]) -> None:
        start = self._pos
        self._pos += FRAME
        voiced = self._is_speech(frame.tobytes())
        self._remember(frame, start)

        if self._state is _State.SILENCE:
            if voiced:
                self._state = _State.PENDING
                self._candidate_start = start
                self._voiced = 1
                self._silent_run = 0
                self._last_voiced_end = start + FRAME
        elif self._state is _State.PENDING:
            if voiced:
                self._voiced += 1
                self._silent_run = 0
                self._last_voiced_end = start + FRAME
            else:
                self._silent_run += 1
                if self._silent_run >= self._hangover:
                    self._state = _State.SILENCE
        else:  # SPEECH
            if voiced:
                self._silent_run = 0
                self._last_voiced_end = start + FRAME
            else:
                self._silent_run += 1
            self._emit_audio(events)
            if self._silent_run >= self._hangover:
                end = min(self._last_voiced_end + self._pad, self._pos)
                events.append(VadEvent(VadEventKind.END, end, voiced=self._last_voiced_end))
                self._state = _State.SILENCE
            elif self._pos - self._utt_start >= self._max_len:
                events.append(
                    VadEvent(VadEventKind.END, self._pos, forced=True, voiced=self._last_voiced_end)
                )
                self._begin(self._pos, events, voiced, forced=True)
            return

        if self._state is _State.PENDING and self._voiced >= self._min_voiced:
            self._begin(max(self._candidate_start - self._pad, self._history_start), events, True)

    def _begin(
        self, utt_start: int, events: list[VadEvent], voiced: bool, forced: bool = False
    ) -> None:
        if not voiced:  # a forced cut landed on silence: wait for the next voiced frames
            self._state = _State.SILENCE
            return
        self._state = _State.SPEECH
        self._utt_start = utt_start
        self._emitted_to = utt_start
        self._silent_run = 0
        first_voiced = utt_start if forced else self._candidate_start
        events.append(VadEvent(VadEventKind.START, utt_start, forced=forced, voiced=first_voiced))
        self._emit_audio(events)

    def _emit_audio(self, events: list[VadEvent]) -> None:
        if self._pos <= self._emitted_to:
            return
        audio = self._slice(self._emitted_to, self._pos)
        events.append(VadEvent(VadEventKind.AUDIO, self._emitted_to, audio))
        self._emitted_to = self._pos

    def _remember(self, frame: PCM, start: int) -> None:
        """Keep the frames that a START may still reach back to."""
        self._history.append(frame)
        if self._state is _State.SPEECH:
            keep_from = self._emitted_to
        elif self._state is _State.PENDING:
            keep_from = self._candidate_start - self._pad
        else:  # this frame may become a candidate start
            keep_from = start - self._pad
        while self._history and self._history_start + FRAME <= keep_from:
            self._history.popleft()
            self._history_start += FRAME

    def _slice(self, a: int, b: int) -> PCM:
        data = np.concatenate(self._history)
        return data[a - self._history_start : b - self._history_start].copy()
