"""Soft-label training: the reward model's cross-entropy and DPO's per-row smoothing equal their
hand formulas, and TRL's own losses where every p is 1; a tiny Llama trains with them."""

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset, DatasetDict
from torch.nn import functional as F
from transformers import Trainer

from app.specs.training import Method, TrainingHyperparameters
from tests.unit.test_training import QUESTIONS, Recorder, preference_rows, run, tiny_spec, weight
from worker.training.callbacks import MetricsCallback
from worker.training.data import TrainingInputError, load_training_split
from worker.training.run import build_trainer, load_base_model
from worker.training.soft_dpo import SoftDPOTrainer
from worker.training.soft_labels import SoftRewardTrainer, soft_preference_loss

SOFT = [0.9, 0.6, 0.75, 0.55, 0.8, 0.65, 0.7, 0.95, 0.6, 0.85, 0.7, 0.6]


def test_soft_loss_equals_the_hand_computation() -> None:
    chosen = torch.tensor([1.0, 0.0, -0.5])
    rejected = torch.tensor([0.0, 0.5, 0.5])
    p = torch.tensor([1.0, 0.7, 0.2])

    def log_sigmoid(x: float) -> float:
        return math.log(1 / (1 + math.exp(-x)))

    by_hand = (
        -(
            (1.0 * log_sigmoid(1.0) + 0.0 * log_sigmoid(-1.0))
            + (0.7 * log_sigmoid(-0.5) + 0.3 * log_sigmoid(0.5))
            + (0.2 * log_sigmoid(-1.0) + 0.8 * log_sigmoid(1.0))
        )
        / 3
    )
    assert soft_preference_loss(chosen, rejected, p).item() == pytest.approx(by_hand, abs=1e-6)
    # p = 1 everywhere is TRL's hard loss.
    hard = -F.logsigmoid(chosen - rejected).mean()
    ones = soft_preference_loss(chosen, rejected, torch.ones(3))
    assert ones.item() == pytest.approx(hard.item(), abs=1e-7)


def test_the_rows_carry_the_target_p(tmp_path: Path) -> None:
    rows = [
        {**row, "soft_label": label, "comparison_id": 100 + index, "corrected": index == 1}
        for index, (row, label) in enumerate(
            zip(preference_rows()[:3], [0.7, 0.6, 0.8], strict=True)
        )
    ]
    hard = [{k: v for k, v in row.items() if k != "soft_label"} for row in preference_rows()[:2]]
    DatasetDict({"train_prefs": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "s" / "hf"))
    DatasetDict({"train_prefs": Dataset.from_list(hard)}).save_to_disk(str(tmp_path / "h" / "hf"))

    soft, _ = load_training_split(tmp_path / "s", Method.REWARD)
    assert set(soft.column_names) == {"prompt", "chosen", "rejected", "comparison_id", "soft_label"}
    # A pair a person decided (`corrected` in a feedback dataset) is certain.
    assert soft["soft_label"] == [0.7, 1.0, 0.8]
    assert soft["comparison_id"] == [100, 101, 102]
    hard_rows, _ = load_training_split(tmp_path / "h", Method.DPO)
    assert hard_rows["soft_label"] == [1.0, 1.0]

    bad = [{**rows[0], "soft_label": 1.5}]
    DatasetDict({"train_prefs": Dataset.from_list(bad)}).save_to_disk(str(tmp_path / "b" / "hf"))
    with pytest.raises(TrainingInputError, match=r"split train_prefs: a soft_label must lie"):
        load_training_split(tmp_path / "b", Method.REWARD)


def test_soft_labels_are_refused_for_sft() -> None:
    with pytest.raises(ValueError, match="soft_labels"):
        tiny_spec(Method.SFT, soft_labels=True)
    assert tiny_spec(Method.DPO, soft_labels=True).soft_labels


def soft_folder(folder: Path, soft: list[float]) -> Path:
    rows = [
        {**row, "soft_label": label, "comparison_id": 100 + index}
        for index, (row, label) in enumerate(zip(preference_rows(), soft, strict=True))
    ]
    DatasetDict(
        {
            "train_prefs": Dataset.from_list(rows[:8]),
            "test_prefs": Dataset.from_list(rows[8:]),
        }
    ).save_to_disk(str(folder / "hf"))
    return folder


def trainer_for(
    spec: TrainingHyperparameters, model: Any, tokenizer: Any, data: Path, out: Path
) -> Trainer:
    train, evaluation = load_training_split(data, spec.method)
    return build_trainer(
        spec,
        model,
        tokenizer,
        out,
        train_rows=train,
        eval_rows=evaluation,
        callback=MetricsCallback(lambda step, metrics: None, lambda: False),
        device="cpu",
    )


def first_batch(trainer: Trainer, size: int = 4) -> dict[str, Any]:
    """The trainer's own collation of its first rows (after TRL's column pruning)."""
    loader = trainer.get_eval_dataloader(trainer.train_dataset)
    batches = iter(loader)
    batch = next(batches)
    assert batch["input_ids"].shape[0] == 2 * min(size, trainer.args.per_device_eval_batch_size)
    return dict(batch)


@pytest.mark.parametrize("labels", ["ones", "soft"])
def test_soft_reward_trainer_loss(tiny_model: Path, tmp_path: Path, labels: str) -> None:
    soft = [1.0] * len(QUESTIONS) if labels == "ones" else SOFT
    data = soft_folder(tmp_path / "data", soft)
    spec = tiny_spec(Method.REWARD, per_device_train_batch_size=4)
    model, tokenizer = load_base_model(str(tiny_model), Method.REWARD, device="cpu", seed=0)
    hard_model = copy.deepcopy(model)
    soft_trainer = trainer_for(
        spec.model_copy(update={"soft_labels": True}), model, tokenizer, data, tmp_path / "s"
    )
    hard_trainer = trainer_for(spec, hard_model, tokenizer, data, tmp_path / "h")
    assert isinstance(soft_trainer, SoftRewardTrainer)

    batch = first_batch(soft_trainer)
    # The column survived TRL's pruning and collator, in the rows' order.
    assert batch["soft_label"].tolist() == pytest.approx(soft[:4])
    model.eval()
    with torch.no_grad():
        loss = soft_trainer.compute_loss(model, dict(batch)).item()
        rewards = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits.squeeze(-1)
        hard_batch = {k: v for k, v in batch.items() if k != "soft_label"}
        hard_model.eval()
        trl_loss = hard_trainer.compute_loss(hard_model, hard_batch).item()
    chosen, rejected = rewards[:4].tolist(), rewards[4:].tolist()
    by_hand = (
        -sum(
            p * math.log(1 / (1 + math.exp(-(c - r))))
            + (1 - p) * math.log(1 / (1 + math.exp(c - r)))
            for c, r, p in zip(chosen, rejected, soft[:4], strict=True)
        )
        / 4
    )
    assert loss == pytest.approx(by_hand, rel=1e-5, abs=1e-6)
    if labels == "ones":
        assert loss == pytest.approx(trl_loss, rel=1e-6, abs=1e-7)
    else:
        assert loss != pytest.approx(trl_loss, rel=1e-3)


def sequence_logps(model: Any, batch: dict[str, Any]) -> torch.Tensor:
    """Each row's summed log-probability of its completion tokens, from plain logits."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tokens = batch["input_ids"][:, 1:].unsqueeze(-1)
    per_token = logps.gather(-1, tokens).squeeze(-1)
    return (per_token * batch["completion_mask"][:, 1:]).sum(dim=1)


def perturb(model: Any, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(0.05 * noise.to(parameter.dtype))


@pytest.mark.parametrize("labels", ["ones", "soft"])
def test_soft_dpo_loss(tiny_model: Path, tmp_path: Path, labels: str) -> None:
    soft = [1.0] * len(QUESTIONS) if labels == "ones" else SOFT
    data = soft_folder(tmp_path / "data", soft)
    spec = tiny_spec(Method.DPO, per_device_train_batch_size=4, beta=0.5)
    model, tokenizer = load_base_model(str(tiny_model), Method.DPO, device="cpu", seed=0)
    hard_model = copy.deepcopy(model)
    soft_trainer = trainer_for(
        spec.model_copy(update={"soft_labels": True}), model, tokenizer, data, tmp_path / "s"
    )
    hard_trainer = trainer_for(spec, hard_model, tokenizer, data, tmp_path / "h")
    assert isinstance(soft_trainer, SoftDPOTrainer)
    # The policy moves away from its reference (a copy taken when the trainer was built), so
    # the log-ratios, and with them the smoothing's effect, are not zero.
    perturb(model)
    perturb(hard_model)

    batch = first_batch(soft_trainer)
    assert batch["soft_label"].tolist() == pytest.approx(soft[:4])
    model.eval()
    hard_model.eval()
    with torch.no_grad():
        loss = soft_trainer.compute_loss(model, dict(batch)).item()
        hard_batch = {k: v for k, v in batch.items() if k != "soft_label"}
        trl_loss = hard_trainer.compute_loss(hard_model, hard_batch).item()
        ratios = sequence_logps(model, batch) - sequence_logps(soft_trainer.ref_model, batch)
    h = (ratios[:4] - ratios[4:]).tolist()
    beta = 0.5
    by_hand = (
        -sum(
            p * math.log(1 / (1 + math.exp(-beta * x)))
            + (1 - p) * math.log(1 / (1 + math.exp(beta * x)))
            for x, p in zip(h, soft[:4], strict=True)
        )
        / 4
    )
    assert max(abs(x) for x in h) > 1e-2  # the check below is not of log 2 against log 2
    assert loss == pytest.approx(by_hand, rel=1e-4, abs=1e-5)
    if labels == "ones":
        assert loss == pytest.approx(trl_loss, rel=1e-6, abs=1e-7)
    else:
        assert loss != pytest.approx(trl_loss, rel=1e-3)


def test_soft_reward_model_trains_and_reports_calibration(tiny_model: Path, tmp_path: Path) -> None:
    data = soft_folder(tmp_path / "data", SOFT)
    recorder = Recorder()
    spec = tiny_spec(Method.REWARD, soft_labels=True)
    # People labelled comparison 108 (a held-out pair) and chose its `chosen` reply.
    chosen_reply = preference_rows()[8]["chosen"][0]["content"]

    def people_prefer(ids: list[int]) -> dict[int, str]:
        assert sorted(ids) == [108, 109, 110, 111]
        return {108: chosen_reply, 109: "a reply nobody wrote here"}

    outcome = run_with_people(spec, tiny_model, data, tmp_path / "out", recorder, people_prefer)

    assert outcome.steps == 3
    assert not torch.equal(weight(outcome.output_dir, reward=True), weight(tiny_model))
    report = outcome.calibration
    assert report is not None
    assert report["pairs"] == 4
    assert 0 <= report["accuracy"] <= 1
    assert 0 <= report["mean_abs_error"] <= 1
    assert 0 <= report["expected_calibration_error"] <= report["mean_abs_error"] + 1e-9
    assert len(report["bins"]) == 10 and sum(b["count"] for b in report["bins"]) == 4
    assert report["people_pairs"] == 2
    assert report["people_agreement"] in (0.0, 0.5, 1.0)
    stored = json.loads((outcome.output_dir / "calibration.json").read_text())
    assert stored == report
    assert "eval_loss" in outcome.final_metrics  # the soft loss, on the held-out pairs


def test_hard_reward_model_reports_calibration_against_ones(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = soft_folder(tmp_path / "data", SOFT)
    outcome = run(tiny_spec(Method.REWARD), tiny_model, data, tmp_path / "out", Recorder())
    report = outcome.calibration
    assert report is not None and report["pairs"] == 4
    assert report["people_pairs"] == 0 and report["people_agreement"] is None


def test_soft_dpo_trains(tiny_model: Path, tmp_path: Path) -> None:
    data = soft_folder(tmp_path / "data", SOFT)
    recorder = Recorder()
    spec = tiny_spec(Method.DPO, soft_labels=True)
    outcome = run(spec, tiny_model, data, tmp_path / "out", recorder)
    assert outcome.steps == 3
    assert recorder.steps_with("loss") == {1, 2, 3}
    assert not torch.equal(weight(outcome.output_dir), weight(tiny_model))
    assert outcome.calibration is None


def run_with_people(
    spec: TrainingHyperparameters,
    model: Path,
    data: Path,
    output: Path,
    recorder: Recorder,
    people_prefer: Any,
) -> Any:
    from worker.training.run import train_model

    return train_model(
        spec,
        base_model_folder=str(model),
        dataset_folder=data,
        output_dir=output,
        report=recorder.report,
        should_stop=recorder.should_stop,
        progress=recorder.on_progress,
        people_prefer=people_prefer,
    )
