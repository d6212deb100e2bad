"""How far an evaluation's judge agrees with people, per suite: Cohen's kappa, the raw share of
agreement and the number of labels, for the pairwise comparisons, the refusal classes and
evasiveness.

Each person's label is one item rated by two raters, the judge and that person: a comparison two
people labelled counts twice, once against each, so every label a person gives moves the numbers.
Items the judge did not decide (a skipped comparison, a reply it could not class) are left out.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.recipe.agreement import cohens_kappa, interpret

COMPARISONS = "comparisons"
CLASSES = "refusal classes"
EVASIVE = "evasiveness"
KINDS = (COMPARISONS, CLASSES, EVASIVE)


def judge_choice(prob_a: float | None) -> str | None:
    """The judge's decision as a person would give it: "A" above 0.5, "B" below, "tie" at
    exactly 0.5 (as the AI feedback labels); None when it skipped the comparison."""
    if prob_a is None:
        return None
    return "A" if prob_a > 0.5 else "B" if prob_a < 0.5 else "tie"


@dataclass(frozen=True)
class Kappa:
    n: int  # labels that entered
    agree: int  # of them, the ones where the person gave the judge's answer
    kappa: float | None  # None when there is no label

    @property
    def raw(self) -> float | None:
        return self.agree / self.n if self.n else None

    @property
    def words(self) -> str:
        return interpret(self.kappa)


def kappa_of(pairs: Sequence[tuple[str, str]]) -> Kappa:
    """Kappa, agreements and n of (judge's answer, person's answer) pairs."""
    return Kappa(len(pairs), sum(a == b for a, b in pairs), cohens_kappa(pairs))


@dataclass(frozen=True)
class SuiteAgreement:
    suite_id: int | None  # None: all the run's suites together
    kind: str  # one of KINDS
    result: Kappa


def agreement_by_suite(
    suite_ids: Sequence[int],
    comparisons: Iterable[tuple[int, float | None, str]],
    replies: Iterable[tuple[int, str | None, bool, str, bool]],
) -> list[SuiteAgreement]:
    """Per suite of the run (in `suite_ids`' order, then all suites together when there are
    several), a comparisons row and a refusal classes row, n 0 where nothing is labelled yet
    (so the page can still offer to label it), and an evasiveness row once replies are.

    `comparisons`: (suite id, the judge's P(A), the person's "A" | "B" | "tie"), one per label.
    `replies`: (suite id, the judge's class or None, the judge's evasive, the person's class,
    the person's evasive), one per label."""
    pairs: dict[tuple[int | None, str], list[tuple[str, str]]] = {}

    def add(suite_id: int, kind: str, pair: tuple[str, str]) -> None:
        pairs.setdefault((suite_id, kind), []).append(pair)
        pairs.setdefault((None, kind), []).append(pair)

    for suite_id, prob_a, choice in comparisons:
        judged = judge_choice(prob_a)
        if judged is not None:
            add(suite_id, COMPARISONS, (judged, choice))
    for suite_id, judge_class, judge_evasive, person_class, person_evasive in replies:
        if judge_class is None:
            continue
        add(suite_id, CLASSES, (judge_class, person_class))
        add(
            suite_id, EVASIVE, ("yes" if judge_evasive else "no", "yes" if person_evasive else "no")
        )
    scopes: list[int | None] = list(dict.fromkeys(suite_ids))
    if len(scopes) > 1:
        scopes.append(None)
    out: list[SuiteAgreement] = []
    for scope in scopes:
        kinds = [COMPARISONS, CLASSES] + ([EVASIVE] if (scope, EVASIVE) in pairs else [])
        out.extend(
            SuiteAgreement(scope, kind, kappa_of(pairs.get((scope, kind), []))) for kind in kinds
        )
    return out
