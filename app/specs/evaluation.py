"""Evaluation runs: several models answer evaluation suites, a judge compares and classes them."""

import hashlib
import json

from pydantic import Field, field_validator

from app.ids import PositiveId
from app.specs.generation import SamplingSpec

MAX_MODELS = 12
MAX_SUITES = 20


class EvaluationSpec(SamplingSpec):
    """An evaluation run: the job's parameters, as the launch form and `cai eval` give them.

    The sampling fields (SamplingSpec) are one set of generation settings for every model; with
    the seed they make the answers' settings hash, under which answers are stored and reused."""

    model_ids: tuple[PositiveId, ...] = Field(
        title="Models to compare", description="two or more models"
    )
    suite_ids: tuple[PositiveId, ...] = Field(
        title="Evaluation suites", description="one or more evaluation suites"
    )
    judge_model_id: PositiveId = Field(title="Judge model", description="a judge model")
    constitution_version_id: PositiveId = Field(
        title="Constitution version (the judge's principles)",
        description="a published constitution version",
    )
    max_new_tokens: int = Field(
        256, ge=1, le=32_768, title="Maximum new tokens per answer", description=""
    )
    max_prompts: int = Field(
        0, ge=0, le=10_000_000, title="At most this many prompts per suite (0: all)", description=""
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Seeds the answers, each comparison's principle and the bootstrap.",
    )
    bootstrap_samples: int = Field(
        1000, ge=10, le=20_000, title="Bootstrap samples (for the intervals)", description=""
    )
    min_judge_kappa: float = Field(
        0.4,
        ge=-1.0,
        le=1.0,
        title="Warn below this judge kappa",
        description="The results page warns when the judge's latest check against people "
        "(a judge check) has a lower Cohen's kappa, or when it has none. 0.4: moderate.",
    )
    chunk_size: int = Field(
        8,
        ge=1,
        le=1024,
        title="Prompts per chunk",
        description="Answers and judgements are stored after each chunk; a resumed run skips them.",
    )

    @field_validator("model_ids")
    @classmethod
    def _two_models(cls, model_ids: tuple[int, ...]) -> tuple[int, ...]:
        distinct = tuple(dict.fromkeys(model_ids))  # the order given, duplicates dropped
        if len(distinct) < 2:
            raise ValueError("Choose at least two different models: ratings compare models.")
        if len(distinct) > MAX_MODELS:
            raise ValueError(f"At most {MAX_MODELS} models.")
        return distinct

    @field_validator("suite_ids")
    @classmethod
    def _some_suites(cls, suite_ids: tuple[int, ...]) -> tuple[int, ...]:
        distinct = tuple(dict.fromkeys(suite_ids))
        if not distinct:
            raise ValueError("Choose at least one evaluation suite.")
        if len(distinct) > MAX_SUITES:
            raise ValueError(f"At most {MAX_SUITES} suites.")
        return distinct

    def answer_settings(self) -> dict[str, object]:
        """What an answer depends on besides its model and prompt."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
            "stop": list(self.stop),
            "seed": self.seed,
        }

    def settings_hash(self) -> str:
        """The key under which answers are stored: a later run with the same model, prompt and
        settings reuses the stored answer instead of generating it again."""
        text = json.dumps(self.answer_settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
