"""`score_options` for backends that share nothing between options: one `score` call, regrouped."""

from collections.abc import Sequence

from worker.backends.base import Conversation, options_scores, score_each_option
from worker.backends.fake import FakeBackend

Q1: Conversation = [{"role": "user", "content": "Which?"}]
Q2: Conversation = [{"role": "user", "content": "And this one?"}]


class CountingFake(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.score_calls: list[list[str]] = []

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        self.score_calls.append(list(continuations))
        return super().score(contexts, continuations)


def test_each_option_is_a_row_of_one_score_call_and_comes_back_per_question() -> None:
    backend = CountingFake()
    scores = score_each_option(backend, [(Q1, ["(A)", "(B) longer"]), (Q2, ["x", "yy", "zzz"])])
    assert scores == [[-3.0, -10.0], [-1.0, -2.0, -3.0]]
    assert backend.score_calls == [["(A)", "(B) longer", "x", "yy", "zzz"]]
    assert backend.score_options([(Q1, ["ab"])]) == [[-2.0]]


def test_a_backend_without_the_method_is_scored_row_by_row() -> None:
    class Old:
        name = "old"
        context_length = 100

        def score(
            self, contexts: Sequence[Conversation], continuations: Sequence[str]
        ) -> list[float]:
            return [float(len(c)) for c in continuations]

    assert options_scores(Old(), [(Q1, ["a", "bbb"])]) == [[1.0, 3.0]]  # type: ignore[arg-type]
    assert score_each_option(CountingFake(), []) == []
