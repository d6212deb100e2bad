"""Labelling reply pairs with a feedback model, and evaluating that model on HHH questions."""

from pydantic import Field, ValidationInfo, field_validator

from app.ids import PositiveId
from app.specs.base import StageSpec


class LabelSpec(StageSpec):
    """A labelling run: a feedback model judges a pair run's pairs under the principles of a
    constitution version. The worker hands these to the engine's `LabelConfig` by name."""

    pair_job_id: PositiveId = Field(title="Reply pairs", description="a run of reply pairs")
    constitution_version_id: PositiveId = Field(
        title="Constitution version (its comparison instructions)",
        description="a published constitution version",
    )
    model_id: PositiveId = Field(title="Feedback model", description="a model")
    order_average: bool = Field(
        True, title="Score both orders and average (removes position bias)", description=""
    )
    ensemble: int = Field(
        1, ge=1, le=16, title="Principles per comparison (ensemble, 1 to 16)", description=""
    )
    few_shot: bool = Field(
        False, title="Few-shot examples from the constitution version", description=""
    )
    chain_of_thought: bool = Field(
        False,
        title="Chain of thought: reason first, then score; probabilities clamped",
        description="",
    )
    clamp_low: float = Field(0.4, ge=0.0, le=0.5, title="Clamp: lowest probability", description="")
    clamp_high: float = Field(
        0.6,
        ge=0.5,
        le=1.0,
        title="Clamp: highest probability",
        description="The paper clamps chain-of-thought labels to 40-60%.",
    )
    cot_max_new_tokens: int = Field(
        128, ge=1, le=4096, title="Longest reasoning, in tokens", description=""
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Picks each pair's principles: a resumed run picks the same.",
    )
    chunk_size: int = Field(16, ge=1, le=1024, title="Pairs per chunk", description="")

    @field_validator("clamp_high")
    @classmethod
    def _above_low(cls, clamp_high: float, info: ValidationInfo) -> float:
        # clamp_low is validated first (field order); absent when it was itself bad.
        if "clamp_low" in info.data and clamp_high <= info.data["clamp_low"]:
            raise ValueError("Above the lower clamp.")
        return clamp_high


# The settings of worker.evals.hhh.SETTINGS (a test keeps the two equal), with the form's labels.
EVAL_SETTINGS: dict[str, str] = {
    "plain": "One order",
    "order": "Both orders, averaged",
    "cot": "Chain of thought, clamped",
    "cot-order": "Chain of thought, both orders",
}


class HHHEvalSpec(StageSpec):
    """How a feedback model is asked the HHH questions: what `cai eval-labeller` takes."""

    settings: tuple[str, ...] = Field(
        ("plain", "order"),
        title="Settings",
        description="Each is scored on every question: accuracy per setting.",
    )
    limit: int = Field(
        0, ge=0, le=100_000, title="Only the first N questions (0: all)", description=""
    )
    cot_max_new_tokens: int = Field(
        128,
        ge=1,
        le=4096,
        title="Longest reasoning with chain of thought, in tokens",
        description="",
    )

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, settings: tuple[str, ...]) -> tuple[str, ...]:
        settings = tuple(name.strip() for name in settings if name.strip())
        unknown = [name for name in settings if name not in EVAL_SETTINGS]
        if unknown:
            raise ValueError(
                f"Unknown setting '{unknown[0]}': choose from {', '.join(EVAL_SETTINGS)}."
            )
        if not settings:
            raise ValueError("Choose at least one setting.")
        return settings


class LabellerEvalRequest(HHHEvalSpec):
    """What the evaluation form asks for besides the file."""

    model_id: PositiveId = Field(
        title="Feedback model", description="the feedback model to evaluate"
    )


class LabellerEvalSpec(LabellerEvalRequest):
    """A labeller evaluation job: the request and the uploaded file it was checked against."""

    path: str = Field(min_length=1, description="the server's copy of the upload")
    filename: str = Field(description="the file's name as the person uploaded it")
    questions: int = Field(ge=1, description="how many questions the file held when checked")
