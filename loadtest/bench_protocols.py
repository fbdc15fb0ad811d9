"""The sample call (or any stereo call) through every ingest protocol: each party's WER against
the script, beside the native protocol's, and the server-side final latency.

    python -m loadtest.bench_protocols                  # all six protocols, the sample call
    python -m loadtest.bench_protocols --protocols native twilio --file call.wav --script call.txt
    python -m loadtest.bench_protocols --protocols native webrtc --asterisk 40

`--asterisk N` builds a longer call of real speech instead: N prompts of the Debian package
asterisk-core-sounds-en-wav for each party, taking turns, scored against the package's own
transcripts. `--repeat K` runs each protocol K times and adds mean rows; with `--shift-ms S`
the native call also runs K times starting S, 2S, ... ms later. One word of the 72 s sample is
1.4 to 1.6 WER points, about what shifting the same audio by 5 ms changes;
a call of a few minutes, or several runs, tells a lossy codec (WebRTC's Opus) from that noise.

One service (embedded Redis, real models) serves every run; the calls go one after another in
real time, each through its platform's client (see `loadtest.protocols`). Synthetic speech: the
WER figures show that the protocols deliver the same audio, not how well whisper hears people.
Prints the table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import jiwer
import numpy as np

from agent_assist.app import Service
from agent_assist.cli import sample_call
from agent_assist.settings import Settings
from loadtest import bench_spine
from loadtest.clients import LOCAL, stereo_pcm
from loadtest.protocols import PARTIES, PROTOCOLS, loopback_ice, stream
from pipeline.bus.redis_bus import call_state
from pipeline.runtime import metrics
from pipeline.types import TranscriptEvent

Row = tuple[str, dict[str, float], float | None, float]
SAMPLES = Path(__file__).resolve().parent.parent / "agent_assist" / "samples"


def normalize(text: str) -> str:
    return " ".join("".join(c if c.isalnum() or c in " '" else " " for c in text.lower()).split())


def script(path: Path) -> dict[str, str]:
    """speaker<TAB>tone<TAB>text lines (the sample call's script format)."""
    out: dict[str, list[str]] = {p: [] for p in PARTIES}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            speaker, _tone, text = line.split("\t")
            out[speaker].append(text)
    return {p: " ".join(t) for p, t in out.items()}


async def bench(
    path: Path,
    reference: dict[str, str],
    protocols: list[str],
    norm: Callable[[str], str] = normalize,
    speech: str = "synthetic speech",
    shift_ms: float = 0.0,
    repeat: int = 1,
) -> None:
    pcm, rate = stereo_pcm(path)
    settings = Settings(
        port=0,
        panel_port=0,
        audiosocket_port=0,
        webrtc_port=0,
        log_level="WARNING",
        **LOCAL.settings(),
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, loopback_ice():
        async with Service(settings) as service:
            assert service.bus is not None
            runs = [(p, p, pcm) for p in protocols for _ in range(repeat)]
            for k in range(1, repeat + 1) if shift_ms else ():
                # the noise floor: the very same audio, only starting a little later
                late = np.zeros((int(k * shift_ms * rate / 1000), 2), np.int16)
                runs.append((f"native +{k * shift_ms:g}ms", "native", np.concatenate([late, pcm])))
            for label, protocol, audio in runs:
                gaps = metrics.MEDIA_GAPS.labels(protocol)._value.get()
                got = await stream(service, protocol, audio, rate, Path(tmp))
                gaps = metrics.MEDIA_GAPS.labels(protocol)._value.get() - gaps
                _, events = await call_state(service.bus.redis, service.bus.keys, got.call_id)
                latency = [
                    e.latency
                    for e in events
                    if isinstance(e, TranscriptEvent) and e.latency is not None
                ]
                wers = {p: jiwer.wer(norm(reference[p]), norm(got.finals[p])) for p in PARTIES}
                rows.append((label, wers, statistics.median(latency) if latency else None, gaps))
                print(f"  {label:12s} done", flush=True)
    if repeat > 1:
        rows = [*rows, *average(rows)]
    base = {r[0]: r[1] for r in rows}.get("native" if repeat == 1 else "native, mean")
    print(f"\n{path.name}, {len(pcm) / rate:.0f} s, real time, one call at a time ({speech})")
    print(
        "protocol           WER customer  WER agent  vs native (points)   final latency p50  lost"
    )
    for protocol, wers, lat, gaps in rows:
        diff = "  ".join(f"{100 * (wers[p] - base[p]):+.1f}" for p in PARTIES) if base else "n/a"
        lat_s = f"{lat:.2f} s" if lat is not None else "-"
        print(
            f"{protocol:19s} {100 * wers['customer']:6.1f} %  {100 * wers['agent']:8.1f} %"
            f"   {diff:>18s}   {lat_s:>8s}  {gaps:6.2f} s"
        )


def average(rows: list[Row]) -> list[Row]:
    """One mean row per protocol (the shifted native runs pooled as "native shifted")."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault("native shifted" if "+" in row[0] else row[0], []).append(row)
    out = []
    for name, group in groups.items():
        wers = {p: statistics.mean(r[1][p] for r in group) for p in PARTIES}
        lats = [r[2] for r in group if r[2] is not None]
        lat = statistics.median(lats) if lats else None
        out.append((f"{name}, mean", wers, lat, sum(r[3] for r in group)))
    return out


def asterisk_call(n: int, workdir: Path) -> tuple[Path, dict[str, str]]:
    """A stereo 8 kHz call of 2n Asterisk prompts, the parties taking turns, and its script."""
    return bench_spine.prompt_call(bench_spine.prompts(None)[: 2 * n], workdir / f"ast-{n}.wav")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="a stereo WAV (default: the sample call)")
    parser.add_argument("--script", type=Path, help="its script (default: the sample's)")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--asterisk", type=int, metavar="N", help="N Asterisk prompts a party")
    parser.add_argument(
        "--shift-ms", type=float, default=0.0, help="also run native with the audio this much later"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each protocol this many times; adds means"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.asterisk:
        if not bench_spine.SOUNDS.is_dir():
            sys.exit("needs the Debian package asterisk-core-sounds-en-wav (`make bench`)")
        wav, ref = asterisk_call(args.asterisk, Path(tempfile.mkdtemp()))
        asyncio.run(
            bench(
                wav,
                ref,
                args.protocols,
                bench_spine.normalize,
                "real speech",
                args.shift_ms,
                args.repeat,
            )
        )
        return
    path = args.file or sample_call()
    ref = script(
        args.script or Path(__file__).parent.parent / "agent_assist/samples/sample_call.txt"
    )
    asyncio.run(bench(path, ref, args.protocols, shift_ms=args.shift_ms, repeat=args.repeat))


if __name__ == "__main__":
    main()
