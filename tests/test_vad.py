"""The VAD segmenter, driven frame by frame with a deterministic classifier, then with webrtcvad."""

import itertools

import numpy as np
import pytest

from pipeline.speech.audio import Resampler
from pipeline.speech.vad import FRAME, VadConfig, VadSegmenter
from pipeline.types import VadEventKind
from tests.conftest import timeline

RATE = 16000


def energy(frame: bytes) -> bool:
    return bool(np.abs(np.frombuffer(frame, dtype=np.int16)).max() > 1000)


def signal(spec: list[tuple[int, bool]]) -> np.ndarray:
    """Frames of loud (voiced) or silent audio: [(n_frames, voiced), ...]."""
    parts = [np.full(n * FRAME, 5000 if v else 0, dtype=np.int16) for n, v in spec]
    return np.concatenate(parts)


def run(cfg: VadConfig, audio: np.ndarray, chunks: list[int] | None = None, flush=True):
    seg = VadSegmenter(cfg, classifier=energy)
    events, pos = [], 0
    for size in chunks or [len(audio)]:
        events += seg.push(audio[pos : pos + size])
        pos += size
    if pos < len(audio):
        events += seg.push(audio[pos:])
    if flush:
        events += seg.flush()
    return events


def utterances(events):
    """[(start, end, audio samples)] from an event list, checking the event grammar."""
    out, cur = [], None
    for ev in events:
        if ev.kind is VadEventKind.START:
            assert cur is None
            cur = [ev.sample, None, []]
            nxt = ev.sample
        elif ev.kind is VadEventKind.AUDIO:
            assert cur is not None and ev.sample == nxt  # contiguous
            cur[2].append(ev.pcm)
            nxt = ev.sample + len(ev.pcm)
        else:
            assert cur is not None
            cur[1] = ev.sample
            out.append((cur[0], cur[1], np.concatenate(cur[2])[: cur[1] - cur[0]]))
            cur = None
    assert cur is None
    return out


CFG = VadConfig(min_speech_ms=90, hangover_ms=300, pad_ms=60, max_utterance_s=20.0)


def test_utterance_spans_voiced_frames_plus_padding():
    audio = signal([(20, False), (30, True), (20, False)])
    [(start, end, pcm)] = utterances(run(CFG, audio))
    assert start == 20 * FRAME - 2 * FRAME  # 60 ms pad = 2 frames before
    assert end == 50 * FRAME + 2 * FRAME
    assert np.array_equal(pcm, audio[start:end])


def test_blip_shorter_than_min_speech_is_dropped():
    audio = signal([(10, False), (2, True), (20, False), (1, True), (20, False)])
    assert run(CFG, audio) == []


def test_short_gaps_inside_speech_do_not_split_it():
    audio = signal([(5, False), (10, True), (9, False), (10, True), (20, False)])
    assert len(utterances(run(CFG, audio))) == 1


def test_gap_longer_than_hangover_splits():
    audio = signal([(5, False), (10, True), (10, False), (10, True), (20, False)])
    spans = utterances(run(CFG, audio))
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0]


def test_long_speech_is_cut_at_max_utterance():
    cfg = VadConfig(min_speech_ms=90, hangover_ms=300, pad_ms=60, max_utterance_s=1.5)
    audio = signal([(5, False), (120, True), (20, False)])  # 3.6 s of speech
    events = run(cfg, audio)
    spans = utterances(events)
    assert len(spans) >= 3
    assert all(e - s <= int(1.5 * RATE) + FRAME for s, e, _ in spans)
    assert sum(ev.forced for ev in events if ev.kind is VadEventKind.END) == len(spans) - 1
    for (_, e1, _), (s2, _, _) in itertools.pairwise(spans):
        assert e1 == s2  # nothing lost at a cut


def test_flush_closes_an_utterance_in_progress():
    audio = signal([(5, False), (20, True)])
    events = run(CFG, audio[: len(audio) - 100])  # the client vanished mid-word
    [(start, end, pcm)] = utterances(events)
    assert end == len(audio) - 100
    assert len(pcm) == end - start


@pytest.mark.parametrize("seed", range(5))
def test_events_do_not_depend_on_chunk_sizes(seed):
    rng = np.random.default_rng(seed)
    spec = [(int(rng.integers(1, 30)), bool(i % 2)) for i in range(12)]
    audio = signal(spec)
    whole = utterances(run(CFG, audio))
    sizes = list(rng.integers(1, 2000, size=len(audio) // 500))
    chunked = utterances(run(CFG, audio, chunks=[int(s) for s in sizes]))
    assert [(s, e) for s, e, _ in whole] == [(s, e) for s, e, _ in chunked]
    for (_, _, a), (_, _, b) in zip(whole, chunked, strict=True):
        assert np.array_equal(a, b)


def test_config_is_validated():
    with pytest.raises(ValueError):
        VadConfig(aggressiveness=4)
    with pytest.raises(ValueError):
        VadConfig(max_utterance_s=31)


def test_webrtcvad_finds_the_sample_call_turns(sample_path):
    """Real webrtcvad on the sample call's customer channel finds each scripted turn."""
    from agent_assist.replay import read_wav
    from pipeline.speech.audio import decode_interleaved
    from pipeline.types import Encoding

    wav = read_wav(sample_path)
    frames = decode_interleaved(wav.data, Encoding.MULAW, 2)
    turns = [(s, e) for who, s, e in timeline() if who == "customer"]
    seg = VadSegmenter(VadConfig())
    resampler = Resampler(8000)
    pcm = np.concatenate([resampler.push(frames[:, 0].copy()), resampler.flush()])
    found = utterances(seg.push(pcm) + seg.flush())
    spans = [(s / RATE, e / RATE) for s, e, _ in found]
    assert len(spans) == len(turns)
    for (s, e), (ts, te) in zip(spans, turns, strict=True):
        assert abs(s - ts) < 0.35 and abs(e - te) < 0.8
