"""One RL run: a policy optimised against a preference model with TRL 1.16's GRPO or RLOO.

Plain functions with injected callbacks, like worker/training/run.py (whose saving, logging
and out-of-memory helpers it reuses): the worker, a CLI and the tests call `train_rl`.
"""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
)
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from app.specs.rl import Algorithm, RLHyperparameters
from worker.backends.local_models import load_tokenizer
from worker.training.callbacks import MetricsCallback, MetricsReport
from worker.training.checkpoints import CHECKPOINTS, KEEP_CHECKPOINTS, Checkpoint, NoFinalCheckpoint
from worker.training.presets import use_bf16
from worker.training.rl_callbacks import SampleSink, SampleTableCallback
from worker.training.rl_reward import PreferenceReward
from worker.training.run import (
    BaseModelError,
    Progress,
    TrainingOutOfMemory,
    final_metrics,
    final_model,
    is_out_of_memory,
    training_device,
    write_log,
)

SPEC_FILE = "rl_spec.json"
# A reward: TRL's reward_funcs entry, a callable f(prompts, completions, **kw) -> list[float].
Reward = Callable[..., list[float]]


@dataclass
class RLOutcome:
    output_dir: Path
    steps: int
    stopped_early: bool
    final_metrics: dict[str, float]
    prompts: int
    seconds: float
    resumed_from: int = 0


def rl_config(spec: RLHyperparameters, output_dir: Path, *, device: str) -> GRPOConfig | RLOOConfig:
    """TRL's config for `spec`, by the same names, writing checkpoints under `output_dir`."""
    common: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": spec.learning_rate,
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "num_generations": spec.num_generations,
        "max_completion_length": spec.max_completion_length,
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "beta": spec.beta,
        "seed": spec.seed,
        "logging_steps": spec.logging_steps,
        # As in worker/training/presets.py: bf16 only on a CUDA card, no gradient
        # checkpointing by default (TRL turns it on), no data-loader processes in a worker.
        "bf16": use_bf16(device),
        "fp16": False,
        "use_cpu": not device.startswith("cuda"),
        "activation_checkpointing": False,
        "save_strategy": "steps" if spec.save_steps > 0 else "no",
        "save_steps": spec.save_steps if spec.save_steps > 0 else 500,
        "save_total_limit": KEEP_CHECKPOINTS,
        "report_to": [],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "logging_nan_inf_filter": False,
        # The reward reads the prompt_set_id column (for the sample table).
        "remove_unused_columns": False,
    }
    if spec.algorithm is Algorithm.GRPO:
        return GRPOConfig(**common)
    return RLOOConfig(**common)


def load_policy(folder: str, *, device: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    dtype = torch.bfloat16 if use_bf16(device) else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        tokenizer = load_tokenizer(folder)
    except Exception as exc:
        raise BaseModelError(f"cannot load policy {folder}: {exc}") from exc
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if device != "cpu":
        # transformers' typing of `to` on the auto class is wrong (as in transformers_backend).
        model.to(device)  # type: ignore[arg-type]
    return model, tokenizer


def load_preference_model(folder: str, *, device: str) -> PreferenceReward:
    dtype = torch.bfloat16 if use_bf16(device) else torch.float32
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=1, dtype=dtype
        )
        tokenizer = load_tokenizer(folder)
    except Exception as exc:
        raise BaseModelError(f"cannot load preference model {folder}: {exc}") from exc
    # The classifier scores each row's last token, found through pad_token_id.
    model.config.pad_token_id = tokenizer.pad_token_id
    if device != "cpu":
        model = model.to(device)
    return PreferenceReward(model, tokenizer)


def prompt_rows(prompts: Sequence[tuple[int, list[dict[str, str]]]]) -> Dataset:
    """TRL's conversational prompt column, and the set each prompt came from."""
    return Dataset.from_list(
        [{"prompt": messages, "prompt_set_id": set_id} for set_id, messages in prompts]
    )


def train_rl(
    spec: RLHyperparameters,
    *,
    policy_folder: str,
    reward: Reward,
    prompts: Sequence[tuple[int, list[dict[str, str]]]],
    output_dir: Path,
    report: MetricsReport,
    should_stop: Callable[[], bool],
    progress: Progress,
    on_samples: SampleSink,
    resume_from: Checkpoint | None = None,
) -> RLOutcome:
    """Optimises the policy in `policy_folder` against `reward` on `prompts` (set id, messages)
    and saves it into `output_dir`. `reward` is a PreferenceReward or any TRL reward callable
    with a `latest` list of samples (the tests' synthetic rewards)."""
    started = time.monotonic()
    device = training_device()
    progress(0, 0, f"loading policy {policy_folder}")
    model, tokenizer = load_policy(policy_folder, device=device)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SPEC_FILE).write_text(json.dumps(spec.to_parameters(), indent=2) + "\n")
    name = f"{spec.algorithm.value.upper()}"

    def step_progress(step: int, total: int) -> None:
        progress(step, total, f"{name}: step {step} of {total}")

    stopper = MetricsCallback(report, should_stop, step_progress)
    callbacks: list[TrainerCallback] = [
        NoFinalCheckpoint(),
        stopper,
        SampleTableCallback(reward, spec.sample_every, report, on_samples),  # type: ignore[arg-type]
    ]
    trainer_type = GRPOTrainer if spec.algorithm is Algorithm.GRPO else RLOOTrainer
    try:
        # With beta > 0 the trainer loads its reference from the policy's folder.
        trainer: Trainer = trainer_type(
            model=model,
            # TRL's type wants list[float | None]; a list of floats is what it reads.
            reward_funcs=cast(Any, reward),
            args=rl_config(spec, output_dir / CHECKPOINTS, device=device),  # type: ignore[arg-type]
            train_dataset=prompt_rows(prompts),
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    except Exception as exc:
        if is_out_of_memory(exc):
            raise TrainingOutOfMemory(_memory_hint(spec, exc)) from exc
        raise
    trainer.remove_callback(PrinterCallback)
    start = resume_from.step if resume_from else 0
    progress(start, spec.max_steps, f"{name}: resuming from step {start}" if start else name)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from.path) if resume_from else None)
    except Exception as exc:
        write_log(trainer, output_dir)
        if is_out_of_memory(exc):
            raise TrainingOutOfMemory(_memory_hint(spec, exc)) from exc
        raise
    step = trainer.state.global_step
    progress(step, spec.max_steps, f"saving policy to {output_dir}")
    final_model(trainer).save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    write_log(trainer, output_dir)
    checkpoints = output_dir / CHECKPOINTS
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()
    return RLOutcome(
        output_dir=output_dir,
        steps=step,
        stopped_early=stopper.stopped,
        final_metrics=final_metrics(trainer.state.log_history),
        prompts=len(prompts),
        seconds=time.monotonic() - started,
        resumed_from=start,
    )


def _memory_hint(spec: RLHyperparameters, exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"RL ran out of memory ({first}): lower per_device_train_batch_size (now "
        f"{spec.per_device_train_batch_size}) and raise gradient_accumulation_steps, or lower "
        f"max_completion_length (now {spec.max_completion_length}) or num_generations"
    )
