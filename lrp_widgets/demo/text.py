"""Generated review snippets with ground-truth evidence tokens, and their word-level tokenizer.

Every sequence is a bag of words from a small fixed vocabulary: neutral *distractor* words ("the",
"film", "was", "very", ...) and, in a ``negative`` or ``positive`` sequence, one to three
*evidence* words of that sentiment placed at random positions. A ``neutral`` sequence has no
evidence word. Distractors never carry sentiment, so the label is a function of the evidence
tokens alone and the evidence mask is the right answer for token localisation.

The ``neutral`` class is what makes both sentiments count: with only two classes a model can
learn "positive if a positive word occurs, else negative" and ignore the negative words, so
their evidence mask would not describe what it uses.

Everything is drawn with numpy from a local :class:`numpy.random.Generator`: the same arguments
always give the same sequences, and global random state is never read or changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

TEXT_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
NEUTRAL_LABEL = 1

UNKNOWN_TOKEN = "[UNK]"

NEUTRAL_WORDS: tuple[str, ...] = (
    "the", "a", "this", "that", "it", "i", "we", "they", "movie", "film", "plot", "story",
    "actor", "actress", "scene", "music", "ending", "director", "cast", "script", "camera",
    "dialogue", "was", "is", "were", "seemed", "felt", "looked", "and", "but", "with", "of",
    "in", "at", "very", "quite", "rather", "really", "saw", "watched", "yesterday", "again",
    "night", "time",
)  # fmt: skip

EVIDENCE_WORDS: dict[str, tuple[str, ...]] = {
    "negative": (
        "bad", "awful", "terrible", "boring", "dull", "poor", "dreadful", "weak", "clumsy",
        "tedious", "ugly", "silly",
    ),
    "positive": (
        "good", "great", "excellent", "wonderful", "brilliant", "superb", "delightful",
        "charming", "moving", "fun", "beautiful", "clever",
    ),
}  # fmt: skip

VOCABULARY: tuple[str, ...] = (
    UNKNOWN_TOKEN,
    *NEUTRAL_WORDS,
    *(word for words in EVIDENCE_WORDS.values() for word in words),
)

MIN_EVIDENCE = 1
MAX_EVIDENCE = 3
DEFAULT_LENGTH = 16
MIN_LENGTH = MAX_EVIDENCE


class WordTokenizer:
    """A word-level tokenizer over a fixed vocabulary: lower-cased, split on white space.

    Words outside the vocabulary map to ``[UNK]`` (id 0). There is no padding token: the demo
    model takes sequences of any length up to its ``max_length`` without padding.

    Parameters
    ----------
    vocabulary:
        The tokens, in id order; must be unique and contain ``[UNK]``.
    """

    def __init__(self, vocabulary: Sequence[str] = VOCABULARY) -> None:
        self.vocabulary = tuple(vocabulary)
        self.ids = {token: index for index, token in enumerate(self.vocabulary)}
        if len(self.ids) != len(self.vocabulary):
            raise ValueError("vocabulary tokens must be unique")
        if UNKNOWN_TOKEN not in self.ids:
            raise ValueError(f"vocabulary must contain the unknown token {UNKNOWN_TOKEN!r}")
        self.unknown_id = self.ids[UNKNOWN_TOKEN]

    def __len__(self) -> int:
        return len(self.vocabulary)

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into vocabulary tokens (unknown words become ``[UNK]``)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return [word if word in self.ids else UNKNOWN_TOKEN for word in text.lower().split()]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: one id per white-space separated word."""
        return [self.ids[token] for token in self.tokenize(text)]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """The token string of every id.

        Raises
        ------
        ValueError
            If an id is outside ``[0, len(tokenizer))``.
        """
        tokens = []
        for index in ids:
            index = int(index)
            if not 0 <= index < len(self.vocabulary):
                raise ValueError(f"token id {index} is outside [0, {len(self.vocabulary)})")
            tokens.append(self.vocabulary[index])
        return tokens

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a sequence of ids: its tokens joined by single spaces."""
        return " ".join(self.convert_ids_to_tokens(ids))


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _word_ids(words: Sequence[str]) -> np.ndarray:
    return np.array([VOCABULARY.index(word) for word in words], dtype=np.int64)


NEUTRAL_IDS = _word_ids(NEUTRAL_WORDS)
# The ids of the evidence words of each sentiment, keyed by its label (index into TEXT_CLASSES).
EVIDENCE_IDS: dict[int, np.ndarray] = {
    TEXT_CLASSES.index(label): _word_ids(words) for label, words in EVIDENCE_WORDS.items()
}


def generate_text(
    n: int, seed: int, length: int = DEFAULT_LENGTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` token sequences of ``length`` tokens, deterministically from ``seed``.

    Classes are balanced (counts differ by at most one) and shuffled. A ``negative`` or
    ``positive`` sequence holds ``MIN_EVIDENCE`` to ``MAX_EVIDENCE`` evidence words of its class
    at distinct random positions, a ``neutral`` one none; every other token is a neutral word
    drawn uniformly.

    Parameters
    ----------
    n:
        Number of sequences (``>= 0``).
    seed:
        Non-negative integer seed of the local random generator.
    length:
        Tokens per sequence (``>= MAX_EVIDENCE``).

    Returns
    -------
    ``(ids, labels, evidence)``: ``ids`` int64 ``[n, length]`` (indices into :data:`VOCABULARY`),
    ``labels`` int64 ``[n]`` indexing :data:`TEXT_CLASSES`, ``evidence`` bool ``[n, length]``,
    true on the evidence tokens (all false in a ``neutral`` sequence).

    Raises
    ------
    TypeError
        If ``n``, ``seed`` or ``length`` is not an integer.
    ValueError
        If ``n`` or ``seed`` is negative or ``length`` is below ``MAX_EVIDENCE``.
    """
    n = _check_count("n", n, 0)
    seed = _check_count("seed", seed, 0)
    length = _check_count("length", length, MIN_LENGTH)
    rng = np.random.default_rng(seed)

    labels = rng.permutation(np.arange(n) % len(TEXT_CLASSES)).astype(np.int64)
    counts = rng.integers(MIN_EVIDENCE, MAX_EVIDENCE + 1, size=n)
    counts[labels == NEUTRAL_LABEL] = 0
    # The evidence positions: the `count` smallest of `length` random keys (distinct, uniform).
    ranks = np.argsort(np.argsort(rng.random((n, length)), axis=1), axis=1)
    evidence = ranks < counts[:, None]

    ids = NEUTRAL_IDS[rng.integers(0, len(NEUTRAL_IDS), size=(n, length))]
    choice = rng.random((n, length))  # which evidence word, as a fraction of the word list
    for label, words in EVIDENCE_IDS.items():
        evidence_ids = words[(choice * len(words)).astype(np.int64)]
        np.copyto(ids, evidence_ids, where=evidence & (labels == label)[:, None])
    return ids, labels, evidence


def label_from_evidence(ids: np.ndarray) -> np.ndarray:
    """The ground-truth rule: the sentiment whose evidence words a sequence contains.

    Neutral words are ignored: a sequence without evidence words is ``neutral``; one with words
    of both sentiments (never drawn by :func:`generate_text`) gets ``-1``.

    Parameters
    ----------
    ids:
        Token ids ``[n, length]``.

    Returns
    -------
    int64 ``[n]``: an index into :data:`TEXT_CLASSES`, or ``-1``.
    """
    ids = np.asarray(ids)
    sentiments = np.array(list(EVIDENCE_IDS), dtype=np.int64)
    present = np.stack([np.isin(ids, EVIDENCE_IDS[k]).any(axis=1) for k in sentiments.tolist()])
    labels = sentiments[np.argmax(present, axis=0)]
    labels[present.sum(axis=0) == 0] = NEUTRAL_LABEL
    labels[present.sum(axis=0) > 1] = -1
    return labels
