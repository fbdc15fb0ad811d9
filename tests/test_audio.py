import numpy as np
import pytest

from pipeline.speech.audio import MULAW_TO_PCM16, Resampler, decode_interleaved, encode_mulaw
from pipeline.types import Encoding


def test_mulaw_table_matches_g711_reference_points():
    assert MULAW_TO_PCM16[0xFF] == 0
    assert MULAW_TO_PCM16[0x7F] == 0
    assert MULAW_TO_PCM16[0x00] == -32124
    assert MULAW_TO_PCM16[0x80] == 32124
    assert MULAW_TO_PCM16[0xF0] == 120  # smallest segment step
    # monotonic within each sign half
    assert np.all(np.diff(MULAW_TO_PCM16[0x80:0xFF].astype(int)) < 0)


def test_mulaw_round_trip_error_is_within_the_segment_step():
    pcm = np.linspace(-32000, 32000, 5001).astype(np.int16)
    back = MULAW_TO_PCM16[np.frombuffer(encode_mulaw(pcm), dtype=np.uint8)]
    err = np.abs(back.astype(int) - pcm.astype(int))
    assert np.all(err <= np.maximum(16, np.abs(pcm.astype(int)) // 16))


def test_decode_interleaved_keeps_channels_apart():
    frames = np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2")
    out = decode_interleaved(frames.tobytes(), Encoding.PCM16, 2)
    assert out[:, 0].tolist() == [1, 2, 3]
    assert out[:, 1].tolist() == [-1, -2, -3]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resampler_is_sample_exact_over_any_chunking(seed):
    rng = np.random.default_rng(seed)
    n = 8000 * 3 + 37
    click_at = 10_001
    signal = np.zeros(n, dtype=np.int16)
    signal[click_at] = 20000
    r = Resampler(8000)
    outs, pos = [], 0
    while pos < n:
        size = int(rng.integers(1, 900))
        outs.append(r.push(signal[pos : pos + size]))
        pos += size
    outs.append(r.flush())
    out = np.concatenate(outs)
    assert len(out) == 2 * n == r.samples_out
    # the click stays at the same instant: sample k at 8 kHz is sample 2k at 16 kHz
    assert abs(int(np.argmax(out)) - 2 * click_at) <= 1


@pytest.mark.parametrize("rate", [8000, 48000, 44100])
def test_resampler_gives_the_same_samples_however_the_input_is_chunked(rate):
    rng = np.random.default_rng(rate)
    x = (rng.standard_normal(rate * 2) * 3000).astype(np.int16)
    whole = Resampler(rate)
    expected = np.concatenate([whole.push(x), whole.flush()])
    for sizes in ([160] * 1000, [7, 1600, 33], [rate // 50 * 10]):
        r, outs, pos, i = Resampler(rate), [], 0, 0
        while pos < len(x):
            size = sizes[i % len(sizes)]
            outs.append(r.push(x[pos : pos + size]))
            pos, i = pos + size, i + 1
        outs.append(r.flush())
        assert np.array_equal(np.concatenate(outs), expected)
    assert len(expected) == round(len(x) * 16000 / rate)


def test_resampler_keeps_a_tone_and_removes_what_16k_cannot_carry():
    t = np.arange(48000) / 48000
    for freq, kept in ((1000, True), (11000, False)):
        x = (np.sin(2 * np.pi * freq * t) * 10000).astype(np.int16)
        r = Resampler(48000)
        y = np.concatenate([r.push(x), r.flush()])[2000:-2000].astype(float)
        rms = np.sqrt(np.mean(y**2))
        assert (rms > 0.95 * 10000 / np.sqrt(2)) if kept else (rms < 100), (freq, rms)


def test_resampler_passes_16k_through():
    r = Resampler(16000)
    x = np.arange(100, dtype=np.int16)
    assert np.array_equal(r.push(x), x)
    assert r.samples_out == 100
