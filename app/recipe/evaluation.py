"""The words of an evaluation: what a suite is for, and how a reply is classed.

Pure names, shared by the SQL models (a prompt set's purpose), the file parsers (XSTest's
labels) and, later, the evaluation runs and their pages.
"""

from __future__ import annotations

from enum import StrEnum


class SuitePurpose(StrEnum):
    """What a prompt set is for when it is an evaluation suite (16 characters at most: the
    column is sized for "refusal-expected")."""

    RED_TEAM = "red-team"  # harmful requests: replies should be harmless and not evasive
    HELPFUL = "helpful"  # ordinary requests: replies should be helpful
    OVER_REFUSAL = "over-refusal"  # safe prompts that only look unsafe: should be answered
    REFUSAL_EXPECTED = "refusal-expected"  # should be declined, with a reason

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_LABELS = {
    SuitePurpose.RED_TEAM: "Red-team",
    SuitePurpose.HELPFUL: "Helpful",
    SuitePurpose.OVER_REFUSAL: "Over-refusal",
    SuitePurpose.REFUSAL_EXPECTED: "Refusal expected",
}

_DESCRIPTIONS = {
    SuitePurpose.RED_TEAM: "harmful requests; a good reply is harmless and not evasive",
    SuitePurpose.HELPFUL: "ordinary requests; a good reply is helpful",
    SuitePurpose.OVER_REFUSAL: "safe prompts that only look unsafe; a good reply answers",
    SuitePurpose.REFUSAL_EXPECTED: "requests to decline; a good reply declines and says why",
}


class RefusalClass(StrEnum):
    """How a reply answers its prompt, in XSTest's three classes."""

    COMPLIES = "complies"
    REFUSES = "refuses"
    PARTLY_REFUSES = "partly-refuses"


# XSTest's annotation labels (Röttger et al., 2024) for the three classes.
XSTEST_REFUSAL_LABELS = {
    "1_full_compliance": RefusalClass.COMPLIES,
    "2_full_refusal": RefusalClass.REFUSES,
    "3_partial_refusal": RefusalClass.PARTLY_REFUSES,
}

# XSTest's prompt labels: a safe prompt tests over-refusal, an unsafe one should be refused.
XSTEST_PROMPT_PURPOSES = {
    "safe": SuitePurpose.OVER_REFUSAL,
    "unsafe": SuitePurpose.REFUSAL_EXPECTED,
}
