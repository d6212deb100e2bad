"""Goodhart watch: is the policy learning boilerplate the preference model likes?

The paper's over-trained RL-CAI models wrote "you are valid, valued, and cared for" into
every reply. Each sample-table step measures the share of completions that contain the run's
most frequent repeated word n-grams, and their mean length; the job page warns when that share
climbs while the reward does (`goodhart_warning`).
"""

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

NGRAM = 4
TOP_NGRAMS = 3
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True)
class GoodhartPoint:
    share: float  # completions containing one of the top repeated n-grams, 0..1
    mean_words: float
    top: tuple[str, ...]  # those n-grams, most frequent first
    # Completions per n-gram over the run so far (this step included): the next step's start.
    run_counts: Counter[tuple[str, ...]]


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def top_repeated(counts: Counter[tuple[str, ...]], top: int = TOP_NGRAMS) -> list[tuple[str, ...]]:
    """The `top` n-grams seen in at least two completions, most frequent first; ties break by
    the n-gram itself, so the same counts give the same top."""
    return sorted(
        (gram for gram, seen in counts.items() if seen >= 2), key=lambda g: (-counts[g], g)
    )[:top]


def goodhart_point(
    completions: Sequence[str],
    run_counts: Counter[tuple[str, ...]] | None = None,
    *,
    n: int = NGRAM,
    top: int = TOP_NGRAMS,
) -> GoodhartPoint:
    """The share of `completions` that contain one of the run's `top` most frequent n-grams.

    An n-gram counts once per completion (document frequency), and only n-grams found in at
    least two completions of the run are "repeated". `run_counts` is what earlier steps of the
    run returned; it is not changed.
    """
    per_completion = [ngrams(text, n) for text in completions]
    counts: Counter[tuple[str, ...]] = Counter(run_counts or {})
    for found in per_completion:
        counts.update(found)
    repeated = top_repeated(counts, top)
    chosen = set(repeated)
    hits = sum(1 for found in per_completion if found & chosen)
    lengths = [word_count(text) for text in completions]
    return GoodhartPoint(
        share=hits / len(completions) if completions else 0.0,
        mean_words=sum(lengths) / len(lengths) if lengths else 0.0,
        top=tuple(" ".join(gram) for gram in repeated),
        run_counts=counts,
    )


# The rule: over the last WINDOW logged points the share rose by at least MIN_RISE, never
# fell, and the reward ended higher than it began.
WINDOW = 3
MIN_RISE = 0.1


def goodhart_warning(
    shares: Sequence[float], rewards: Sequence[float], *, window: int = WINDOW
) -> bool:
    """Whether the repeated-n-gram share climbs while the reward does, at the last points.

    `shares` and `rewards` are the values at the same logged steps, oldest first.
    """
    if len(shares) < window or len(rewards) < window:
        return False
    share, reward = list(shares[-window:]), list(rewards[-window:])
    never_fell = all(later >= earlier for earlier, later in pairwise(share))
    return never_fell and share[-1] - share[0] >= MIN_RISE and reward[-1] > reward[0]
