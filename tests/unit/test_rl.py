"""worker.training.rl: GRPO on the tiny Llama raises a synthetic reward; the preference reward
is the preference model's own score; cancel keeps a checkpoint that resume continues from."""

from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, set_seed

from app.recipe.goodhart import GoodhartPoint
from app.specs.rl import RLHyperparameters, rl_preset_spec
from worker.backends.local_models import load_tokenizer
from worker.training.checkpoints import latest_checkpoint
from worker.training.rl import load_preference_model, train_rl
from worker.training.rl_reward import Sample, conversation_text

PROMPTS = [(1, [{"role": "user", "content": f"Question number {i}?"}]) for i in range(48)]


class AlignedShare:
    """A reward the tiny model can learn: the share of completion tokens among the tenth of the
    vocabulary whose output rows point most along one random direction. Raising it means moving
    the last hidden state along that direction, one thing for every position, so a few steps
    show it (the share of one single token would need each row learned apart)."""

    def __init__(self, model_folder: Path) -> None:
        head = load_file(str(model_folder / "model.safetensors"))["lm_head.weight"].float()
        direction = torch.randn(head.shape[1], generator=torch.Generator().manual_seed(0))
        self.chosen = set(torch.topk(head @ direction, k=head.shape[0] // 10).indices.tolist())
        self.latest: list[Sample] = []
        self.__name__ = "aligned_share"

    def __call__(
        self, prompts: list[Any], completions: list[Any], completion_ids: list[list[int]], **_: Any
    ) -> list[float]:
        rewards = [sum(t in self.chosen for t in ids) / max(len(ids), 1) for ids in completion_ids]
        self.latest = [
            Sample("p", str(c), r, None) for c, r in zip(completions, rewards, strict=True)
        ]
        return rewards


def spec(**changes: Any) -> RLHyperparameters:
    values: dict[str, Any] = {
        "algorithm": "grpo",
        "learning_rate": 0.1,
        "beta": 0.0,
        "num_generations": 4,
        "max_completion_length": 6,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_steps": 12,
        "per_device_train_batch_size": 8,
        "sample_every": 4,
        "save_steps": 0,
        **changes,
    }
    return RLHyperparameters.model_validate(values)


def run(settings: RLHyperparameters, model: Path, reward: Any, out: Path, **kw: Any) -> Any:
    logs: list[tuple[int, dict[str, float]]] = []
    tables: list[tuple[int, list[Sample], GoodhartPoint]] = []
    outcome = train_rl(
        settings,
        policy_folder=str(model),
        reward=reward,
        prompts=PROMPTS,
        output_dir=out,
        report=lambda step, metrics: logs.append((step, metrics)),
        should_stop=kw.pop("should_stop", lambda: False),
        progress=lambda *args: None,
        on_samples=lambda step, samples, point: tables.append((step, samples, point)),
        **kw,
    )
    return outcome, logs, tables


def test_grpo_raises_a_learnable_reward_on_the_tiny_model(tiny_model: Path, tmp_path: Path) -> None:
    # 12 steps at a high learning rate (the tiny model is random): measured, the reward goes from
    # about 0.1 to 1.0 by step 6; 30 steps at 3e-2 also work (0.08 to 0.5) but take ~70 s here.
    outcome, logs, tables = run(spec(), tiny_model, AlignedShare(tiny_model), tmp_path / "out")
    rewards = [metrics["reward"] for _, metrics in logs if "reward" in metrics]
    assert len(rewards) == 12
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 0.3, rewards
    # TRL's RL metrics arrive under its own names, for the job page's curves.
    names = set().union(*(metrics for _, metrics in logs))
    assert {"reward_std", "entropy", "completions/mean_length", "goodhart/repeated_share"} <= names
    assert [step for step, _, _ in tables] == [4, 8, 12]
    assert len(tables[-1][1]) == 8  # the step's completions (2 prompts x 4)
    assert (outcome.output_dir / "model.safetensors").is_file() and outcome.steps == 12


def test_the_logged_reward_is_the_preference_models_own_score(
    tiny_model: Path, tmp_path: Path
) -> None:
    set_seed(0)
    head = AutoModelForSequenceClassification.from_pretrained(str(tiny_model), num_labels=1)
    tokenizer = load_tokenizer(str(tiny_model))
    head.config.pad_token_id = tokenizer.pad_token_id
    head.save_pretrained(str(tmp_path / "pm"))
    tokenizer.save_pretrained(str(tmp_path / "pm"))
    preference = load_preference_model(str(tmp_path / "pm"), device="cpu")
    _, logs, tables = run(
        spec(max_steps=1, sample_every=1, max_completion_length=8, learning_rate=1e-5),
        tiny_model,
        preference,
        tmp_path / "out",
    )
    ((_, samples, _),) = tables
    direct = []
    for sample in samples:
        text = conversation_text(tokenizer, sample.prompt, sample.completion)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            direct.append(head(**ids).logits[0, 0].item())
    assert [s.reward for s in samples] == pytest.approx(direct, abs=1e-4)
    logged = next(metrics["reward"] for _, metrics in logs if "reward" in metrics)
    assert logged == pytest.approx(sum(direct) / len(direct), abs=1e-4)
    assert len({round(r, 5) for r in direct}) > 1  # different completions, different scores


def test_a_cancelled_run_keeps_a_checkpoint_and_resume_continues_from_it(
    tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    stops = iter([False, True])
    settings = spec(max_steps=4, learning_rate=1e-4, beta=0.05, sample_every=10)
    stopped, _, _ = run(
        settings, tiny_model, AlignedShare(tiny_model), out, should_stop=lambda: next(stops, True)
    )
    assert stopped.stopped_early and stopped.steps == 2
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None and checkpoint.step == 2
    resumed, logs, _ = run(
        settings, tiny_model, AlignedShare(tiny_model), out, resume_from=checkpoint
    )
    assert not resumed.stopped_early and resumed.steps == 4 and resumed.resumed_from == 2
    assert sorted({step for step, metrics in logs if "reward" in metrics}) == [3, 4]
    assert "kl" in set().union(*(metrics for _, metrics in logs))  # beta > 0: a reference


def test_the_spec_names_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="num_generations") as one:
        spec(num_generations=1)
    assert "at least 2 generations" in str(one.value)
    with pytest.raises(ValidationError, match="per_device_train_batch_size"):
        spec(per_device_train_batch_size=6)  # 6 completions: not whole groups of 4
    assert spec(per_device_train_batch_size=6, gradient_accumulation_steps=2).prompts_per_step == 3
    smoke = rl_preset_spec("cpu-smoke")
    assert smoke.max_steps <= 10 and smoke.num_generations >= 2
    assert rl_preset_spec("trl-defaults-gpu").algorithm.value == "rloo"
