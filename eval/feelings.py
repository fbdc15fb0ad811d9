"""Descriptive feelings of customer turns (`pipeline/assist/feelings.py`), zero-shot, measured.

    python -m eval.feelings

The project's labelled utterances (`data/sentiment/utterances.tsv`) carry a writing `style`;
where a style names a feeling, it is the expected label: angry (angry), worry (anxious),
confusion (confused), relief (relieved), thanks / praise / agreement / closing (satisfied),
procedural / question and neutral problem reports and small talk (neutral), complaint / repeat
contact / polite annoyance / sarcasm (frustrated). Escalations and cancellation threats accept
angry or frustrated. Other rows are left out; no style names disappointed, so it is not measured.

Judged on the text alone (no voice): the turn's embedding and its sentiment from the built-in
model, read for sarcasm as the live path does. Reported on the `train` rows (the example lines
were written while looking at a few of these) and on the held-out `test` rows (never looked
at), each with accuracy per feeling and overall. Typed lines, not recognised speech.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from pipeline.assist.embed import SentenceEncoder
from pipeline.assist.feelings import FEELINGS, FeelingJudge
from pipeline.mood.frustration import read_sarcasm
from pipeline.mood.sentiment import SentimentConfig, SentimentModel

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "sentiment" / "utterances.tsv"
RESULTS = ROOT / "eval" / "results"
EXPECTED: dict[str, tuple[str, ...]] = {
    "angry": ("angry",),
    "worry": ("anxious",),
    "confusion": ("confused",),
    "relief": ("relieved",),
    "thanks": ("satisfied",),
    "praise": ("satisfied",),
    "agreement": ("satisfied",),
    "closing": ("satisfied",),
    "procedural": ("neutral",),
    "question": ("neutral",),
    "complaint": ("frustrated",),
    "repeat_contact": ("frustrated",),
    "annoyed_polite": ("frustrated",),
    "sarcasm": ("frustrated",),
    "escalation": ("angry", "frustrated"),
    "cancel_threat": ("angry", "frustrated"),
}
NEUTRAL_WHEN_NEUTRAL = ("problem_report", "small_talk")  # neutral-labelled rows of these styles


def rows(split: str) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    with DATA.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["split"] != split or r["speaker"] != "customer":
                continue
            if r["style"] in EXPECTED:
                out.append((r["text"], EXPECTED[r["style"]]))
            elif r["style"] in NEUTRAL_WHEN_NEUTRAL and r["label"] == "neutral":
                out.append((r["text"], ("neutral",)))
    return out


def measure(
    data: list[tuple[str, tuple[str, ...]]],
    encoder: SentenceEncoder,
    sentiment: SentimentModel,
    judge: FeelingJudge,
) -> dict[str, object]:
    texts = [t for t, _ in data]
    vectors = encoder.encode(texts)
    moods = [read_sarcasm(m, t) for m, t in zip(sentiment.predict(texts), texts, strict=True)]
    per: dict[str, list[bool]] = defaultdict(list)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for vec, mood, (_, want) in zip(vectors, moods, data, strict=True):
        got = judge.judge(vec, (mood.negative, mood.neutral, mood.positive)).label
        key = "/".join(want)
        per[key].append(got in want)
        confusion[key][got] += 1
    hits = [h for v in per.values() for h in v]
    return {
        "n": len(hits),
        "accuracy": sum(hits) / len(hits),
        "per_feeling": {k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in per.items()},
        "confusion": {k: dict(c) for k, c in confusion.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="feelings.json", help="report name in eval/results")
    args = parser.parse_args()
    t0 = time.monotonic()
    encoder = SentenceEncoder()
    sentiment = SentimentModel(SentimentConfig())
    judge = FeelingJudge(encoder.encode(FeelingJudge.all_examples()))
    report = {}
    for split in ("train", "test"):
        r = measure(rows(split), encoder, sentiment, judge)
        report[split] = r
        name = "train rows (examples written alongside)" if split == "train" else "held-out test"
        print(f"{name}: {100 * r['accuracy']:.1f} % of {r['n']} customer lines")  # type: ignore[operator]
        for k, v in sorted(r["per_feeling"].items()):  # type: ignore[attr-defined]
            top = Counter(r["confusion"][k]).most_common(3)  # type: ignore[index]
            print(f"  {k:18} {100 * v['accuracy']:5.1f} % of {v['n']:3}   judged: {top}")
    print(
        f"feelings: {', '.join(FEELINGS)}; disappointed is not measured "
        f"({time.monotonic() - t0:.0f} s)"
    )
    (RESULTS / args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
