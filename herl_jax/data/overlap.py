"""Does a prompt appear in a benchmark? Exact match after normalization, or a near duplicate.

Texts are normalized (Unicode NFKC, case-folded, runs of non-word characters made one space). Two
texts overlap when their normalized forms are equal, or when at least half of the word n-grams of
the shorter one occur in the other (a prompt copied into a longer one, or lightly edited).
"""

from __future__ import annotations

import collections
import re
import unicodedata
from typing import Iterable

NGRAM = 8
MIN_SHARED = 0.5


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def ngrams(normalized: str, n: int = NGRAM) -> set[str]:
    words = normalized.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


class OverlapIndex:
    """Benchmark texts indexed by normalized form and by word n-gram."""

    def __init__(self, texts: Iterable[str]):
        self._exact: set[str] = set()
        self._gram_counts: list[int] = []
        self._by_gram: dict[str, list[int]] = collections.defaultdict(list)
        for text in texts:
            normalized = normalize(text)
            if normalized in self._exact:
                continue
            self._exact.add(normalized)
            grams = ngrams(normalized)
            for gram in grams:
                self._by_gram[gram].append(len(self._gram_counts))
            self._gram_counts.append(len(grams))

    def overlaps(self, text: str) -> bool:
        normalized = normalize(text)
        if normalized in self._exact:
            return True
        grams = ngrams(normalized)
        shared = collections.Counter(i for gram in grams for i in self._by_gram.get(gram, ()))
        return any(count >= MIN_SHARED * min(len(grams), self._gram_counts[i]) for i, count in shared.items())
