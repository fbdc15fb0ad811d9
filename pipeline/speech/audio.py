"""The one unit of audio inside the pipeline, and the decoding that produces it.

Time is the sample clock: every chunk carries the index of its first sample at its sample rate,
counted from the start of the call. Wall-clock time is used only for latency metrics.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from pipeline.types import PCM, PIPELINE_RATE, Encoding


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
    """Streaming polyphase resampler of one channel to 16 kHz that keeps sample-exact time and
    gives the same samples however the input is chunked.

    The filter is scipy's `resample_poly` design (Kaiser-windowed sinc, 10 zero crossings per
    side), with taps in fixed point so every output sample is an exact integer sum: a call framed
    in 20 ms Twilio messages, 200 ms AudioHook frames or anything else reaches the VAD and the
    recognizer as the very same samples, hence the very same transcript. Output sample i sits at
    i / 16000 s; after `flush()` exactly round(n_in * 16000 / rate) samples have come out.
    """

    SHIFT = 24  # fixed-point taps: products of int16 samples sum exactly in int64

    def __init__(self, in_rate: int, out_rate: int = PIPELINE_RATE) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        g = math.gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g
        self.samples_in = 0
        self.samples_out = 0
        if self.up == self.down:
            return
        half = 10 * max(self.up, self.down)
        taps = signal.firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
        taps *= self.up
        self._delay = half  # the centre tap: output i lines up with input time i / out_rate
        k = -(-len(taps) // self.up)  # taps per phase
        phases = np.zeros((self.up, k))
        for p in range(self.up):
            row = taps[p :: self.up]
            phases[p, : len(row)] = row
        self._phases = np.round(phases * (1 << self.SHIFT)).astype(np.int64)
        self._k = np.arange(k)
        self._history = np.zeros(0, dtype=np.int64)
        self._first = 0  # input index of _history[0]

    def push(self, pcm: PCM, last: bool = False) -> PCM:
        self.samples_in += len(pcm)
        if self.up == self.down:
            self.samples_out += len(pcm)
            return pcm
        self._history = np.concatenate([self._history, pcm.astype(np.int64)])
        if last:
            end = round(self.samples_in * self.up / self.down)
        else:  # outputs whose newest input has arrived
            end = (self.samples_in * self.up - 1 - self._delay) // self.down + 1
        n = np.arange(self.samples_out, max(self.samples_out, end), dtype=np.int64)
        t = n * self.down + self._delay
        newest = t // self.up
        idx = newest[:, None] - self._k[None, :] - self._first
        valid = (idx >= 0) & (idx < len(self._history))
        x = np.where(valid, self._history[np.clip(idx, 0, max(0, len(self._history) - 1))], 0)
        acc = (self._phases[t % self.up] * x).sum(axis=1)
        out: PCM = np.clip((acc + (1 << (self.SHIFT - 1))) >> self.SHIFT, -32768, 32767).astype(
            np.int16
        )
        self.samples_out += len(n)
        # keep only the input a later output can still reach
        keep_from = (self.samples_out * self.down + self._delay) // self.up - len(self._k) + 1
        drop = max(0, min(keep_from - self._first, len(self._history)))
        self._history, self._first = self._history[drop:], self._first + drop
        return out

    def flush(self) -> PCM:
        return self.push(np.zeros(0, dtype=np.int16), last=True)
