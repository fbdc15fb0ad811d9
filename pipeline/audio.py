"""The one unit of audio inside the pipeline, and the decoding that produces it.

Time is the sample clock: every chunk carries the index of its first sample at its sample rate,
counted from the start of the call. Wall-clock time is used only for latency metrics.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

PCM = npt.NDArray[np.int16]

PIPELINE_RATE = 16_000  # whisper and the VAD both run at 16 kHz


class Channel(enum.Enum):
    """A party of the call. The value is the channel index in interleaved stereo."""

    CUSTOMER = 0
    AGENT = 1

    @property
    def label(self) -> str:
        return self.name.lower()


class Encoding(enum.Enum):
    PCM16 = "pcm16"  # signed 16-bit little-endian
    MULAW = "mulaw"  # G.711 mu-law, 8 bits

    @property
    def sample_width(self) -> int:
        return 2 if self is Encoding.PCM16 else 1


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono PCM of one channel, starting at `start_sample` on the call's clock at `rate`."""

    call_id: str
    channel: Channel
    start_sample: int
    rate: int
    pcm: PCM

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.pcm)

    @property
    def start(self) -> float:
        return self.start_sample / self.rate

    @property
    def end(self) -> float:
        return self.end_sample / self.rate


def _mulaw_table() -> PCM:
    """G.711 mu-law to linear 16-bit (ITU-T G.711, as in the reference decoder)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


MULAW_TO_PCM16: PCM = _mulaw_table()


def encode_mulaw(pcm: PCM) -> bytes:
    """Linear 16-bit to G.711 mu-law (used by clients and tests that send mu-law)."""
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes())


def decode_interleaved(payload: bytes, encoding: Encoding, channels: int) -> PCM:
    """Bytes of interleaved frames to an int16 array of shape (frames, channels).

    The caller checks that `payload` holds whole frames.
    """
    if encoding is Encoding.MULAW:
        pcm = MULAW_TO_PCM16[np.frombuffer(payload, dtype=np.uint8)]
    else:
        pcm = np.frombuffer(payload, dtype="<i2").astype(np.int16)
    return pcm.reshape(-1, channels)


class Resampler:
    """Streaming resampler of one channel to 16 kHz that keeps sample-exact time.

    soxr holds back its filter delay, so after `flush()` exactly
    round(n_in * 16000 / rate) samples have come out, and output sample i sits at i / 16000 s.
    """

    def __init__(self, in_rate: int, out_rate: int = PIPELINE_RATE) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        )
        self.samples_in = 0
        self.samples_out = 0

    def push(self, pcm: PCM, last: bool = False) -> PCM:
        self.samples_in += len(pcm)
        if self._stream is None:
            out = pcm
        else:
            out = np.asarray(self._stream.resample_chunk(pcm, last=last), dtype=np.int16)
        self.samples_out += len(out)
        return out

    def flush(self) -> PCM:
        return self.push(np.zeros(0, dtype=np.int16), last=True)
