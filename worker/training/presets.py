"""TRL's own config for a training spec (app/specs/training.py): the spec's fields by the same
names, in `SFTConfig`, `DPOConfig` or `RewardConfig`."""

from pathlib import Path
from typing import Any

import torch
from trl import DPOConfig, RewardConfig, SFTConfig

from app.specs.training import Method, TrainingHyperparameters
from worker.training.checkpoints import KEEP_CHECKPOINTS


def use_bf16(device: str) -> bool:
    """bf16 only on a CUDA card that supports it: on CPU it made training several times slower."""
    return (
        device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )


def trainer_config(
    spec: TrainingHyperparameters, output_dir: Path, *, device: str
) -> SFTConfig | DPOConfig | RewardConfig:
    """TRL's config for `spec`, writing checkpoints under `output_dir`, for "cpu" or "cuda"."""
    on_cpu = not device.startswith("cuda")
    bf16 = use_bf16(device)
    common: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_train_epochs,
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "per_device_eval_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "max_length": spec.max_length,
        "seed": spec.seed,
        "logging_steps": spec.logging_steps,
        # transformers 5 dropped warmup_ratio: a warmup_steps below 1 is read as a ratio.
        "warmup_steps": spec.warmup_ratio,
        # TRL turns gradient checkpointing on by default; it costs ~20% time for nothing on a
        # small model, so it is the spec's choice. transformers 5 renamed it: the old name warns.
        "activation_checkpointing": spec.gradient_checkpointing,
        # TRL defaults to bf16, which on CPU is emulated and several times slower.
        "bf16": bf16,
        "fp16": False,
        "use_cpu": on_cpu,
        # A lost or resumed job continues from its latest checkpoint (training/checkpoints.py).
        "save_strategy": "steps" if spec.save_steps > 0 else "no",
        "save_steps": spec.save_steps if spec.save_steps > 0 else 500,
        "save_total_limit": KEEP_CHECKPOINTS,
        "eval_strategy": "no",  # run_model evaluates once at the end instead
        "report_to": [],
        # Worker processes cannot start data-loader processes inside a Celery prefork child.
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        # By default a NaN or inf loss is replaced by the recent average before logging, which
        # would hide a diverged run from MetricsCallback.
        "logging_nan_inf_filter": False,
        # The data module drops every column the trainers do not read, so nothing else is lost.
        "remove_unused_columns": True,
    }
    if spec.method is Method.SFT:
        return SFTConfig(**common)
    if spec.method is Method.DPO:
        return DPOConfig(beta=spec.beta, **common)
    return RewardConfig(**common)
