"""A TrainerCallback that reports metrics and progress outward and stops a run on request."""

import math
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

# (global step, {metric name: value}); names are TRL's own (loss, rewards/margins, ...).
MetricsReport = Callable[[int, dict[str, float]], None]
# The losses whose divergence ends a run; other metrics (grad_norm) follow from them.
_WATCHED_LOSSES = ("loss", "eval_loss")


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: continuing would only save a broken model."""


def numeric_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a trainer log as floats; bools and strings are left out."""
    return {
        name: float(value)
        for name, value in logs.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class MetricsCallback(TrainerCallback):
    """Reports every log, calls `progress(step, max_steps)` and polls `should_stop` each step."""

    def __init__(
        self,
        report: MetricsReport,
        should_stop: Callable[[], bool],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.report = report
        self.should_stop = should_stop
        self.progress = progress
        self.stopped = False

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        metrics = numeric_metrics(logs or {})
        finite = {name: value for name, value in metrics.items() if math.isfinite(value)}
        # Report first, so the steps up to the divergence are on record; NaN is left out because
        # JSON (and so the job's stored metrics) cannot hold it.
        if finite:
            self.report(state.global_step, finite)
        for name in _WATCHED_LOSSES:
            value = metrics.get(name)
            if value is not None and not math.isfinite(value):
                # An exception from a callback propagates out of trainer.train() unchanged.
                raise TrainingDiverged(
                    f"{name} became {value} at step {state.global_step}: training diverged; "
                    "lower the learning rate"
                )

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.progress is not None:
            self.progress(state.global_step, state.max_steps)
        if self.should_stop():
            self.stopped = True
            control.should_training_stop = True
            # Keep a checkpoint of the step reached, whatever the save schedule says.
            control.should_save = True
