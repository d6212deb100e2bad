"""AI feedback: reply pairs to compare (labelling them: app/specs/labelling.py)."""

from pydantic import Field, field_validator

from app.ids import PositiveId
from app.specs.generation import PromptSelection, SamplingSpec


class ReplyPairSpec(PromptSelection, SamplingSpec):
    """Two sampled replies per prompt from one policy, for the feedback model to compare."""

    model_id: PositiveId = Field(title="Policy model", description="a model")
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Seeds the sample and the sampling of both replies.",
    )
    temperature: float = Field(
        0.7,
        ge=0.0,
        le=5.0,
        title="Temperature (above 0: the two replies must differ)",
        description="",
    )
    max_new_tokens: int = Field(
        256, ge=1, le=32_768, title="Maximum new tokens per reply", description=""
    )
    chunk_size: int = Field(
        16,
        ge=1,
        le=1024,
        title="Prompts per chunk",
        description="Pairs are stored after each chunk; a resumed job skips them.",
    )

    @field_validator("temperature")
    @classmethod
    def _sampled(cls, temperature: float) -> float:
        if temperature == 0:
            raise ValueError("Two greedy replies are the same reply: sample (above 0).")
        return temperature
