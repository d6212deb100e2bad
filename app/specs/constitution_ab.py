"""Constitution A/B: two finished generation runs over the same prompts, judged pairwise."""

from pydantic import Field

from app.ids import PositiveId
from app.specs.base import StageSpec


class ConstitutionABSpec(StageSpec):
    """The job's parameters, as the A/B form (and `cai compare-runs`) give them."""

    run_a_id: PositiveId = Field(title="Run A (the baseline)", description="a generation run")
    run_b_id: PositiveId = Field(
        title="Run B", description="a generation run over the same prompts"
    )
    judge_model_id: PositiveId = Field(title="Judge model", description="a judge model")
    constitution_version_id: PositiveId = Field(
        title="Constitution version (the judge's principles)",
        description="a published constitution version",
    )
    limit: int = Field(
        0, ge=0, le=10_000_000, title="Only the first N shared prompts (0: all)", description=""
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Picks each comparison's judging principle.",
    )
