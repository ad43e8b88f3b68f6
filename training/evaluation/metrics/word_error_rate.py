"""Word error rate (jiwer alignment) with an explicit, documented text normalisation."""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import jiwer

_APOSTROPHES = "'\u2019\u02bc"  # ASCII, right single quotation mark, modifier letter apostrophe


@dataclass(frozen=True)
class TextNormalizer:
    """Makes transcripts comparable before scoring. In order:

    1. Unicode NFKC normalisation (full-width and compatibility forms become plain ones).
    2. Case folding to `case` ("upper", as LibriSpeech references are, or "lower"; None keeps it).
    3. With `remove_punctuation`: every Unicode punctuation character (category P*: . , ; : ! ? "
       - ( ) and also % & # @ *) becomes a space, except apostrophes inside a word, which are kept
       as "'" ("don't", "o'clock"); apostrophes at a word's edge are dropped. Hyphens therefore
       split words ("well-known" -> "well known").
    4. Whitespace runs collapse to one space; leading and trailing space is removed.

    Symbols (category S*: $ + = ...) and digits are kept: numbers are not spelled out.
    """

    case: Literal["upper", "lower"] | None = "upper"
    remove_punctuation: bool = True

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if self.remove_punctuation:
            text = "".join(_punctuation_to_space(character) for character in text)
            words = (word.strip("'") for word in text.split())
            return " ".join(word for word in words if word)
        return " ".join(text.split())


def _punctuation_to_space(character: str) -> str:
    if character in _APOSTROPHES:
        return "'"
    return " " if unicodedata.category(character).startswith("P") else character


@dataclass(frozen=True)
class WordErrorRate:
    """Corpus-level word error rate: (substitutions + deletions + insertions) / num_words, where
    num_words counts the (normalised) reference words."""

    wer: float
    substitutions: int
    deletions: int
    insertions: int
    num_words: int


def word_error_rate(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    normalize: bool | TextNormalizer = True,
) -> WordErrorRate:
    """Corpus WER over paired transcripts (errors and reference words summed over utterances).

    Args:
        references: reference transcript(s).
        hypotheses: recognised transcript(s), one per reference.
        normalize: True applies `TextNormalizer()` to both sides; pass a `TextNormalizer` to choose
            the steps; False only splits on whitespace.
    Utterances whose reference is empty count every hypothesis word as an insertion.
    """
    if isinstance(references, str):
        references = [references]
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(references)} references but {len(hypotheses)} hypotheses; "
            "pass one hypothesis per reference"
        )
    normalizer = TextNormalizer() if normalize is True else normalize or None
    if normalizer is not None:
        references = [normalizer(text) for text in references]
        hypotheses = [normalizer(text) for text in hypotheses]
    else:
        references = [" ".join(text.split()) for text in references]
        hypotheses = [" ".join(text.split()) for text in hypotheses]

    num_words = sum(len(text.split()) for text in references)
    if num_words == 0:
        raise ValueError(
            "the references contain no words (after normalisation), so the WER is undefined; "
            "score a set with at least one non-empty reference"
        )
    alignment = jiwer.process_words(references, hypotheses)
    errors = alignment.substitutions + alignment.deletions + alignment.insertions
    return WordErrorRate(
        wer=errors / num_words,
        substitutions=alignment.substitutions,
        deletions=alignment.deletions,
        insertions=alignment.insertions,
        num_words=num_words,
    )
