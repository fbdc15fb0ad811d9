"""Fit the built-in sentiment model's temperature on held-out utterances, and say what it buys.

    .venv/bin/python scripts/calibrate_sentiment.py

Temperature scaling divides the logits by one number T before the softmax: the most probable
label never changes (accuracy is untouched), only how sure the probabilities are. T is chosen
to minimise the negative log-likelihood on the `test` rows of `data/sentiment/utterances.tsv`
(never trained on) and their whisper round trip (`asr_roundtrip_test.tsv`: what the model sees
live). The expected calibration error (ECE: 10 equal-width bins of the top probability, the
gap between confidence and accuracy weighted by the bin's share) is reported before and after,
out of fold: T fitted on one half of the rows (by id) is judged on the other, both ways.

Writes `calibration.json` beside the adapter (`pipeline/mood/weights/sentiment-minilm-call/`),
which `SentimentModel` reads.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.mood.sentiment import (  # noqa: E402
    ADAPTER_DIR,
    LABELS,
    SentimentConfig,
    SentimentModel,
)

DATA = ROOT / "data" / "sentiment"
GRID = torch.exp(torch.linspace(-1.0, 2.0, 301))  # T from 0.37 to 7.4


def rows() -> list[tuple[str, str, int]]:
    """(text, label, fold) of the test rows, typed and as whisper heard them."""
    with (DATA / "utterances.tsv").open(newline="", encoding="utf-8") as f:
        typed = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]
    out = [(r["text"], r["label"], int(r["id"]) % 2) for r in typed]
    heard = DATA / "asr_roundtrip_test.tsv"
    if heard.exists():
        with heard.open(newline="", encoding="utf-8") as f:
            out += [
                (r["text"], r["label"], int(r["id"]) % 2) for r in csv.DictReader(f, delimiter="\t")
            ]
    return out


def ece(probs: torch.Tensor, gold: torch.Tensor, bins: int = 10) -> float:
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == gold).float()
    total = 0.0
    for i in range(bins):
        inside = (confidence > i / bins) & (confidence <= (i + 1) / bins)
        if inside.any():
            gap = (confidence[inside].mean() - correct[inside].mean()).abs()
            total += float(gap) * float(inside.float().mean())
    return total


def fit(logits: torch.Tensor, gold: torch.Tensor) -> float:
    losses = [torch.nn.functional.cross_entropy(logits / t, gold) for t in GRID]
    return float(GRID[int(torch.stack(losses).argmin())])


def main() -> None:
    model = SentimentModel(SentimentConfig(temperature=1.0))
    data = rows()
    t0 = time.monotonic()
    logits = torch.cat([model.logits([t for t, _, _ in data[i : i + 64]])
                        for i in range(0, len(data), 64)])  # fmt: skip
    gold = torch.tensor([LABELS.index(label) for _, label, _ in data])
    folds = torch.tensor([fold for _, _, fold in data])
    before = ece(torch.softmax(logits, 1), gold)
    after_parts, temps = [], []
    for held in (0, 1):
        t = fit(logits[folds != held], gold[folds != held])
        temps.append(t)
        mask = folds == held
        after_parts.append(ece(torch.softmax(logits[mask] / t, 1), gold[mask]) * float(mask.sum()))
    after = sum(after_parts) / len(data)
    temperature = fit(logits, gold)
    accuracy = float((logits.argmax(1) == gold).float().mean())
    report = {
        "temperature": round(temperature, 3),
        "fitted_on": f"{len(data)} held-out rows: data/sentiment test split, typed and heard",
        "ece_before": round(before, 4),
        "ece_after_out_of_fold": round(after, 4),
        "fold_temperatures": [round(t, 3) for t in temps],
        "accuracy": round(accuracy, 4),
        "when": time.strftime("%Y-%m-%d"),
    }
    (ADAPTER_DIR / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
