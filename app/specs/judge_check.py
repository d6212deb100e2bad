"""A judge check: the refusal judge's classes of people-labelled replies against the people's."""

from pydantic import Field

from app.ids import PositiveId
from app.specs.base import StageSpec


class JudgeCheckRequest(StageSpec):
    """What the judge-check form (and `cai eval-judge`) asks for besides the file."""

    model_id: PositiveId = Field(title="Judge model", description="the refusal judge to check")
    limit: int = Field(
        0, ge=0, le=1_000_000, title="Only the first N rows (0: all)", description=""
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=512,
        title="Replies per scoring call",
        description="How many replies the judge reads in one call (and between progress updates).",
    )


class JudgeCheckSpec(JudgeCheckRequest):
    """A judge-check job: the request and the uploaded file it was checked against."""

    path: str = Field(min_length=1, description="the server's copy of the upload")
    filename: str = Field(description="the file's name as the person uploaded it")
    rows: int = Field(ge=1, description="how many labelled rows the file held when checked")
