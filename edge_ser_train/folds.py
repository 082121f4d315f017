"""Speaker-independent splits: folds by speaker, never by file (a file split leaks the speaker and
inflates accuracy by 15-25 points, docs/DESIGN.md §9), plus held-out speakers for early stopping.

With several corpora, speakers are dealt out corpus by corpus, so that every corpus with at least
as many speakers as folds has test speakers in every fold and its own speaker-independent figure.
A corpus of a single speaker (the shared TESS copy: OAF only) cannot be split by speaker at all:
it is kept in the training side of every fold and has no cross-validation figure (its honest
figure is the leave-one-corpus-out one, `corpus_splits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from edge_ser_train.corpora import corpus_of
from edge_ser_train.errors import TrainingError


def by_corpus(speakers: Sequence[str]) -> dict[str, list[str]]:
    """Sorted unique speakers grouped by corpus, corpora in sorted order."""
    unique = sorted({str(s) for s in speakers}, key=lambda s: (corpus_of(s), s))
    return {corpus: list(group) for corpus, group in groupby(unique, key=corpus_of)}


def training_only_speakers(speakers: Sequence[str]) -> list[str]:
    """Speakers of corpora that have only one: no fold can test them on a speaker never trained on."""
    return sorted(s for group in by_corpus(speakers).values() if len(group) == 1 for s in group)


def speaker_folds(speakers: Sequence[str], k: int) -> list[list[str]]:
    """`k` disjoint test-speaker groups: each corpus's sorted speakers dealt round-robin, the deal
    carrying on from one corpus to the next (RAVDESS actors 01-20 in 5 folds: {01,06,11,16},
    {02,07,12,17}, ... = two male and two female actors per fold; EmoDB's five speakers after them
    then land one per fold). Speakers of one-speaker corpora are in no test group."""
    testable = [s for group in by_corpus(speakers).values() if len(group) > 1 for s in group]
    if not 2 <= k <= len(testable):
        raise TrainingError(f"need 2 <= k <= number of speakers in corpora of two or more speakers "
                            f"({len(testable)}), got k={k}")
    return [sorted(testable[i::k]) for i in range(k)]


def corpus_splits(speakers: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Leave-one-corpus-out: (corpus, its speakers) per corpus, to be tested after training on all
    the others: the nearest stand-in for a device that hears people no corpus has."""
    groups = by_corpus(speakers)
    if len(groups) < 2:
        raise TrainingError(f"leave-one-corpus-out needs two or more corpora, got {', '.join(groups) or 'none'}")
    return list(groups.items())


def validation_speakers(train_speakers: Sequence[str], n: int = 2, offset: int = 0) -> list[str]:
    """`n` training speakers kept out of training to decide when to stop: consecutive in sorted order
    (RAVDESS: one odd = male and one even = female actor), moved along by `offset` per fold."""
    unique = sorted(set(train_speakers))
    if n == 0:  # nothing held out; no speakers needed to hold it
        return []
    if len(unique) <= n:
        raise TrainingError(f"need more than {n} training speakers to hold {n} out for early stopping")
    start = (offset * n) % (len(unique) - n + 1)
    return unique[start : start + n]
