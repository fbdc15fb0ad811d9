"""PII redaction of transcript words, before anything is published, stored or scored.

Works on the recognizer's words, so written and spoken forms are both caught:

- digit runs: consecutive words that are digits ("4111", "555-123-4567", "4,") or digit words
  ("four", "oh", "double five"), joined across words, then classified by length and shape:
  a card number (13-19 digits passing the Luhn check), a US SSN (9 digits grouped 3-2-4 or
  after "social security"/"ssn", in the valid ranges), a phone number (10 digits, 11 starting
  with 1, or 7 grouped 3-4), or any other run of at least `min_digits` (8) as an account number;
  right after a cue ("social security", "card", "account") a shorter run of `cued_min_digits` (5)
  is that kind, so a number the recognizer partly misheard is still caught;
- e-mail addresses, written (`mark.hill@mailbox.com`) or spoken ("mark dot hill at mailbox dot
  com").

Amounts (`$1,250.00`, `1,250,000`), decimals, times (`3:30`), ISO dates and short numbers (the
last four digits of a card, a zip code, an order number under `min_digits`) are left alone. Each
redacted run of words becomes one placeholder such as `[CARD]`, keeping the first word's start
and the last word's end.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.types import Word


class PiiKind(enum.StrEnum):
    CARD = "card"
    SSN = "ssn"
    PHONE = "phone"
    EMAIL = "email"
    ACCOUNT = "account"

    @property
    def placeholder(self) -> str:
        return f"[{self.value.upper()}]"


@dataclass(frozen=True, slots=True)
class RedactConfig:
    enabled: bool = True
    kinds: frozenset[PiiKind] = frozenset(PiiKind)
    min_digits: int = 8  # a run of this many digits is redacted whatever its shape
    cued_min_digits: int = 5  # after "social security", "card", "account": fewer digits suffice


@dataclass(frozen=True, slots=True)
class Redacted:
    """One output word: its text and the source words it stands for (inclusive)."""

    text: str
    first: int
    last: int
    kind: PiiKind | None = None


DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
TEEN_WORDS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
TENS_WORDS = {
    "twenty": "2_",
    "thirty": "3_",
    "forty": "4_",
    "fourty": "4_",
    "fifty": "5_",
    "sixty": "6_",
    "seventy": "7_",
    "eighty": "8_",
    "ninety": "9_",
}  # "_": a tens digit whose unit may follow ("forty five" 45, "forty" 40)
REPEAT_WORDS = {"double": 2, "triple": 3}
TLDS = r"(?:com|net|org|edu|gov|io|uk|ca|info|biz)"
_EMAIL = re.compile(
    rf"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # written
    rf"|\b\w+(?:\s+(?:dot|underscore|dash)\s+\w+)*\s+at\s+\w+(?:(?:\s+dot\s+|\s*\.\s*)\w+)*"
    rf"(?:\s+dot\s+|\s*\.\s*){TLDS}\b",  # spoken, or spoken with a written domain
    re.IGNORECASE,
)
# an address still being spoken at the end of an interim ("mark dot hill at mailbox dot")
_EMAIL_OPEN = re.compile(
    r"(?:[\w.+-]+@[\w.-]*"  # written, the domain still coming
    r"|\b\w+(?:\s+(?:dot|underscore|dash)\s+\w+)*\s+at"
    r"(?:\s+\w+(?:(?:\s+dot\s+|\s*\.\s*)\w+)*(?:\s+dot|\s*\.)?)?)\s*$",
    re.IGNORECASE,
)
_EMAIL_CUES = {"email", "e-mail", "mail", "address"}
_EDGE = "\"'\u201c\u201d\u2018\u2019()[]{}<>,;:!?."
_DIGITS = re.compile(r"\d+(?:[-./]\d+)*")
_AMOUNT = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d{1,2}|\d{4}-\d{2}-\d{2}")
# what the recognizer makes of digits read out one by one: a short "decimal" beside another
# number ("1.488. 0.3. 4.3.") is digits, not an amount, and so is a number with one letter inside
# it ("6M89": a digit misheard as a letter)
_SHORT_DECIMAL = re.compile(r"\d{1,3}\.\d{1,2}")
_GARBLED = re.compile(r"\d+[a-z]\d+")
_SSN_CONTEXT = {"social", "ssn", "security"}
# a run of `cued_min_digits` or more right after one of these words is that kind of number, even
# when the recognizer misheard some of its digits ("social security number is one two three four
# times six seven eight": a partial SSN is still an SSN); a last four ("card ending 4410") stays
_CUES = (
    (PiiKind.SSN, _SSN_CONTEXT),
    (PiiKind.CARD, {"card", "credit", "debit", "visa", "mastercard", "amex"}),
    (PiiKind.ACCOUNT, {"account", "routing", "iban"}),
)
# where a spoken address's local part stops when read backwards ("my email is mark dot hill at")
_LOCAL_STOP = {"is", "it's", "email", "e-mail", "address", "my", "the", "to", "at", "and", "was"}


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def valid_ssn(d: str) -> bool:
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


class Redactor:
    def __init__(self, config: RedactConfig | None = None) -> None:
        self.config = config or RedactConfig()

    def words(self, words: Sequence[Word]) -> tuple[list[Word], list[PiiKind]]:
        """Redacted final words (times and the lowest probability of what was merged kept)."""
        out, kinds = [], []
        for r in self.tokens([w.text for w in words]):
            src = words[r.first : r.last + 1]
            prob = min(w.probability for w in src)
            out.append(Word(r.text, src[0].start, src[-1].end, prob))
            if r.kind is not None:
                kinds.append(r.kind)
        return out, kinds

    def text(self, text: str, open_end: bool = False) -> str:
        return " ".join(r.text for r in self.tokens(text.split(), open_end))

    def tokens(self, tokens: Sequence[str], open_end: bool = False) -> list[Redacted]:
        """`open_end`: the text may still grow (an interim), so a run of 4 or more digits at
        its end is masked as an account number until the final shows what it is."""
        marks: list[PiiKind | None] = [None] * len(tokens)
        if self.config.enabled and tokens:
            runs = self._digit_runs(tokens, open_end)
            for found, first, last in self._email(tokens, open_end) + runs:
                if found in self.config.kinds:
                    for i in range(first, last + 1):
                        marks[i] = marks[i] or found
        out: list[Redacted] = []
        for i, (token, kind) in enumerate(zip(tokens, marks, strict=True)):
            if kind is None:
                out.append(Redacted(token, i, i))
            elif out and out[-1].kind is kind and out[-1].last == i - 1:
                prev = out[-1]
                out[-1] = Redacted(kind.placeholder + _tail(token), prev.first, i, kind)
            else:
                out.append(Redacted(kind.placeholder + _tail(token), i, i, kind))
        return out

    def _email(self, tokens: Sequence[str], open_end: bool) -> list[tuple[PiiKind, int, int]]:
        """Addresses, and one still being spoken at the end of the text (a TLD yet to come, or
        in the next utterance) when it reads like one ("dot", "@"); in an interim (`open_end`),
        also when an e-mail was just mentioned ("my email is mark at")."""
        text, starts = _join(tokens)
        matches = list(_EMAIL.finditer(text))
        m = _EMAIL_OPEN.search(text)
        if m and not any(x.end() > m.start() for x in matches):
            near = tokens[max(0, _token_at(starts, m.start()) - 6) :]
            spelled = re.search(r"@|\b(?:dot|underscore|dash)\b", m.group(0), re.IGNORECASE)
            cued = open_end and {t.lower().strip(_EDGE) for t in near} & _EMAIL_CUES
            if spelled or cued:
                matches.append(m)
        found = []
        for m in matches:
            first = _token_at(starts, m.start())
            last = _token_at(starts, m.end() - 1)
            if "@" not in m.group(0):
                # a misheard local part ("marked not till at ...") is part of the address too
                for _ in range(3):
                    prev = tokens[first - 1] if first else ""
                    if not prev or prev.lower().strip(_EDGE) in _LOCAL_STOP or _tail(prev):
                        break
                    first -= 1
            found.append((PiiKind.EMAIL, first, last))
        return found

    def _digit_runs(self, tokens: Sequence[str], open_end: bool) -> list[tuple[PiiKind, int, int]]:
        vals: list[str | None] = []  # each token's digits, "" for a bare "-", None for words
        repeat = 1
        for token in tokens:
            bare = token.strip(_EDGE + "-").lower()  # whisper writes "4 -5 -3" and "thirty -nine"
            digits = _number_words(bare)
            if digits is not None:
                digits *= repeat
            elif _DIGITS.fullmatch(bare) and not _AMOUNT.fullmatch(bare):
                digits = bare  # "$4000" or "3:30" never match: only digits and - . /
            elif _GARBLED.fullmatch(bare):
                digits = re.sub(r"[a-z]", "", bare)
            elif bare in REPEAT_WORDS or token.strip() == "-":
                digits = ""
            repeat = REPEAT_WORDS.get(bare, 1)
            vals.append(digits)
        decimals = [i for i, t in enumerate(tokens) if _SHORT_DECIMAL.fullmatch(t.strip(_EDGE))]
        for order in (decimals, decimals[::-1]):  # spread along a run both ways
            for i in order:
                if any(0 <= j < len(vals) and vals[j] for j in (i - 1, i + 1)):
                    vals[i] = tokens[i].strip(_EDGE)
        # runs of number tokens; one misheard word between two numbers ("four times six") is
        # bridged, so that a slip of the recognizer does not split a number into safe pieces
        runs: list[list[int]] = []
        for i, v in enumerate(vals):
            if v is not None:
                bridged = runs and runs[-1][-1] == i - 2 and vals[i - 1] is None
                if runs and (runs[-1][-1] == i - 1 or bridged):
                    runs[-1].append(i)
                else:
                    runs.append([i])
        found = []
        for idx in runs:
            pieces: list[list[int]] = [[idx[0]]]
            for a, b in itertools.pairwise(idx):
                if b == a + 1:
                    pieces[-1].append(b)
                else:
                    pieces.append([b])
            whole = self._kind(idx, vals, tokens, open_end)
            if whole is not None or len(pieces) == 1:
                found.append((whole, idx[0], idx[-1]))
            else:  # the bridge made nothing of it: the pieces alone
                found += [(self._kind(p, vals, tokens, open_end), p[0], p[-1]) for p in pieces]
        return [(kind, a, b) for kind, a, b in found if kind is not None]

    def _kind(
        self, group: list[int], vals: list[str | None], tokens: Sequence[str], open_end: bool
    ) -> PiiKind | None:
        run = [(i, vals[i] or "") for i in group]
        kind = self._classify(run, tokens)
        if kind is None and open_end and group[-1] == len(tokens) - 1 and _digit_count(run) >= 4:
            return PiiKind.ACCOUNT  # an interim's number that may still grow
        return kind

    def _classify(self, run: list[tuple[int, str]], tokens: Sequence[str]) -> PiiKind | None:
        d = _fold(run)
        groups = [len(g) for _, digits in run for g in re.findall(r"\d+", digits)]
        n = len(d)
        before = {t.strip(_EDGE).lower() for t in tokens[max(0, run[0][0] - 6) : run[0][0]]}
        if n == 9 and (groups == [3, 2, 4] or before & _SSN_CONTEXT) and valid_ssn(d):
            return PiiKind.SSN
        if 13 <= n <= 19 and luhn(d):
            return PiiKind.CARD
        if n == 10 or (n == 11 and d[0] == "1") or (n == 7 and groups == [3, 4]):
            return PiiKind.PHONE
        if n >= self.config.cued_min_digits:
            for kind, cues in _CUES:
                if before & cues and not (kind is PiiKind.SSN and n == 9 and not valid_ssn(d)):
                    return kind
        if n >= self.config.min_digits:
            return PiiKind.ACCOUNT
        return None


def _number_words(bare: str) -> str | None:
    """The digits of a spoken number word ("four", "oh", "fourteen", "thirty-nine")."""
    parts = [p for p in bare.split("-") if p]
    out = []
    for p in parts:
        digits = DIGIT_WORDS.get(p) or TEEN_WORDS.get(p) or TENS_WORDS.get(p)
        if digits is None:
            return None
        out.append(digits)
    return "".join(out) or None


def _fold(run: list[tuple[int, str]]) -> str:
    """A run's digits: "forty" + "five" is 45, "forty" alone 40."""
    joined = re.sub(r"[^\d_]", "", "".join(digits for _, digits in run))
    return re.sub(r"_([1-9])", r"\1", joined).replace("_", "0")


def _digit_count(run: list[tuple[int, str]]) -> int:
    return len(_fold(run))


def _tail(token: str) -> str:
    """Sentence punctuation that ended the last redacted word, kept after the placeholder."""
    m = re.search(r"[.,;:!?]+$", token)
    return m.group(0) if m else ""


def _join(tokens: Sequence[str]) -> tuple[str, list[int]]:
    starts, at = [], 0
    for t in tokens:
        starts.append(at)
        at += len(t) + 1
    return " ".join(tokens), starts


def _token_at(starts: list[int], offset: int) -> int:
    return bisect.bisect_right(starts, offset) - 1
