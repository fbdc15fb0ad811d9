"""The sentiment test lines as a recognizer delivers them: an ASR round trip.

    .venv/bin/python scripts/asr_roundtrip.py [--split test|train] [--workers 2]

Every row of the split in `data/sentiment/utterances.tsv` is spoken by espeak-ng (a voice chosen
from the row's id, one row in four in the annoyed rendering), sent through the telephone path
(8 kHz, G.711 mu-law, resampled to 16 kHz as the gateway does) and transcribed by the pipeline's
own whisper base engine with its final-pass settings. The output keeps the source row's id and
label, with the text as whisper wrote it (cased, digits, misheard names and addresses):
`data/sentiment/asr_roundtrip_test.tsv` for `test`, which `eval/sentiment.py` scores, so the
accuracy figure has a twin with recognition errors in the text ("it is rachel not shown that
where may not come" for a spelled email address). `--split train` writes
`asr_roundtrip_train.tsv` for experiments; training does not read it (see the data card).

Deterministic for a given espeak-ng and model; about 5 minutes for the test rows on 2 cores.
Needs the Debian packages espeak-ng and sox.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.render import AGENT_VOICES, CUSTOMER_VOICES, RATE, speak  # noqa: E402
from pipeline.speech.asr import AsrConfig, PassKind  # noqa: E402
from pipeline.speech.audio import MULAW_TO_PCM16, Resampler, encode_mulaw  # noqa: E402
from pipeline.speech.whisper import WhisperEngine  # noqa: E402

DATA = ROOT / "data" / "sentiment" / "utterances.tsv"
OUT = {
    "train": ROOT / "data" / "sentiment" / "asr_roundtrip_train.tsv",
    "test": ROOT / "data" / "sentiment" / "asr_roundtrip_test.tsv",
}
VOICES = CUSTOMER_VOICES + AGENT_VOICES


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def telephone(pcm: np.ndarray) -> np.ndarray:
    """8 kHz pcm16 -> mu-law and back -> 16 kHz float32, the gateway's path."""
    coded = MULAW_TO_PCM16[np.frombuffer(encode_mulaw(pcm), np.uint8)]
    r = Resampler(RATE)
    out = np.concatenate([r.push(coded), r.flush()])
    pad = np.zeros(4800, np.float32)  # the VAD's 300 ms pad on both sides
    return np.concatenate([pad, out.astype(np.float32) / 32768, pad])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=sorted(OUT), default="test")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with DATA.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == args.split]
    engine = WhisperEngine(AsrConfig(workers=args.workers))
    t0 = time.monotonic()

    def one(row: dict[str, str]) -> tuple[str, str, str]:
        pick = int(hashlib.sha256(row["id"].encode()).hexdigest(), 16)
        voice, pitch = VOICES[pick % len(VOICES)]
        with tempfile.TemporaryDirectory() as tmp:
            pcm = speak(row["text"], voice, pitch, pick % 4 == 0, Path(tmp) / "u.wav")
        text = engine.transcribe(telephone(pcm), PassKind.FINAL).text
        return row["id"], row["label"], text

    out = []
    with ThreadPoolExecutor(args.workers) as pool:
        for i, got in enumerate(pool.map(one, rows), start=1):
            out.append(got)
            if i % 50 == 0:
                print(f"{i}/{len(rows)} ({time.monotonic() - t0:.0f} s)", flush=True)
    with OUT[args.split].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "label", "text"])
        w.writerows(out)
    same = sum(words(a["text"]) == words(b[2]) for a, b in zip(rows, out, strict=True))
    print(f"{len(out)} rows in {OUT[args.split]} ({same} came back word for word)")


if __name__ == "__main__":
    main()
