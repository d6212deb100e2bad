"""One training run: load the base model, train with TRL, save a plain model folder.

The caller (the Celery task, a CLI, a test) injects three callbacks: `report` for metrics,
`should_stop` polled after each step, and `progress(step, total, message)`; and, to continue an
earlier attempt, the checkpoint to resume from (worker/training/checkpoints.py).
"""

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    set_seed,
)
from trl import DPOTrainer, RewardTrainer, SFTTrainer
from trl.trainer.reward_trainer import suppress_seqcls_warning

from app.specs.training import Method, TrainingHyperparameters
from worker.backends.local_models import load_tokenizer
from worker.training.callbacks import (
    MetricsCallback,
    MetricsReport,
    TrainingDiverged,
    numeric_metrics,
)
from worker.training.checkpoints import CHECKPOINTS, Checkpoint, NoFinalCheckpoint
from worker.training.data import TrainingInputError, load_training_split
from worker.training.presets import trainer_config, use_bf16
from worker.training.reward_calibration import PeoplePrefer, held_out_report
from worker.training.soft_dpo import SoftDPOTrainer
from worker.training.soft_labels import SoftRewardTrainer

# The errors a caller handles, importable from here with train_model.
__all__ = [
    "BaseModelError",
    "TrainingDiverged",
    "TrainingInputError",
    "TrainingOutOfMemory",
    "TrainingOutcome",
    "train_model",
]

Progress = Callable[[int, int, str], None]
LOG_FILE = "training_log.jsonl"
CALIBRATION_FILE = "calibration.json"
SPEC_FILE = "training_spec.json"


class BaseModelError(Exception):
    """The base model folder cannot be loaded."""


class TrainingOutOfMemory(Exception):
    """The run did not fit in memory; the message says what to lower."""


@dataclass
class TrainingOutcome:
    output_dir: Path  # the final model: a causal LM (SFT, DPO) or a 1-label classifier (reward)
    steps: int
    stopped_early: bool  # cancelled: the saved model is the one at the stop
    final_metrics: dict[str, float]
    train_rows: int
    seconds: float
    resumed_from: int = 0  # the checkpoint's step this attempt continued from; 0: from the start
    # A reward model's report on the held-out pairs (app/recipe/calibration.py), as a dict.
    calibration: dict[str, Any] | None = None


def training_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_base_model(
    folder: str, method: Method, *, device: str, seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model to train and its chat-ready tokenizer; BaseModelError when either fails."""
    path = Path(folder).expanduser()
    if (path.is_absolute() or folder.startswith((".", "~"))) and not path.exists():
        # An absent local path would otherwise be tried as a hub id, slowly and confusingly.
        raise BaseModelError(f"cannot load base model {folder}: no such folder")
    dtype = torch.bfloat16 if use_bf16(device) else torch.float32
    try:
        if method is Method.REWARD:
            # The classifier head is new and random: seeding first makes it the same each run.
            set_seed(seed)
            # The causal LM's head is unused and the score head missing, as intended: say nothing.
            with suppress_seqcls_warning():
                model = AutoModelForSequenceClassification.from_pretrained(
                    folder, num_labels=1, dtype=dtype
                )
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        tokenizer = load_tokenizer(folder)
    except Exception as exc:
        raise BaseModelError(f"cannot load base model {folder}: {exc}") from exc
    # A sequence classifier finds each row's last token through pad_token_id; generation needs
    # it to pad batches.
    model.config.pad_token_id = tokenizer.pad_token_id
    if method is not Method.REWARD and model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if device != "cpu":
        try:
            model = model.to(device)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise TrainingOutOfMemory(
                    f"base model {folder} does not fit in {device} memory: use a smaller base "
                    "model or a device with more memory"
                ) from exc
            raise
    return model, tokenizer


def lora_config(spec: TrainingHyperparameters) -> LoraConfig:
    if spec.method is Method.REWARD:
        # The score head is new: it must be trained in full, not through an adapter.
        return LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules="all-linear",
            task_type="SEQ_CLS",
            modules_to_save=["score"],
        )
    return LoraConfig(
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        # PEFT's "all-linear" leaves out lm_head, which DPO requires (it reads lm_head.weight).
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def build_trainer(
    spec: TrainingHyperparameters,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    *,
    train_rows: Any,
    eval_rows: Any,
    callback: MetricsCallback,
    device: str,
) -> Trainer:
    args = trainer_config(spec, output_dir / CHECKPOINTS, device=device)
    peft_config = lora_config(spec) if spec.use_lora else None
    common: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": train_rows,
        "eval_dataset": eval_rows,
        "processing_class": tokenizer,
        # NoFinalCheckpoint first: a stop on the last step still saves (MetricsCallback).
        "callbacks": [NoFinalCheckpoint(), callback],
        "peft_config": peft_config,
    }
    if spec.method is Method.SFT:
        return SFTTrainer(**common)
    if spec.method is Method.DPO:
        # Without ref_model (and without LoRA, whose disabled adapter is the reference) TRL
        # reloads the reference from config._name_or_path: slow, and wrong for a hub id offline.
        ref_model = None if spec.use_lora else copy.deepcopy(model)
        dpo = SoftDPOTrainer if spec.soft_labels else DPOTrainer
        return dpo(ref_model=ref_model, **common)
    return SoftRewardTrainer(**common) if spec.soft_labels else RewardTrainer(**common)


def train_model(
    spec: TrainingHyperparameters,
    *,
    base_model_folder: str,
    dataset_folder: Path,
    output_dir: Path,
    report: MetricsReport,
    should_stop: Callable[[], bool],
    progress: Progress,
    resume_from: Checkpoint | None = None,
    people_prefer: PeoplePrefer | None = None,
) -> TrainingOutcome:
    """Trains `spec.method` on the dataset folder and saves a plain model into `output_dir`.

    With `resume_from` (a checkpoint of this same run) the model, optimizer, schedule and data
    order continue from that step, so the steps after it are reported again, not the ones before.

    Raises BaseModelError, TrainingInputError, TrainingDiverged or TrainingOutOfMemory; the
    last two after writing training_log.jsonl.

    A reward model is then scored on the held-out pairs: accuracy, calibration against the
    targets, and agreement with people where `people_prefer` names what they chose; the report
    is in the outcome and in calibration.json.
    """
    started = time.monotonic()
    device = training_device()
    # The model first: a wrong base model should fail at once, before any dataset work.
    progress(0, 0, f"loading base model {base_model_folder}")
    model, tokenizer = load_base_model(
        base_model_folder, spec.method, device=device, seed=spec.seed
    )
    progress(0, 0, f"loading dataset {dataset_folder}")
    train_rows, eval_rows = load_training_split(dataset_folder, spec.method)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SPEC_FILE).write_text(json.dumps(spec.to_parameters(), indent=2) + "\n")

    training = f"{spec.method.value} training"
    if resume_from is not None:
        training += f" (resumed from step {resume_from.step})"

    def step_progress(step: int, total: int) -> None:
        progress(step, total, f"{training}: step {step} of {total}")

    callback = MetricsCallback(report, should_stop, step_progress)
    calibration: dict[str, Any] | None = None
    try:
        # DPO copies the model for its reference here: on a GPU the first place memory runs out.
        trainer = build_trainer(
            spec,
            model,
            tokenizer,
            output_dir,
            train_rows=train_rows,
            eval_rows=eval_rows,
            callback=callback,
            device=device,
        )
    except Exception as exc:
        if is_out_of_memory(exc):
            raise TrainingOutOfMemory(out_of_memory_message(spec, exc)) from exc
        raise
    # With tqdm off, Trainer prints every log to stdout; the callback reports them instead.
    trainer.remove_callback(PrinterCallback)
    rows = _row_count(trainer.train_dataset)
    if rows == 0:
        # TRL drops rows it cannot learn from: SFT and DPO those whose prompt alone fills
        # max_length, the reward trainer any pair with a reply longer than max_length.
        raise TrainingInputError(
            f"dataset {dataset_folder}: no training row fits in max_length={spec.max_length} "
            "tokens; raise max_length"
        )
    total = spec.max_steps if spec.max_steps > 0 else 0
    if resume_from is None:
        progress(0, total, training)
    else:
        progress(
            resume_from.step,
            total,
            f"{spec.method.value} training: resuming from step {resume_from.step}",
        )
    try:
        trainer.train(resume_from_checkpoint=str(resume_from.path) if resume_from else None)
        if _row_count(trainer.eval_dataset) > 0 and not callback.stopped:
            progress(trainer.state.global_step, trainer.state.max_steps, "evaluating")
            trainer.evaluate()
            if spec.method is Method.REWARD:
                progress(trainer.state.global_step, trainer.state.max_steps, "calibration")
                held_out = held_out_report(trainer, people_prefer=people_prefer)
                calibration = held_out.to_dict() if held_out is not None else None
    except Exception as exc:
        # TrainingDiverged included: the log up to the failure is what a person reads next.
        write_log(trainer, output_dir)
        if is_out_of_memory(exc):
            raise TrainingOutOfMemory(out_of_memory_message(spec, exc)) from exc
        raise
    step, total = trainer.state.global_step, trainer.state.max_steps
    progress(step, total, f"saving model to {output_dir}")
    final = final_model(trainer)
    final.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    write_log(trainer, output_dir)
    if calibration is not None:
        (output_dir / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2) + "\n")
    _remove_if_empty(output_dir / CHECKPOINTS)
    return TrainingOutcome(
        output_dir=output_dir,
        steps=step,
        stopped_early=callback.stopped,
        final_metrics=final_metrics(trainer.state.log_history),
        train_rows=rows,
        seconds=time.monotonic() - started,
        resumed_from=resume_from.step if resume_from else 0,
        calibration=calibration,
    )


def final_model(trainer: Trainer) -> PreTrainedModel:
    """The trained model as a plain transformers model: a LoRA adapter is merged in."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        # A merged full model loads and generates with no knowledge of PEFT.
        model = model.merge_and_unload()
    assert isinstance(model, PreTrainedModel)
    return model


def final_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The last finite value of each logged metric (train summary and evaluation included)."""
    latest: dict[str, float] = {}
    for entry in log_history:
        for name, value in numeric_metrics(entry).items():
            if name != "step" and math.isfinite(value):
                latest[name] = value
    return latest


def write_log(trainer: Trainer, output_dir: Path) -> None:
    """trainer.state.log_history as JSON lines; NaN and inf become strings to stay valid JSON."""
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(_json_safe(entry)) for entry in trainer.state.log_history]
    (output_dir / LOG_FILE).write_text("".join(line + "\n" for line in lines))


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def out_of_memory_message(spec: TrainingHyperparameters, exc: BaseException) -> str:
    hints = [
        f"lower per_device_train_batch_size (now {spec.per_device_train_batch_size}) and raise "
        "gradient_accumulation_steps to keep the effective batch",
        f"lower max_length (now {spec.max_length})",
    ]
    if not spec.gradient_checkpointing:
        hints.append("turn on gradient_checkpointing")
    if not spec.use_lora:
        hints.append("turn on use_lora")
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"training ran out of memory ({first_line}): " + "; ".join(hints)


def _row_count(rows: Any) -> int:
    if rows is None:
        return 0
    if isinstance(rows, dict):
        return sum(len(part) for part in rows.values())
    return len(rows)


def _remove_if_empty(folder: Path) -> None:
    # Trainer creates the checkpoint folder even when nothing is saved into it.
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _json_safe(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        name: str(value) if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in entry.items()
    }
