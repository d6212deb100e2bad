"""Trainer checkpoints in a run's output folder: which one a new attempt of the run resumes from.

A job's output folder holds `checkpoints/checkpoint-N` (the Trainer's, rotated to the last
`KEEP_CHECKPOINTS`) and `run.json`, what identifies the run that wrote them: a checkpoint is
resumed only by the same run, never by another job that happens to get the same folder.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

CHECKPOINTS = "checkpoints"
RUN_FILE = "run.json"
# Two, not one: a worker killed while writing checkpoint N still leaves checkpoint N-1 whole.
KEEP_CHECKPOINTS = 2
# The Trainer writes this file last into a checkpoint: without it the checkpoint is partial.
_COMPLETE_MARK = "trainer_state.json"
_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int


def latest_checkpoint(output_dir: Path) -> Checkpoint | None:
    """The complete checkpoint with the highest step under `output_dir`, if any."""
    found = [
        checkpoint
        for checkpoint in _checkpoints(output_dir / CHECKPOINTS)
        if _is_complete(checkpoint.path)
    ]
    return max(found, key=lambda checkpoint: checkpoint.step, default=None)


def resume_point(output_dir: Path, run: dict[str, Any]) -> Checkpoint | None:
    """The checkpoint this attempt of `run` continues from, or None to start from step 0.

    `run` identifies the run (the job and its spec, as JSON values). When the folder was
    written by another run, its checkpoints are removed: resuming them would continue someone
    else's training, and the Trainer's rotation would mix them with this run's.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    run_file = output_dir / RUN_FILE
    if run_file.is_file() and _read_json(run_file) == json.loads(json.dumps(run)):
        for checkpoint in _checkpoints(output_dir / CHECKPOINTS):
            if not _is_complete(checkpoint.path):
                # Half written when its worker died; it would count in the Trainer's rotation
                # and push out a whole one.
                shutil.rmtree(checkpoint.path, ignore_errors=True)
        return latest_checkpoint(output_dir)
    remove_checkpoints(output_dir)
    run_file.write_text(json.dumps(run, indent=2) + "\n")
    return None


def remove_checkpoints(output_dir: Path) -> None:
    """Drops the checkpoints (optimizer state included, several times the model's size)."""
    shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)


class NoFinalCheckpoint(TrainerCallback):
    """Skips the checkpoint the Trainer saves when the last step is reached.

    train_model saves the final model itself; a full checkpoint at that step (with the
    optimizer state) would only cost the time to write it. A run stopped on request still
    saves, since that checkpoint is what Resume continues from.
    """

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_save = False


def _checkpoints(folder: Path) -> list[Checkpoint]:
    if not folder.is_dir():
        return []
    return [
        Checkpoint(path=path, step=int(path.name.removeprefix(_PREFIX)))
        for path in folder.iterdir()
        if path.is_dir()
        and path.name.startswith(_PREFIX)
        and path.name.removeprefix(_PREFIX).isdigit()
    ]


def _is_complete(path: Path) -> bool:
    return (path / _COMPLETE_MARK).is_file()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
