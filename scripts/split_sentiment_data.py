"""Merge the hand-written utterance files and split them into train and test, once.

    python scripts/split_sentiment_data.py data/sentiment/raw/*.tsv

Writes `data/sentiment/utterances.tsv` (one row per utterance, with its `split`). Near-duplicate
utterances (same words in another order or with one or two words swapped, as in "fine. whatever.
just send the replacement" / "fine. whatever. just reset it") are grouped, and a group goes to one
split as a whole, so the test split never holds a near-copy of a training line. The split is
stratified by label and speaker, with a fixed seed. Run it only when the raw files change; the
training script reads the result.

Rows already in `utterances.tsv` keep their id and split: adding a raw file splits only the new
rows (a new row near-duplicating an existing one joins that row's split), so a test row never
moves into training.
"""

from __future__ import annotations

import csv
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "sentiment" / "utterances.tsv"
LABELS = ("negative", "neutral", "positive")
SPEAKERS = ("customer", "agent")
TEST_SHARE = 0.25
SEED = 20261123
NEAR = 0.6  # word-set Jaccard similarity at or above which two lines are one group


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text))


def read(paths: list[Path]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
                where = f"{path}:{n}"
                text = " ".join(row["text"].split())
                if row["label"] not in LABELS or row["speaker"] not in SPEAKERS:
                    sys.exit(f"{where}: bad label or speaker")
                if re.search(r"[0-9A-Z\t]", text):
                    sys.exit(f"{where}: digits or upper case in {text!r}")
                if text in seen:
                    continue
                seen.add(text)
                rows.append({**row, "text": text})
    return rows


def groups(rows: list[dict[str, str]]) -> list[list[int]]:
    """Connected components of the near-duplicate relation (union-find)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sets = [words(r["text"]) for r in rows]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            a, b = sets[i], sets[j]
            if a and b and len(a & b) / len(a | b) >= NEAR:
                parent[find(i)] = find(j)
    out: dict[int, list[int]] = defaultdict(list)
    for i in range(len(rows)):
        out[find(i)].append(i)
    return list(out.values())


def existing() -> dict[str, tuple[int, str]]:
    """text -> (id, split) of the rows already assigned."""
    if not OUT.exists():
        return {}
    with OUT.open(newline="", encoding="utf-8") as f:
        return {r["text"]: (int(r["id"]), r["split"]) for r in csv.DictReader(f, delimiter="\t")}


def main() -> None:
    rows = read([Path(p) for p in sys.argv[1:]])
    old = existing()
    rng = random.Random(SEED)
    comps = groups(rows)
    rng.shuffle(comps)
    split = ["train"] * len(rows)
    fresh: list[list[int]] = []
    for comp in comps:
        known = [old[rows[i]["text"]][1] for i in comp if rows[i]["text"] in old]
        if known:  # a group with assigned rows keeps (and lends) their split
            for i in comp:
                split[i] = old[rows[i]["text"]][1] if rows[i]["text"] in old else known[0]
        else:
            fresh.append(comp)
    # Stratify the new groups by the (label, speaker) of each group's first member.
    strata: dict[tuple[str, str], list[list[int]]] = defaultdict(list)
    for comp in fresh:
        first = rows[comp[0]]
        strata[(first["label"], first["speaker"])].append(comp)
    for comps_in in strata.values():
        size = sum(len(c) for c in comps_in)
        taken = 0
        for comp in comps_in:
            if taken + len(comp) <= round(size * TEST_SHARE) + 1 and len(comp) <= 3:
                for i in comp:
                    split[i] = "test"
                taken += len(comp)
    fields = ["id", "split", "label", "speaker", "industry", "style", "text"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(fields)
        next_id = max((n for n, _ in old.values()), default=0) + 1
        ids = {}
        for i in sorted(range(len(rows)), key=lambda i: (split[i], rows[i]["industry"])):
            if rows[i]["text"] in old:
                ids[i] = old[rows[i]["text"]][0]
            else:
                ids[i], next_id = next_id, next_id + 1
        for i in sorted(range(len(rows)), key=lambda i: ids[i]):
            n, r = ids[i], rows[i]
            w.writerow(
                [n, split[i], r["label"], r["speaker"], r["industry"], r["style"], r["text"]]
            )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for i, r in enumerate(rows):
        counts[(split[i], r["label"])] += 1
    print(f"{len(rows)} utterances in {len(comps)} groups -> {OUT}")
    for s in ("train", "test"):
        print(f"  {s}: " + ", ".join(f"{lab} {counts[(s, lab)]}" for lab in LABELS))


if __name__ == "__main__":
    main()
