"""Which axis a suite is judged on, and which of a version's principles judge that axis.

A suite's purpose gives its axis: red-team and refusal-expected prompts are judged for
harmlessness; helpful and over-refusal prompts (safe prompts that should be answered) for
helpfulness.

Principles carry free-form tags and nothing marks an axis, so the rule is by tag: a principle
tagged "helpfulness" (or "helpful") judges the helpful axis; every other usable principle (an
enabled one with a comparison instruction) judges the harmless axis. The default constitution
tags its "helpfulness" principle so; its fifteen others (harm, honesty, autonomy, privacy...)
judge harmlessness, and "autonomy" there keeps the harmless axis from rewarding a sermon. When a
version has no principle for an axis, every usable principle judges it, and the run's result
says so (`fallback`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.recipe.documents import PrincipleDoc
from app.recipe.evaluation import SuitePurpose


class Axis(StrEnum):
    HARMLESS = "harmless"
    HELPFUL = "helpful"

    @property
    def label(self) -> str:
        return "Harmlessness" if self is Axis.HARMLESS else "Helpfulness"


AXIS_OF_PURPOSE = {
    SuitePurpose.RED_TEAM: Axis.HARMLESS,
    SuitePurpose.REFUSAL_EXPECTED: Axis.HARMLESS,
    SuitePurpose.HELPFUL: Axis.HELPFUL,
    SuitePurpose.OVER_REFUSAL: Axis.HELPFUL,
}

HELPFUL_TAGS = frozenset({"helpfulness", "helpful"})


@dataclass(frozen=True)
class AxisPrinciples:
    axis: Axis
    principles: list[PrincipleDoc]
    fallback: bool  # no principle was tagged for the axis: all usable ones judge it


def usable(principles: Sequence[PrincipleDoc]) -> list[PrincipleDoc]:
    return [p for p in principles if p.enabled and p.comparison_instruction.strip()]


def principles_for_axis(principles: Sequence[PrincipleDoc], axis: Axis) -> AxisPrinciples:
    """The principles that judge `axis` (see the module's rule); ValueError when the version
    has no usable principle at all."""
    candidates = usable(principles)
    if not candidates:
        raise ValueError("the constitution version has no enabled principle with a comparison")

    def helpful(principle: PrincipleDoc) -> bool:
        return bool(HELPFUL_TAGS & {tag.strip().lower() for tag in principle.tags})

    chosen = [p for p in candidates if helpful(p) == (axis is Axis.HELPFUL)]
    if chosen:
        return AxisPrinciples(axis, chosen, fallback=False)
    return AxisPrinciples(axis, candidates, fallback=True)
