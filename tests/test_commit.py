"""The partial-transcript commit policy: a committed word never changes."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.speech.commit import CommitPolicy, normalize_word
from pipeline.types import Word

VOCAB = ["i", "want", "to", "cancel", "my", "contract", "today", "please", "now", "the", "bill"]


def test_two_agreeing_passes_commit_their_common_prefix():
    p = CommitPolicy()
    first = p.update(["I", "want", "to", "can"])
    assert first.committed == () and first.tail == ("I", "want", "to", "can")
    second = p.update(["I", "want", "to", "cancel", "my"])
    assert second.committed == ("I", "want", "to") and second.tail == ("cancel", "my")
    third = p.update(["i", "want", "to", "cancel", "my", "contract"])
    assert third.committed == ("I", "want", "to", "cancel", "my")
    assert third.tail == ("contract",)


def test_comparison_ignores_case_and_punctuation_and_takes_the_newer_form():
    p = CommitPolicy()
    p.update(["Hello,", "there"])
    out = p.update(["hello", "there."])
    assert out.committed == ("hello", "there.")
    later = p.update(["Hello", "there!", "friend"])
    assert later.committed == ("hello", "there.")  # once committed, the form stays


def test_a_disagreeing_pass_commits_nothing_new():
    p = CommitPolicy()
    p.update(["the", "bill", "is"])
    p.update(["the", "bill", "is", "high"])
    out = p.update(["the", "bill", "is", "quite", "high"])
    assert out.committed == ("the", "bill", "is")
    assert out.tail == ("quite", "high")
    assert out.newly_committed == 0


def test_a_pass_that_rewrites_committed_words_cannot_change_them():
    p = CommitPolicy()
    p.update(["the", "bill", "is"])
    p.update(["the", "bill", "is", "high"])
    out = p.update(["the", "build", "is", "high"])
    assert out.committed[:3] == ("the", "bill", "is")


def test_final_keeps_committed_words_and_takes_timings():
    p = CommitPolicy()
    p.update(["I", "want", "to"])
    p.update(["I", "want", "to", "cancel"])
    final = [
        Word("I", 1.0, 1.1),
        Word("wanna", 1.1, 1.4),
        Word("to", 1.4, 1.5),
        Word("cancel.", 1.5, 2.0),
    ]
    words = p.finalize(final, 0.9, 2.2)
    assert [w.text for w in words] == ["I", "want", "to", "cancel."]
    assert words[0].start == 1.0 and words[2].start == 1.4
    assert 1.1 <= words[1].start < words[1].end <= 1.4  # untimed committed word fits the gap


def test_final_without_committed_words_is_the_final_pass():
    final = [Word("yes", 0.1, 0.3)]
    assert CommitPolicy().finalize(final, 0.0, 0.5) == final


hypotheses = st.lists(
    st.lists(st.sampled_from([*VOCAB, "Cancel,", "My"]), min_size=0, max_size=12),
    min_size=1,
    max_size=15,
)


@settings(max_examples=300, deadline=None)
@given(hypotheses, st.integers(2, 3))
def test_committed_prefix_only_grows_over_random_partials(seq, agreement):
    p = CommitPolicy(agreement)
    before: tuple[str, ...] = ()
    for hyp in seq:
        out = p.update(hyp)
        assert out.committed[: len(before)] == before  # never rewritten
        assert len(out.committed) == len(before) + out.newly_committed
        before = out.committed


@st.composite
def growing_sentence(draw):
    """Partials of a sentence as it is spoken: a growing prefix with a noisy last word or two."""
    sentence = draw(st.lists(st.sampled_from(VOCAB), min_size=3, max_size=14))
    partials = []
    for n in range(1, len(sentence) + 1):
        noise = draw(st.lists(st.sampled_from(VOCAB), max_size=2))
        partials.append(sentence[:n] + noise)
    final_words = draw(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=16))
    return partials, final_words


@settings(max_examples=300, deadline=None)
@given(growing_sentence())
def test_final_starts_with_everything_committed(case):
    partials, final_texts = case
    p = CommitPolicy()
    for hyp in partials:
        p.update(hyp)
    final = [Word(t, i * 0.3, i * 0.3 + 0.25) for i, t in enumerate(final_texts)]
    words = p.finalize(final, 0.0, 10.0)
    assert [w.text for w in words[: len(p.committed)]] == p.committed
    starts = [w.start for w in words]
    assert starts == sorted(starts)  # timings stay in order, committed words included
    assert all(w.start <= w.end for w in words)


def test_normalize_word():
    assert normalize_word("Don't!") == "don't"
    assert normalize_word("...") == ""
