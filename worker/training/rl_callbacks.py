"""Every N steps of an RL run: a table of the step's completions with their rewards, and the
Goodhart watch over them (app/recipe/goodhart.py)."""

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from app.recipe.goodhart import GoodhartPoint, goodhart_point
from worker.training.callbacks import MetricsReport
from worker.training.rl_reward import Sample

# (step, the step's samples, their Goodhart point)
SampleSink = Callable[[int, list[Sample], GoodhartPoint], None]


class ScoredBatch(Protocol):
    latest: list[Sample]


class SampleTableCallback(TrainerCallback):
    """At every `every`-th step (and the last) hands the last scored batch to `sink` and
    reports the Goodhart metrics beside the trainer's own."""

    def __init__(
        self, reward: ScoredBatch, every: int, report: MetricsReport, sink: SampleSink
    ) -> None:
        self.reward, self.every, self.report, self.sink = reward, every, report, sink
        self.run_counts: Counter[tuple[str, ...]] = Counter()

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        step = state.global_step
        if not self.reward.latest or (step % self.every and step != state.max_steps):
            return
        samples = list(self.reward.latest)
        point = goodhart_point([s.completion for s in samples], self.run_counts)
        self.run_counts = point.run_counts
        metrics = {
            "goodhart/repeated_share": point.share,
            "goodhart/mean_words": point.mean_words,
            "goodhart/reward_mean": sum(s.reward for s in samples) / len(samples),
        }
        self.report(step, metrics)
        self.sink(step, samples, point)
