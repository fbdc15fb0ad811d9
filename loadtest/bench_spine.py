"""Benchmark of the transcription spine: WER, streaming vs whole file. Prints figures; asserts
nothing.

The Debian package asterisk-core-sounds-en-wav (real 8 kHz telephone prompts, with the
transcripts the package ships). Each prompt is streamed through the gateway as the customer
channel of its own call; the same model also transcribes each file whole, with the same decoding
settings. Latency and capacity under load: `loadtest.loadgen`.

    python -m loadtest.bench_spine [--limit N] [--model base]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from agent_assist.replay import replay
from loadtest.clients import LOCAL
from pipeline.speech.asr import AsrConfig, PassKind
from pipeline.speech.audio import Resampler
from pipeline.speech.whisper import WhisperEngine

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
RESULTS = Path(__file__).resolve().parent / "results"

# --- text normalisation for WER ----------------------------------------------------------------
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + (" " + number_words(rest) if rest else "")


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ").replace("%", " percent")
    text = re.sub(r"(\d),(\d)", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(w.strip("'") for w in text.split())


def prompts(limit: int | None) -> list[tuple[Path, str]]:
    """(wav, transcript) of top-level prompts that have speech and a file."""
    out = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as listing:
        lines = list(listing)
    for line in lines:
        name, sep, text = line.partition(":")
        if not sep or line.startswith(";") or "/" in name or "[" in text:
            continue
        path = SOUNDS / f"{name.strip()}.wav"
        if path.is_file() and normalize(text):
            out.append((path, text.strip()))
    out.sort()
    return out[:limit] if limit else out


def read_mono(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 8000
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def prompt_call(
    items: list[tuple[Path, str]], path: Path, gap_s: float = 0.8
) -> tuple[Path, dict[str, str]]:
    """A stereo 8 kHz call of these prompts, the parties taking turns (customer first), written
    to `path`; and each party's script."""
    gap = np.zeros(int(gap_s * 8000), dtype=np.int16)
    rows, texts = [], {"customer": [], "agent": []}  # type: ignore[var-annotated]
    for i, (prompt, text) in enumerate(items):
        speech = read_mono(prompt)
        turn = np.zeros((len(speech) + len(gap), 2), dtype="<i2")
        turn[: len(speech), i % 2] = speech
        rows.append(turn)
        texts["customer" if i % 2 == 0 else "agent"].append(text)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.concatenate(rows).tobytes())
    return path, {p: " ".join(t) for p, t in texts.items()}


def as_call(pcm: np.ndarray, lead: float = 0.5, tail: float = 1.0) -> bytes:
    """A stereo 8 kHz WAV: the prompt on the customer channel, silence on the agent's."""
    pad = lambda s: np.zeros(int(s * 8000), dtype=np.int16)  # noqa: E731
    customer = np.concatenate([pad(lead), pcm, pad(tail)])
    frames = np.zeros((len(customer), 2), dtype="<i2")
    frames[:, 0] = customer
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames.tobytes())
    return buf.getvalue()


# --- a server in its own process ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], within: float = 120) -> None:
    """Poll http://127.0.0.1:port/path until it answers; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + within
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{proc.args} did not start (exit {proc.poll()})") from None
            time.sleep(0.2)


@contextlib.contextmanager
def server(extra: list[str]) -> Any:
    port = free_port()
    env = os.environ | LOCAL.env() | {"AGENT_ASSIST_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    cmd = [sys.executable, "-m", "agent_assist.cli", "serve", "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, env=env)
    try:
        wait_http(port, "/healthz", proc)
        yield f"ws://127.0.0.1:{port}/v1/stream", port
    finally:
        proc.terminate()
        proc.wait(60)


def scrape(port: int, name: str, **labels: str) -> float:
    """The sum of the samples whose line starts with `name` and carries every label given."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(name)
        and not line.startswith("#")
        and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# --- part 1: WER -------------------------------------------------------------------------------
async def stream_prompts(
    url: str, items: list[tuple[Path, str]], speed: float, concurrency: int, tmp: Path
) -> list[str]:
    sem = asyncio.Semaphore(concurrency)
    out = [""] * len(items)

    async def one(i: int, path: Path) -> None:
        async with sem:
            wav = tmp / f"{i}.wav"
            wav.write_bytes(as_call(read_mono(path)))
            result = await replay(wav, url, speed, call_id=f"wer-{i}", key=LOCAL.key.secret)
            finals = [
                e
                for e in result.events
                if e["type"] == "transcript" and e["final"] and e["channel"] == "customer"
            ]
            out[i] = " ".join(e["text"] for e in finals)

    await asyncio.gather(*(one(i, p) for i, (p, _) in enumerate(items)))
    return out


def whole_file(items: list[tuple[Path, str]], model: str) -> list[str]:
    engine = WhisperEngine(AsrConfig(model=model, workers=1, cpu_threads=2))
    out = []
    for path, _ in items:
        r = Resampler(8000)
        pcm = np.concatenate([r.push(read_mono(path)), r.flush()])
        out.append(engine.transcribe(pcm.astype(np.float32) / 32768, PassKind.FINAL).text)
    return out


def part_wer(args: argparse.Namespace) -> dict[str, Any]:
    items = prompts(args.limit)
    refs = [normalize(t) for _, t in items]
    total = sum(len(read_mono(p)) for p, _ in items) / 8000
    print(f"WER: {len(items)} asterisk prompts, {total:.0f} s of real 8 kHz telephone speech")
    t0 = time.monotonic()
    whole = [""] * len(items) if args.no_whole else whole_file(items, args.model)
    print(f"  whole file done in {time.monotonic() - t0:.0f} s")
    tmp = RESULTS / "wer-wavs"
    tmp.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with server(["--model", args.model, *args.server_args.split()]) as (url, _):
        streamed = asyncio.run(
            stream_prompts(url, items, args.wer_speed, args.wer_concurrency, tmp)
        )
    print(f"  streaming done in {time.monotonic() - t0:.0f} s")
    w_whole = jiwer.wer(refs, [normalize(h) for h in whole])
    w_stream = jiwer.wer(refs, [normalize(h) for h in streamed])
    diffs = [
        {"file": p.name, "reference": t, "whole": w, "streamed": s}
        for (p, t), w, s in zip(items, whole, streamed, strict=True)
        if normalize(w) != normalize(s)
    ]
    print(f"  whole-file WER  {100 * w_whole:.2f} %")
    print(
        f"  streaming WER   {100 * w_stream:.2f} %   "
        f"(difference {100 * (w_stream - w_whole):+.2f} points)"
    )
    print(f"  prompts whose two transcripts differ: {len(diffs)}")
    return {
        "prompts": len(items),
        "audio_s": round(total, 1),
        "model": args.model,
        "wer_whole": w_whole,
        "wer_streaming": w_stream,
        "stream_speed": args.wer_speed,
        "differences": diffs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="base")
    parser.add_argument("--limit", type=int, default=None, help="first N prompts only")
    parser.add_argument("--wer-speed", type=float, default=2.0, help="replay speed of the prompts")
    parser.add_argument("--wer-concurrency", type=int, default=2)
    parser.add_argument("--server-args", default="", help="more flags for the streaming server")
    parser.add_argument(
        "--no-whole", action="store_true", help="stream only (skip the whole-file transcription)"
    )
    args = parser.parse_args()
    if not TRANSCRIPTS.exists():
        sys.exit("needs the Debian package asterisk-core-sounds-en-wav (make bench installs it)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M")}
    report["wer"] = part_wer(args)
    out = RESULTS / "spine-wer.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
