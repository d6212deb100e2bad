"""Dataset builds: which runs, how their traces (or AI labels) are filtered, split and mixed.

Shares (0 to 1) are stored as shares, as the row builders take them; a form shows and reads
them in percent (`PERCENT`, see app/forms.py).
"""

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from app.ids import PositiveId
from app.specs.base import StageSpec

# A share the form shows in percent: 0.1 is "10".
PERCENT: dict[str, Any] = {"form": "percent"}
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000


class ReviewFilter(StrEnum):
    ALL = "all"  # every trace, reviewed or not
    EXCLUDE_REJECTED = "exclude_rejected"  # all but those the review rejected
    APPROVED_ONLY = "approved_only"  # only those the review approved


class SplitOptions(StageSpec):
    """How prompts are held out; the same for both kinds of dataset."""

    test_fraction: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        title="Held-out test split, in % of prompts (0 to 50)",
        description="",
        json_schema_extra=PERCENT,
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, title="Seed for the splits", description="")


class TraceFilters(SplitOptions):
    """Which critique-revision traces become rows, and the helpful rows mixed in."""

    review_filter: ReviewFilter = Field(
        ReviewFilter.EXCLUDE_REJECTED,
        title="Reviewed traces",
        description="which reviewed traces to keep",
    )
    min_change: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        title="Least change between initial reply and final, in % of words",
        description="0 keeps all; traces whose revision barely changed the reply teach little.",
        json_schema_extra=PERCENT,
    )
    min_chars: int = Field(
        1, ge=0, le=1_000_000, title="Shortest final answer, in characters", description=""
    )
    max_chars: int = Field(
        0,
        ge=0,
        le=10_000_000,
        title="Longest final answer, in characters (0: no limit)",
        description="",
    )
    max_prompt_chars: int = Field(
        0,
        ge=0,
        le=10_000_000,
        title="Longest conversation, in characters (0: no limit)",
        description="",
    )
    drop_duplicates: bool = Field(
        True, title="One row per prompt (drop duplicates across runs)", description=""
    )
    split_halves: bool = Field(
        False,
        title="Disjoint prompts for SFT and preferences (as Hugging Face's recipe does)",
        description="",
    )
    helpful_max_rows: int = Field(
        0, ge=0, le=10_000_000, title="How many helpful rows to mix in (0: none)", description=""
    )

    @field_validator("review_filter", mode="before")
    @classmethod
    def _known_filter(cls, value: object) -> object:
        if value not in {f.value for f in ReviewFilter} and not isinstance(value, ReviewFilter):
            raise ValueError("Choose which reviewed traces to keep.")
        return value

    @field_validator("max_chars")
    @classmethod
    def _not_below_min(cls, max_chars: int, info: ValidationInfo) -> int:
        # min_chars is validated first (field order); absent when it was itself bad.
        if max_chars and max_chars < info.data.get("min_chars", 0):
            raise ValueError("The longest allowed answer is shorter than the shortest.")
        return max_chars


class FeedbackOptions(SplitOptions):
    """How AI-labelled comparisons become preference rows (app/datasets/feedback_rows.py)."""

    min_margin: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        title="Least margin, in points of probability away from 50%",
        description="Pairs the feedback model could hardly tell apart are left out.",
        json_schema_extra=PERCENT,
    )
    prefer_human: bool = Field(
        True, title="Where people labelled a pair, their choice decides", description=""
    )


DatasetKind = Literal["sft+prefs", "ai-feedback"]


class DatasetBuildSpec(TraceFilters, FeedbackOptions):
    """A dataset build, as the build form (or an AI-feedback run's form) gives it.

    "sft+prefs" builds from generation runs with the trace filters; "ai-feedback" from one
    labelling run with the feedback options. Both split prompts the same way.
    """

    kind: DatasetKind = Field("sft+prefs", title="Kind", description="")
    name: str = Field("", title="Name", description="")
    description: str = Field("", title="Description", description="")
    runs: tuple[PositiveId, ...] = Field(
        title="Generation runs", description="at least one generation run"
    )

    @field_validator("name")
    @classmethod
    def _short_name(cls, name: str) -> str:
        name = name.strip()
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"At most {MAX_NAME_CHARS} characters.")
        return name

    @field_validator("description")
    @classmethod
    def _short_description(cls, description: str) -> str:
        # Cut, not refused: it is only shown on the dataset's page and card.
        return description.strip()[:MAX_DESCRIPTION_CHARS]

    @field_validator("runs")
    @classmethod
    def _some_runs(cls, runs: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if not runs:
            raise ValueError("Choose at least one generation run.")
        if info.data.get("kind") == "ai-feedback" and len(runs) != 1:
            raise ValueError("An AI-feedback dataset is built from one labelling run.")
        return tuple(sorted(set(runs)))


class DatasetBuildJobSpec(DatasetBuildSpec):
    """What a build_dataset job row stores: the build, the dataset row it fills, and the
    helpful-rows upload it reads once and removes."""

    name: str = Field(min_length=1, title="Name", description="")
    dataset_id: PositiveId = Field(description="the dataset row the job fills")
    user_id: PositiveId = Field(description="who asked for the build")
    helpful_path: str = Field("", description="the server's copy of the upload; '' for none")
    helpful_filename: str = Field("", description="the upload's name as the person gave it")
