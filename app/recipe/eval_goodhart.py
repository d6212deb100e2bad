"""Goodhart watch in an evaluation run: how often each model's replies contain the run's most
frequent repeated n-grams, and how long its replies are.

The same measures as RL's (app/recipe/goodhart.py), taken over an evaluation instead of a
training run: the n-grams are those most repeated across every reply of the evaluation, all
models pooled, so each model's share is measured against the same phrases. A policy that
learnt boilerplate its preference model likes ("you are valid, valued, and cared for") shows a
much higher share than the policy it started from, and often longer replies.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from app.recipe.goodhart import NGRAM, TOP_NGRAMS, ngrams, top_repeated, word_count


@dataclass(frozen=True)
class Reply:
    model_id: int
    suite_id: int
    text: str


@dataclass(frozen=True)
class WatchRow:
    model_id: int
    suite_id: int | None  # None: all the run's suites
    replies: int
    with_top: int  # replies containing one of the top n-grams
    share: float  # with_top / replies, 0..1 (0 with no replies)
    mean_words: float


@dataclass(frozen=True)
class ReplyWatch:
    top: tuple[str, ...]  # the evaluation's most repeated n-grams, most frequent first
    rows: tuple[WatchRow, ...]


def reply_watch(
    replies: Sequence[Reply],
    models: Sequence[int],
    suites: Sequence[int],
    *,
    n: int = NGRAM,
    top: int = TOP_NGRAMS,
) -> ReplyWatch:
    """Per model over all suites, then (with more than one suite) per model and suite: the share
    of its replies containing one of the evaluation's `top` repeated n-grams, and its mean
    reply length in words. An n-gram counts once per reply; "repeated": in two replies or more.
    """
    found = [ngrams(reply.text, n) for reply in replies]
    counts: Counter[tuple[str, ...]] = Counter()
    for grams in found:
        counts.update(grams)
    chosen = set(top_repeated(counts, top))
    hit = [bool(grams & chosen) for grams in found]
    words = [word_count(reply.text) for reply in replies]

    def row(model: int, suite: int | None) -> WatchRow:
        mine = [
            i
            for i, reply in enumerate(replies)
            if reply.model_id == model and (suite is None or reply.suite_id == suite)
        ]
        with_top = sum(1 for i in mine if hit[i])
        return WatchRow(
            model_id=model,
            suite_id=suite,
            replies=len(mine),
            with_top=with_top,
            share=with_top / len(mine) if mine else 0.0,
            mean_words=sum(words[i] for i in mine) / len(mine) if mine else 0.0,
        )

    scopes: list[int | None] = [None, *suites] if len(suites) > 1 else [None]
    return ReplyWatch(
        top=tuple(" ".join(gram) for gram in top_repeated(counts, top)),
        rows=tuple(row(model, suite) for suite in scopes for model in models),
    )


def watch_json(watch: ReplyWatch) -> dict[str, Any]:
    """The watch as plain JSON, for a run's stored result."""
    return {"top": list(watch.top), "rows": [asdict(row) for row in watch.rows]}


def watch_from_json(data: Mapping[str, Any]) -> ReplyWatch:
    """The watch `watch_json` stored."""
    return ReplyWatch(
        top=tuple(str(gram) for gram in data["top"]),
        rows=tuple(WatchRow(**row) for row in data["rows"]),
    )
