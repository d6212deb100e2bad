"""RL of a policy against a preference model: RLOO or GRPO from TRL 1.16.

`RLHyperparameters` is what the RL loop reads (worker/training/rl.py), by TRL's own names
(`beta`, `num_generations`, `max_completion_length`, ...); the presets in
app/recipe/rl_presets.py fill it. `RLJobSpec` adds the rows: the policy to start from, the
preference model that scores it, and the prompt sets with their mixing weights.
"""

from enum import StrEnum
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.ids import PositiveId, parse_id
from app.recipe.rl_presets import RL_PRESETS, RLPresetName
from app.specs.base import StageSpec

MAX_STEPS = 10_000_000
MAX_OUTPUT_NAME = 200
MAX_PROMPT_SETS = 16


class Algorithm(StrEnum):
    GRPO = "grpo"
    RLOO = "rloo"


class PromptShare(BaseModel):
    """One prompt set of the mix and its weight (weights are relative: 3 and 1 is 75% / 25%)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_set_id: PositiveId
    weight: float = Field(gt=0, le=1000)


class RLHyperparameters(StageSpec):
    """One RL run's settings; TRL's GRPOConfig or RLOOConfig gets them by the same names."""

    algorithm: Algorithm = Field(
        title="Algorithm",
        description="GRPO (group-normalised advantages) or RLOO (leave-one-out baseline)",
    )
    learning_rate: float = Field(ge=1e-10, le=1.0, title="Learning rate", description="")
    beta: float = Field(
        ge=0.0,
        le=100.0,
        title="KL coefficient (beta) towards the starting policy",
        description="Higher keeps the policy closer to where it started; 0 drops the KL term.",
    )
    num_generations: int = Field(
        ge=1,
        le=256,
        title="Generations per prompt",
        description="Completions sampled for each prompt; their rewards are compared (at least 2).",
    )
    max_completion_length: int = Field(
        ge=1, le=32768, title="Longest completion, in tokens", description=""
    )
    temperature: float = Field(gt=0.0, le=2.0, title="Sampling temperature", description="")
    top_p: float = Field(gt=0.0, le=1.0, title="Sampling top-p", description="1: no cut")
    max_steps: int = Field(ge=1, le=MAX_STEPS, title="Steps", description="Optimiser steps.")
    gradient_accumulation_steps: int = Field(
        1, ge=1, le=4096, title="Gradient accumulation steps", description=""
    )
    per_device_train_batch_size: int = Field(
        ge=1,
        le=4096,
        title="Completions per forward pass",
        description=(
            "Completions, not prompts: times the accumulation steps it must be a multiple of "
            "the generations per prompt."
        ),
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, title="Seed", description="Same seed, same run.")
    sample_every: int = Field(
        5,
        ge=1,
        le=MAX_STEPS,
        title="Sample table every N steps",
        description="Stores the step's completions with their rewards, and the Goodhart watch.",
    )
    logging_steps: int = Field(1, ge=1, le=MAX_STEPS, title="Log every N steps", description="")
    save_steps: int = Field(
        100,
        ge=0,
        le=MAX_STEPS,
        title="Checkpoint every N steps (0: only when cancelled)",
        description="Resume continues from the latest checkpoint.",
    )

    @field_validator("algorithm", mode="before")
    @classmethod
    def _known_algorithm(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in Algorithm._value2member_map_:
            raise ValueError("Choose GRPO or RLOO.")
        return value

    @field_validator("num_generations")
    @classmethod
    def _a_group(cls, value: int) -> int:
        if value < 2:
            # Both trainers compare a completion with the others of its prompt.
            raise ValueError("GRPO and RLOO need at least 2 generations per prompt.")
        return value

    @field_validator("per_device_train_batch_size")
    @classmethod
    def _whole_groups(cls, value: int, info: ValidationInfo) -> int:
        generations = info.data.get("num_generations")
        accumulation = info.data.get("gradient_accumulation_steps", 1)
        if generations and (value * accumulation) % generations:
            raise ValueError(
                f"{value} x {accumulation} accumulation steps is not a multiple of "
                f"{generations} generations per prompt: each step takes whole groups."
            )
        return value

    @property
    def prompts_per_step(self) -> int:
        return (
            self.per_device_train_batch_size
            * self.gradient_accumulation_steps
            // max(self.num_generations, 1)
        )


def rl_preset_spec(name: str) -> RLHyperparameters:
    if name not in RL_PRESETS:
        raise ValueError(f"unknown RL preset {name!r}: choose from {', '.join(RL_PRESETS)}")
    return RLHyperparameters.model_validate(RL_PRESETS[name])


class RLJobSpec(RLHyperparameters):
    """An RL job: the starting policy, the preference model, the prompt mix and the settings."""

    policy_model_id: PositiveId = Field(title="Policy to optimise", description="a policy model")
    reward_model_id: PositiveId = Field(
        title="Preference model (the reward)", description="a reward model"
    )
    prompt_mix: tuple[PromptShare, ...] = Field(
        title="Prompt sets and their weights",
        description="At least one prompt set with a weight above 0 (weights are relative).",
    )
    preset: RLPresetName = Field("cpu-smoke", title="Preset", description="")
    output_name: str = Field("", title="Name of the trained policy", description="")

    @field_validator("prompt_mix", mode="before")
    @classmethod
    def _mix(cls, value: Any) -> Any:
        # The form sends "set id:weight" lines; a stored job holds the dicts.
        if not isinstance(value, list | tuple):
            raise ValueError("Give prompt sets with weights.")
        shares = [_share(item) for item in value]
        if not shares:
            raise ValueError("Choose at least one prompt set with a weight above 0.")
        if len(shares) > MAX_PROMPT_SETS:
            raise ValueError(f"At most {MAX_PROMPT_SETS} prompt sets.")
        ids = [s["prompt_set_id"] if isinstance(s, dict) else None for s in shares]
        if len(set(ids)) != len(ids):
            raise ValueError("Each prompt set at most once.")
        return shares

    @field_validator("preset", mode="before")
    @classmethod
    def _known_preset(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in get_args(RLPresetName):
            raise ValueError("Choose a preset.")
        return value

    @field_validator("output_name")
    @classmethod
    def _short_name(cls, name: str) -> str:
        name = name.strip()
        if len(name) > MAX_OUTPUT_NAME:
            raise ValueError(f"At most {MAX_OUTPUT_NAME} characters.")
        return name

    def hyperparameters(self) -> RLHyperparameters:
        return RLHyperparameters.model_validate(
            self.model_dump(include=set(RLHyperparameters.model_fields))
        )

    def weights(self) -> dict[int, float]:
        return {share.prompt_set_id: share.weight for share in self.prompt_mix}


def _share(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    set_text, _, weight_text = item.partition(":")
    set_id = parse_id(set_text)
    try:
        weight = float(weight_text) if weight_text.strip() else 1.0
    except ValueError:
        raise ValueError(f"{item!r}: a weight is a number.") from None
    if set_id is None:
        raise ValueError(f"{item!r}: not a prompt set id.")
    return {"prompt_set_id": set_id, "weight": weight}
