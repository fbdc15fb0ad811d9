"""The sample call (or any stereo call) through every ingest protocol: each party's WER against
the script, beside the native protocol's, and the server-side final latency.

    python -m loadtest.bench_protocols                  # all six protocols, the sample call
    python -m loadtest.bench_protocols --protocols native twilio --file call.wav --script call.txt

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
import tempfile
from pathlib import Path

import jiwer

from agent_assist.app import Service
from agent_assist.cli import sample_call
from agent_assist.clients import stereo_pcm
from agent_assist.settings import Settings
from loadtest.protocols import PARTIES, PROTOCOLS, loopback_ice, stream
from pipeline.bus import call_state

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


async def bench(path: Path, reference: dict[str, str], protocols: list[str]) -> None:
    pcm, rate = stereo_pcm(path)
    settings = Settings(
        port=0, panel_port=0, audiosocket_port=0, webrtc_port=0, log_level="WARNING"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp, loopback_ice():
        async with Service(settings) as service:
            assert service.bus is not None
            for protocol in protocols:
                got = await stream(service, protocol, pcm, rate, Path(tmp))
                _, events = await call_state(service.bus.redis, service.bus.keys, got.call_id)
                latency = [e["latency"] for e in events if e.get("latency") is not None]
                wers = {
                    p: jiwer.wer(normalize(reference[p]), normalize(got.finals[p])) for p in PARTIES
                }
                rows.append((protocol, wers, statistics.median(latency) if latency else None))
                print(f"  {protocol:12s} done", flush=True)
    base = dict((r[0], r[1]) for r in rows).get("native")
    print(
        f"\n{path.name}, {len(pcm) / rate:.0f} s, real time, one call at a time (synthetic speech)"
    )
    print("protocol      WER customer  WER agent  vs native (points)   final latency p50")
    for protocol, wers, lat in rows:
        diff = "  ".join(f"{100 * (wers[p] - base[p]):+.1f}" for p in PARTIES) if base else "n/a"
        lat_s = f"{lat:.2f} s" if lat is not None else "-"
        print(
            f"{protocol:12s} {100 * wers['customer']:8.1f} %  {100 * wers['agent']:8.1f} %"
            f"   {diff:>18s}   {lat_s:>8s}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="a stereo WAV (default: the sample call)")
    parser.add_argument("--script", type=Path, help="its script (default: the sample's)")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = args.file or sample_call()
    ref = script(
        args.script or Path(__file__).parent.parent / "agent_assist/samples/sample_call.txt"
    )
    asyncio.run(bench(path, ref, args.protocols))


if __name__ == "__main__":
    main()
