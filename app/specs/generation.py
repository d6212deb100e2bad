"""SL-CAI generation: which prompts, which constitution and model, and how to sample."""

from typing import Any, Self

from pydantic import Field, field_validator

from app.ids import PositiveId
from app.specs.base import StageSpec

MAX_ROUNDS = 8
MAX_STOP_SEQUENCES = 8


class PromptSelection(StageSpec):
    """Which prompts of a set a run takes; reply-pair runs choose theirs the same way."""

    prompt_set_id: PositiveId = Field(title="Prompt set", description="a prompt set")
    sample_size: int = Field(
        0,
        ge=0,
        le=10_000_000,
        title="Random sample of N prompts (0: all)",
        description="Drawn with the seed below, so the same seed draws the same prompts.",
    )
    max_prompts: int = Field(
        0, ge=0, le=10_000_000, title="At most this many prompts (0: no limit)", description=""
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Also picks each prompt's principles: a run is reproducible prompt by prompt.",
    )


class SamplingSpec(StageSpec):
    """How the model samples; the backend gets these by the same names."""

    max_new_tokens: int = Field(
        256, ge=1, le=32_768, title="Maximum new tokens per step", description=""
    )
    # Defaults for small chat models (app.sampling.SMALL_CHAT); the launch forms fill in the
    # model's own from its generation_config.json.
    temperature: float = Field(0.7, ge=0.0, le=5.0, title="Temperature (0: greedy)", description="")
    top_p: float = Field(0.9, ge=0.01, le=1.0, title="Top-p", description="")
    top_k: int = Field(0, ge=0, le=1000, title="Top-k (0: off)", description="")
    repetition_penalty: float = Field(
        1.1,
        ge=0.5,
        le=2.0,
        title="Repetition penalty (1: off)",
        description="Above 1 discourages repeating tokens: small models fall into loops.",
    )
    stop: tuple[str, ...] = Field(
        (), title="Stop sequences, one per line", description="Generation stops at any of them."
    )

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> Self:
        # A job stored before these fields existed ran without them: resumed, it runs the same.
        if "temperature" in parameters and "repetition_penalty" not in parameters:
            parameters = {**parameters, "top_k": 0, "repetition_penalty": 1.0}
        return super().from_parameters(parameters)

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, stop: tuple[str, ...]) -> tuple[str, ...]:
        stop = tuple(s for s in stop if s.strip())
        if len(stop) > MAX_STOP_SEQUENCES:
            raise ValueError(f"At most {MAX_STOP_SEQUENCES} stop sequences.")
        return stop


class GenerationSpec(PromptSelection, SamplingSpec):
    """A critique-revision run: the job's parameters, as the launch form and `cai generate` give
    them."""

    constitution_version_id: PositiveId = Field(
        title="Constitution version", description="a published constitution version: runs pin one"
    )
    model_id: PositiveId = Field(title="Model", description="a model")
    rounds: int = Field(
        1, ge=1, le=MAX_ROUNDS, title="Critique-revision rounds (1 to 8)", description=""
    )
    # Longer or shorter critiques and revisions than replies; None: max_new_tokens.
    critique_max_new_tokens: int | None = Field(None, ge=1, le=32_768, description="")
    revision_max_new_tokens: int | None = Field(None, ge=1, le=32_768, description="")
    chunk_size: int = Field(
        16,
        ge=1,
        le=1024,
        title="Prompts per chunk",
        description="Traces are stored after each chunk; a resumed job skips what was stored.",
    )
    reviews_needed: int = Field(
        1,
        ge=1,
        le=10,
        title="Reviews each trace needs (1 to 10)",
        description="Where two or more reviewers judge the same traces, their agreement is shown.",
    )
