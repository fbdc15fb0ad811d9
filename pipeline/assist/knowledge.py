"""Knowledge suggestions for the agent: a small FAQ matched to what the customer just said.

A knowledge base is a YAML file (`pipeline/assist/knowledge.yaml` is the shipped example; point
`--knowledge-file` at your own): entries with an `id`, a `title`, the `answer` the agent can use,
and `questions`, ways a customer might raise it. A customer's final transcript is embedded with
the sentence encoder and compared with every question; each entry scores its best question, and
the top entries at or above `min_score` are suggested, best first, with the question that matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pipeline.assist.embed import SentenceEncoder, Vectors
from pipeline.assist.yamlfile import ConfigError, entries, line, mapping, scalar
from pipeline.types import Suggestion

DEFAULT_KNOWLEDGE = Path(__file__).with_name("knowledge.yaml")


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    answer: str
    questions: tuple[str, ...]


def load_knowledge(path: Path | str = DEFAULT_KNOWLEDGE) -> list[Entry]:
    path = Path(path)
    out: list[Entry] = []
    for node in entries(path, "entries"):
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(path, line(node), "entries[]", "each entry must be a mapping")
        fields = mapping(node)
        for name, (key, _) in fields.items():
            if name not in ("id", "title", "answer", "questions"):
                raise ConfigError(path, line(key), name, "unknown field")
        values = {}
        for name in ("id", "title", "answer"):
            if name not in fields or not isinstance(scalar(fields[name][1]), str):
                at = line(fields[name][1]) if name in fields else line(node)
                raise ConfigError(path, at, name, "is required, as text")
            values[name] = scalar(fields[name][1]).strip()
        questions = scalar(fields["questions"][1]) if "questions" in fields else None
        if not questions or not all(isinstance(q, str) and q.strip() for q in questions):
            at = line(fields["questions"][1]) if "questions" in fields else line(node)
            raise ConfigError(path, at, "questions", "must be a non-empty list of text")
        if any(e.id == values["id"] for e in out):
            raise ConfigError(path, line(fields["id"][1]), "id", f"{values['id']!r} is used twice")
        out.append(Entry(values["id"], values["title"], values["answer"], tuple(questions)))
    return out


class KnowledgeBase:
    def __init__(
        self, entries: list[Entry], encoder: SentenceEncoder, top_k: int = 3, min_score: float = 0.4
    ) -> None:
        self.entries = entries
        self.top_k, self.min_score = top_k, min_score
        self._encoder = encoder
        self._owner = [i for i, e in enumerate(entries) for _ in e.questions]
        self._questions = [q for e in entries for q in e.questions]
        self._vectors = encoder.examples(self._questions)

    def suggest(self, text: str) -> list[Suggestion]:
        """Best entries for what the customer said (blocking: call it off the event loop)."""
        if not text.strip() or not self.entries:
            return []
        return self.suggest_vector(self._encoder.encode([text])[0])

    def suggest_vector(self, vector: Vectors) -> list[Suggestion]:
        """Best entries for an utterance already embedded (cheap: a few dot products)."""
        if not self.entries:
            return []
        sims = self._vectors @ vector
        best: dict[int, int] = {}  # entry -> index of its best question
        for qi in np.argsort(-sims):
            best.setdefault(self._owner[qi], int(qi))
        ranked = sorted(best.items(), key=lambda kv: -sims[kv[1]])
        return [
            Suggestion(e.id, e.title, e.answer, float(sims[qi]), self._questions[qi])
            for ei, qi in ranked[: self.top_k]
            if sims[qi] >= self.min_score and (e := self.entries[ei])
        ]
