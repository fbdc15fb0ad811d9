"""Knowledge suggestions with the real sentence encoder, and refused knowledge files."""

from __future__ import annotations

import textwrap

import pytest

from pipeline.assist.knowledge import DEFAULT_KNOWLEDGE, KnowledgeBase, load_knowledge
from pipeline.assist.yamlfile import ConfigError


@pytest.fixture(scope="module")
def kb():
    from pipeline.assist.embed import SentenceEncoder

    return KnowledgeBase(load_knowledge(DEFAULT_KNOWLEDGE), SentenceEncoder())


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("Hi, my internet keeps dropping every evening.", "internet-drops"),
        ("The engineer was supposed to come yesterday and nobody came.", "technician-visit"),
        ("It's been two weeks and the money for the sofa is still not back.", "refund-timing"),
        ("If it is not fixed today I want to cancel my contract.", "retention-offers"),
        ("There's a charge of forty dollars that I never authorized.", "billing-dispute"),
    ],
)
def test_what_the_customer_said_finds_the_entry(kb, said, expected):
    got = kb.suggest(said)
    assert got and got[0].id == expected, [(s.id, round(s.score, 2)) for s in got]
    assert got[0].score >= kb.min_score
    assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
    assert len({s.id for s in got}) == len(got) <= kb.top_k


def test_small_talk_finds_nothing(kb):
    assert kb.suggest("Thank you so much, have a lovely weekend.") == []
    assert kb.suggest("") == []


def test_malformed_knowledge_is_refused(tmp_path):
    path = tmp_path / "kb.yaml"
    path.write_text(textwrap.dedent("""
        version: 1
        entries:
          - id: a
            title: A
            answer: do this
            questions: []
    """).lstrip())  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_knowledge(path)
    assert caught.value.line == 6 and caught.value.field == "questions"
    path.write_text("version: 1\nentries:\n  - id: a\n    title: A\n    questions: [x]\n")
    with pytest.raises(ConfigError, match=r"kb.yaml:3: answer: is required"):
        load_knowledge(path)
