"""How often the feedback model's labels agree with people's, overall and per principle."""

from collections.abc import Iterable
from dataclasses import dataclass

ALL = "all principles"


@dataclass
class LabelAgreement:
    principle: str
    labels: int = 0  # human labels of comparisons that used this principle
    agree: int = 0  # the AI's label was the person's choice (a tie agrees with a tie)
    ai_ties: int = 0
    human_ties: int = 0

    @property
    def rate(self) -> float | None:
        return self.agree / self.labels if self.labels else None


def agreement_by_principle(
    labels: Iterable[tuple[list[str], str, str]],
) -> list[LabelAgreement]:
    """From (principle keys, AI label, human choice), one per human label: the overall row
    first, then each principle by key. An ensembled comparison counts for each of its principles;
    comparisons the AI skipped are left out."""
    table: dict[str, LabelAgreement] = {ALL: LabelAgreement(ALL)}
    for keys, ai_label, human in labels:
        if ai_label == "skipped":
            continue
        for key in [ALL, *dict.fromkeys(keys)]:
            row = table.setdefault(key, LabelAgreement(key))
            row.labels += 1
            row.agree += ai_label == human
            row.ai_ties += ai_label == "tie"
            row.human_ties += human == "tie"
    return [table[ALL], *(table[key] for key in sorted(table) if key != ALL)]


def majority_choice(choices: Iterable[str]) -> str | None:
    """The choice most people made; "tie" when A and B are equally popular; None for none."""
    counts: dict[str, int] = {}
    for choice in choices:
        counts[choice] = counts.get(choice, 0) + 1
    if not counts:
        return None
    top = max(counts.values())
    leaders = sorted(choice for choice, n in counts.items() if n == top)
    return leaders[0] if len(leaders) == 1 else "tie"
