"""Training: which model and dataset, which method, and the hyperparameters TRL gets.

`TrainingHyperparameters` is what the training loop reads (worker/training); the presets in
app/recipe/training_presets.py fill it. `TrainingJobSpec` adds the rows a job trains on: a job
stores `spec.to_parameters()`, and the worker reads it back once with `from_parameters`.
"""

from enum import StrEnum
from typing import Any, get_args

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from app.ids import PositiveId
from app.recipe.training_presets import PRESETS, PresetName
from app.specs.base import StageSpec


class Method(StrEnum):
    SFT = "sft"
    DPO = "dpo"
    REWARD = "reward"


MAX_STEPS = 10_000_000
MAX_OUTPUT_NAME = 200
# A lost worker costs at most this many steps; a short run (cpu-smoke) never reaches it, and
# the last step saves none (train_model saves the model itself), so it writes no checkpoint.
DEFAULT_SAVE_STEPS = 100


class TrainingHyperparameters(StageSpec):
    """One run's settings; TRL's SFTConfig, DPOConfig or RewardConfig gets them by the same
    names (worker/training/presets.py)."""

    # Strict: a stored `"2"` or `true` is not a batch size (bool is an int in Python), and a
    # stored `1` is not a flag. The method is stored as its string value.
    model_config = ConfigDict(strict=True)

    method: Method = Field(title="Method", description="SFT, DPO or a reward model", strict=False)
    learning_rate: float = Field(
        ge=1e-10,
        le=1.0,
        title="Learning rate",
        description="The optimiser's step size: a full fine-tune of a large model needs it small.",
    )
    max_steps: int = Field(
        ge=-1,
        le=MAX_STEPS,
        title="Steps (-1: train for the epochs below)",
        description="A positive number of optimiser steps overrides the epochs.",
    )
    num_train_epochs: float = Field(
        ge=0.01,
        le=1000.0,
        title="Epochs",
        description="Passes over the training rows, when the steps are -1.",
    )
    per_device_train_batch_size: int = Field(
        ge=1,
        le=4096,
        title="Batch size per device",
        description="Rows per forward pass: lower it when memory runs out.",
    )
    gradient_accumulation_steps: int = Field(
        ge=1,
        le=4096,
        title="Gradient accumulation steps",
        description="The effective batch is the batch size times these steps.",
    )
    max_length: int = Field(
        ge=16,
        le=1_048_576,
        title="Longest sequence, in tokens",
        description="SFT and DPO truncate longer rows; the reward trainer drops them.",
    )
    beta: float = Field(
        0.1,
        ge=0.0001,
        le=100.0,
        title="DPO beta",
        description="How far the policy may move from the reference: lower moves further.",
    )
    soft_labels: bool = Field(
        False,
        title="Train on the soft labels (DPO, reward model)",
        description=(
            "Each pair's target is the feedback model's probability for the chosen reply "
            "(1 where a person decided): a reward model's loss is the cross-entropy against it, "
            "DPO's label smoothing is 1 minus it. Off: every pair counts as certain."
        ),
    )
    use_lora: bool = Field(
        False,
        title="LoRA adapters (merged into the saved model)",
        description="Trains small adapters instead of every weight: far less memory.",
    )
    lora_r: int = Field(
        16,
        ge=1,
        le=4096,
        title="LoRA rank",
        description="Higher learns more and costs more memory.",
    )
    lora_alpha: int = Field(
        32,
        ge=1,
        le=16384,
        title="LoRA alpha",
        description="The adapters' scale: commonly twice the rank.",
    )
    lora_dropout: float = Field(
        0.05, ge=0.0, lt=1.0, title="LoRA dropout", description="From 0 to below 1."
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Seeds the shuffling and a reward model's new head: same seed, same run.",
    )
    logging_steps: int = Field(
        1,
        ge=1,
        le=MAX_STEPS,
        title="Log the metrics every N steps",
        description="Each logged step is a point on the job's curves.",
    )
    save_steps: int = Field(
        DEFAULT_SAVE_STEPS,
        ge=0,
        le=MAX_STEPS,
        title="Save a checkpoint every N steps (0: only when cancelled)",
        description=(
            "A lost or resumed job continues from its latest checkpoint; the last two are kept."
        ),
    )
    warmup_ratio: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        title="Warm-up, as a share of the steps",
        description="The learning rate rises from 0 over this share of the run.",
    )
    gradient_checkpointing: bool = Field(
        False,
        title="Gradient checkpointing",
        description="Less memory for about a fifth more time: for large models on a GPU.",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _known_method(cls, method: Any) -> Any:
        # isinstance first: a stored list or dict cannot be looked up.
        if not isinstance(method, str) or method not in Method._value2member_map_:
            raise ValueError("Choose SFT, DPO or a reward model.")
        return method

    @field_validator("soft_labels")
    @classmethod
    def _soft_labels_for_pairs(cls, soft_labels: bool, info: ValidationInfo) -> bool:
        # `method` is declared first, so it is validated (or has failed) by now.
        if soft_labels and info.data.get("method") == Method.SFT:
            raise ValueError("Soft labels are for DPO and reward models, not SFT.")
        return soft_labels

    @field_validator("max_steps")
    @classmethod
    def _some_steps(cls, max_steps: int) -> int:
        if max_steps == 0:
            raise ValueError("At least 1 step, or -1 to train for the epochs given.")
        return max_steps


def preset_spec(name: str, method: Method) -> TrainingHyperparameters:
    """The named preset for `method`; ValueError lists the presets when the name is unknown."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}: choose from {', '.join(PRESETS)}")
    return TrainingHyperparameters.model_validate({"method": method, **PRESETS[name][method.value]})


class TrainingJobSpec(TrainingHyperparameters):
    """A training job: the model to start from, the dataset, and the run's settings, as the
    launch form gives them."""

    base_model_id: PositiveId = Field(title="Start from", description="the model to start from")
    dataset_id: PositiveId = Field(title="Dataset", description="a dataset")
    preset: PresetName = Field(
        "cpu-smoke",
        title="Preset",
        description=(
            "cpu-smoke: a few steps that finish in about a minute on a CPU, to check the whole "
            "loop. hf-7b: the hyperparameters of Hugging Face's Constitutional AI recipe for 7B "
            "models (a GPU job)."
        ),
    )
    output_name: str = Field(
        "",
        title="Name of the trained model",
        description="Blank: the base model's name, the method and the dataset.",
    )

    @field_validator("preset", mode="before")
    @classmethod
    def _known_preset(cls, preset: Any) -> Any:
        if not isinstance(preset, str) or preset not in get_args(PresetName):
            raise ValueError("Choose a preset.")
        return preset

    @field_validator("output_name")
    @classmethod
    def _short_name(cls, name: str) -> str:
        name = name.strip()
        if len(name) > MAX_OUTPUT_NAME:
            raise ValueError(f"At most {MAX_OUTPUT_NAME} characters.")
        return name

    def hyperparameters(self) -> TrainingHyperparameters:
        """The run's settings without the job's rows (what a preset holds)."""
        return TrainingHyperparameters.model_validate(
            self.model_dump(include=set(TrainingHyperparameters.model_fields))
        )
