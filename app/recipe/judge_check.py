"""A judge checked against people: accuracy, the confusion matrix and Cohen's kappa, for any
number of classes (the refusal judge has three: complies, refuses, partly refuses).

Kappa is `app.recipe.agreement.cohens_kappa` (exact fractions, and its convention when both
raters used one class only), with the people as the first rater and the judge as the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.recipe.agreement import cohens_kappa, interpret
from app.recipe.intervals import Rate, rate


@dataclass(frozen=True)
class JudgeCheck:
    classes: tuple[str, ...]
    # matrix[i][j]: items people labelled classes[i] that the judge labelled classes[j].
    matrix: list[list[int]]
    accuracy: Rate  # items where the judge's class is the people's, with a Wilson interval
    kappa: float
    kappa_words: str  # Landis & Koch's word for the kappa

    @property
    def items(self) -> int:
        return self.accuracy.trials

    def recall(self, label: str) -> float | None:
        """Of the items people put in `label`, the share the judge put there too."""
        row = self.matrix[self.classes.index(label)]
        total = sum(row)
        return row[self.classes.index(label)] / total if total else None


def confusion_matrix(pairs: Sequence[tuple[str, str]], classes: Sequence[str]) -> list[list[int]]:
    """Counts of (people's class, judge's class) pairs, rows people, columns the judge.

    ValueError for a label not in `classes`, so a typo cannot vanish from the counts."""
    position = {label: i for i, label in enumerate(classes)}
    if len(position) != len(classes):
        raise ValueError("the classes must be distinct")
    matrix = [[0] * len(classes) for _ in classes]
    for number, (person, judge) in enumerate(pairs, start=1):
        for who, label in (("people's", person), ("judge's", judge)):
            if label not in position:
                raise ValueError(
                    f"item {number}: the {who} label '{label}' is not one of {', '.join(classes)}"
                )
        matrix[position[person]][position[judge]] += 1
    return matrix


def check_judge(
    pairs: Sequence[tuple[str, str]], classes: Sequence[str], confidence: float = 0.95
) -> JudgeCheck:
    """The judge against people from (people's label, judge's label), one pair per item."""
    if not pairs:
        raise ValueError("no labelled items to check the judge on")
    matrix = confusion_matrix(pairs, classes)
    agreeing = sum(matrix[i][i] for i in range(len(classes)))
    kappa = cohens_kappa(pairs)
    assert kappa is not None  # pairs is not empty
    return JudgeCheck(
        classes=tuple(classes),
        matrix=matrix,
        accuracy=rate(agreeing, len(pairs), confidence),
        kappa=kappa,
        kappa_words=interpret(kappa),
    )
