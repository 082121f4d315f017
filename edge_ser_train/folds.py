"""Speaker-independent splits: folds by speaker, never by file (a file split leaks the speaker and
inflates accuracy by 15-25 points, docs/DESIGN.md §9), plus held-out speakers for early stopping."""

from __future__ import annotations

from collections.abc import Sequence

from edge_ser_train.errors import TrainingError


def speaker_folds(speakers: Sequence[str], k: int) -> list[list[str]]:
    """`k` disjoint test-speaker groups: sorted speakers dealt round-robin (RAVDESS actors 01-20 in
    5 folds: {01,06,11,16}, {02,07,12,17}, ... = two male and two female actors per fold)."""
    unique = sorted({str(s) for s in speakers})
    if not 2 <= k <= len(unique):
        raise TrainingError(f"need 2 <= k <= number of speakers ({len(unique)}), got k={k}")
    return [unique[i::k] for i in range(k)]


def validation_speakers(train_speakers: Sequence[str], n: int = 2, offset: int = 0) -> list[str]:
    """`n` training speakers kept out of training to decide when to stop: consecutive in sorted order
    (RAVDESS: one odd = male and one even = female actor), moved along by `offset` per fold."""
    unique = sorted(set(train_speakers))
    if len(unique) <= n:
        raise TrainingError(f"need more than {n} training speakers to hold {n} out for early stopping")
    start = (offset * n) % (len(unique) - n + 1)
    return unique[start : start + n]
