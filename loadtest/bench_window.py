"""What whisper's encoder window costs and buys, and whether packing utterances pays. Prints
figures; asserts nothing.

    python -m loadtest.bench_window [--limit 160] [--windows 30 20 15 10] [--no-pack]

Real 8 kHz telephone speech: the Asterisk prompts (Debian package asterisk-core-sounds-en-wav)
of at most 20 s among the first `--limit` (the VAD cuts utterances at 20 s), each transcribed as
a final by the batched path on one CPU thread, scored against the package's transcripts.

1. **Window**: each prompt alone, padded to a window of at least W seconds (the prompt plus 3 s
   when longer): WER and CPU time per utterance, for each W of `--windows`. Whisper's own is 30.
2. **Packing**: prompts, as if from different calls, packed into 30 s windows with 1 s of silence
   between them (at most 28 s of audio a window); each word goes back to the prompt its middle
   falls in. Kept only if its WER stays within 0.5 points of one window per prompt.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator

import jiwer
import numpy as np

from loadtest import bench_spine
from pipeline.speech.asr import AsrConfig, PassKind
from pipeline.speech.audio import Resampler
from pipeline.speech.whisper import WhisperEngine
from pipeline.types import PIPELINE_RATE, Samples


def load(limit: int) -> tuple[list[Samples], list[str]]:
    audios, refs = [], []
    for path, text in bench_spine.prompts(limit):
        pcm = bench_spine.read_mono(path)
        if len(pcm) > 20 * 8000:
            continue
        r = Resampler(8000)
        pcm16 = np.concatenate([r.push(pcm), r.flush()])
        audios.append((pcm16.astype(np.float32) / 32768).astype(np.float32))
        refs.append(bench_spine.normalize(text))
    return audios, refs


def windows(
    engine: WhisperEngine, audios: list[Samples], refs: list[str], sizes: list[float]
) -> Iterator[tuple[float, float]]:
    for size in sizes:
        t0 = time.process_time()
        hyps = []
        for audio in audios:
            window = min(30.0, max(size, math.ceil(len(audio) / PIPELINE_RATE + 3.0)))
            hyps.append(engine.transcribe_batch([audio], PassKind.FINAL, window)[0].text)
        cpu = (time.process_time() - t0) / len(audios)
        wer = jiwer.wer(refs, [bench_spine.normalize(h) for h in hyps])
        print(f"  window at least {size:4.0f} s   WER {100 * wer:5.2f} %   {cpu:.2f} s CPU each")
        yield size, wer


def packed(
    engine: WhisperEngine, audios: list[Samples], gap_s: float = 1.0, cap_s: float = 28.0
) -> tuple[list[str], int, float]:
    groups: list[list[int]] = [[]]
    length = 0.0
    for i, audio in enumerate(audios):
        d = len(audio) / PIPELINE_RATE
        if groups[-1] and length + gap_s + d > cap_s:
            groups.append([])
            length = 0.0
        length += (gap_s if groups[-1] else 0.0) + d
        groups[-1].append(i)
    hyps = [""] * len(audios)
    silence = np.zeros(int(gap_s * PIPELINE_RATE), dtype=np.float32)
    t0 = time.process_time()
    for group in groups:
        parts, spans, pos = [], [], 0
        for k, i in enumerate(group):
            if k:
                parts.append(silence)
                pos += len(silence)
            spans.append((pos / PIPELINE_RATE, (pos + len(audios[i])) / PIPELINE_RATE))
            parts.append(audios[i])
            pos += len(audios[i])
        result = engine.transcribe_batch([np.concatenate(parts)], PassKind.FINAL, 30.0)[0]
        for word in result.words:
            mid = (word.start + word.end) / 2
            k = min(
                range(len(group)),
                key=lambda k: max(spans[k][0] - mid, mid - spans[k][1], 0.0),
            )
            hyps[group[k]] += " " + word.text
    cpu = (time.process_time() - t0) / len(audios)
    return hyps, len(groups), cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--windows", type=float, nargs="+", default=[30.0, 20.0, 15.0, 10.0])
    parser.add_argument("--no-pack", action="store_true")
    args = parser.parse_args()
    engine = WhisperEngine(AsrConfig(workers=1, cpu_threads=1))
    audios, refs = load(args.limit)
    total = sum(len(a) for a in audios) / PIPELINE_RATE
    print(f"{len(audios)} Asterisk prompts of at most 20 s, {total:.0f} s of real speech")
    wers = dict(windows(engine, audios, refs, args.windows))
    if args.no_pack:
        return
    hyps, n, cpu = packed(engine, audios)
    wer = jiwer.wer(refs, [bench_spine.normalize(h) for h in hyps])
    one = wers.get(30.0)
    versus = f" ({100 * (wer - one):+.2f} points against one 30 s window each)" if one else ""
    print(
        f"  packed: {len(audios)} prompts in {n} windows   WER {100 * wer:5.2f} %{versus}"
        f"   {cpu:.2f} s CPU each"
    )


if __name__ == "__main__":
    main()
