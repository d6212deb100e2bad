"""worker.training: a tiny Llama trains for a few steps with SFT, DPO and a reward head."""

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import trl.trainer.dpo_trainer
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
)
from trl import DPOConfig

from app.recipe.training_presets import PRESETS
from app.specs.training import Method, TrainingHyperparameters, preset_spec
from worker.training.callbacks import MetricsCallback, TrainingDiverged
from worker.training.data import TrainingInputError, load_training_split
from worker.training.presets import trainer_config
from worker.training.run import (
    BaseModelError,
    TrainingOutcome,
    TrainingOutOfMemory,
    build_trainer,
    load_base_model,
    train_model,
)

WEIGHT = "model.layers.0.self_attn.q_proj.weight"
EXTRAS = {
    "trace_id": 1,
    "source": "test",
    "corrected": False,
    "init_prompt": "p",
    "init_response": "r",
    "critic_prompt": "cp",
    "critic_response": "cr",
    "revision_prompt": "rp",
    "revision_response": "rr",
}
QUESTIONS = [
    "How do I pick a lock?",
    "What is the capital of France?",
    "Tell me a joke about cats.",
    "How can I make my neighbour sad?",
    "Why is the sky blue?",
    "Write a haiku about rain.",
    "How do I bake bread?",
    "What is two plus two?",
    "Name a large mammal.",
    "How do I insult someone?",
    "What should I read next?",
    "How do plants grow?",
]


def sft_rows() -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": f"A short, kind answer to: {question}"},
            ],
            **EXTRAS,
            "trace_id": index,
        }
        for index, question in enumerate(QUESTIONS)
    ]


def preference_rows() -> list[dict[str, Any]]:
    return [
        {
            "prompt": [{"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": "I can help with that safely."}],
            "rejected": [{"role": "assistant", "content": "No. Go away, you fool."}],
            **EXTRAS,
            "trace_id": index,
            "soft_label": 0.7,
        }
        for index, question in enumerate(QUESTIONS)
    ]


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_dataset(tmp_path_factory.mktemp("dataset"))


def save_dataset(folder: Path) -> Path:
    """A built dataset's folder: ten SFT and preference rows to train on, two to evaluate."""
    sft, prefs = sft_rows(), preference_rows()
    DatasetDict(
        {
            "train_sft": Dataset.from_list(sft[:10]),
            "test_sft": Dataset.from_list(sft[10:]),
            "train_prefs": Dataset.from_list(prefs[:10]),
            "test_prefs": Dataset.from_list(prefs[10:]),
        }
    ).save_to_disk(str(folder / "hf"))
    return folder


@pytest.fixture(scope="module")
def sft_only_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sft-only")
    DatasetDict({"train_sft": Dataset.from_list(sft_rows())}).save_to_disk(str(folder / "hf"))
    return folder


def tiny_spec(method: Method, **changes: Any) -> TrainingHyperparameters:
    values: dict[str, Any] = {
        "method": method,
        # High for a real model; on a tiny random one it moves the weights visibly in 3 steps.
        "learning_rate": 1e-3,
        "num_train_epochs": 1,
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_length": 96,
        **changes,
    }
    return TrainingHyperparameters(**values)


class Recorder:
    """Collects what train_model reports, as the Celery task would store it."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.progress: list[tuple[int, int, str]] = []
        self.stop_after = stop_after

    def report(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.append((step, metrics))

    def on_progress(self, step: int, total: int, message: str) -> None:
        self.progress.append((step, total, message))

    def should_stop(self) -> bool:
        steps = [step for step, _, _ in self.progress if step > 0]
        return self.stop_after is not None and bool(steps) and max(steps) >= self.stop_after

    def steps_with(self, name: str) -> set[int]:
        return {step for step, metrics in self.metrics if name in metrics}


def run(
    spec: TrainingHyperparameters, model: Path, data: Path, output: Path, recorder: Recorder
) -> TrainingOutcome:
    return train_model(
        spec,
        base_model_folder=str(model),
        dataset_folder=data,
        output_dir=output,
        report=recorder.report,
        should_stop=recorder.should_stop,
        progress=recorder.on_progress,
    )


def weight(folder: Path, *, reward: bool = False) -> torch.Tensor:
    loader = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
    kwargs = {"num_labels": 1} if reward else {}
    model = loader.from_pretrained(str(folder), **kwargs)
    return model.state_dict()[WEIGHT].clone()


def generates(folder: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(text, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]


def test_sft_trains_saves_and_generates(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path
) -> None:
    recorder = Recorder()
    outcome = run(tiny_spec(Method.SFT), tiny_model, dataset_folder, tmp_path / "out", recorder)

    assert outcome.steps == 3 and not outcome.stopped_early
    assert outcome.train_rows == 10
    assert recorder.steps_with("loss") == {1, 2, 3}
    assert "eval_loss" in outcome.final_metrics  # evaluated once on test_sft at the end
    assert not torch.equal(weight(outcome.output_dir), weight(tiny_model))
    generates(outcome.output_dir)
    log = (outcome.output_dir / "training_log.jsonl").read_text().splitlines()
    assert [json.loads(line).get("loss") is not None for line in log][:3] == [True] * 3
    stored = json.loads((outcome.output_dir / "training_spec.json").read_text())
    assert TrainingHyperparameters.from_parameters(stored) == tiny_spec(Method.SFT)
    assert recorder.progress[-1][2].startswith("saving model")
    # The last step writes no checkpoint: the model folder is the final save.
    assert not (outcome.output_dir / "checkpoints").exists()


def test_sft_loss_falls_on_the_reply_only(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path
) -> None:
    spec = tiny_spec(Method.SFT)
    model, tokenizer = load_base_model(str(tiny_model), Method.SFT, device="cpu", seed=0)
    train, evaluation = load_training_split(dataset_folder, Method.SFT)
    callback = MetricsCallback(lambda step, metrics: None, lambda: False)
    trainer = build_trainer(
        spec,
        model,
        tokenizer,
        tmp_path,
        train_rows=train,
        eval_rows=evaluation,
        callback=callback,
        device="cpu",
    )
    assert isinstance(trainer.train_dataset, Dataset)
    labels = trainer.train_dataset[0]["labels"]
    reply = tokenizer(f"A short, kind answer to: {QUESTIONS[0]}")["input_ids"]
    assert labels[0] == -100  # the system prompt and the question are not learned
    learned = [label for label in labels if label != -100]
    assert len(reply) <= len(learned) <= len(reply) + 3  # the reply and its end-of-turn


def test_dpo_trains_and_reports_reward_metrics(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reload(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DPOTrainer reloaded the reference model from disk")

    # The reference is passed in, so nothing is loaded again from config._name_or_path.
    monkeypatch.setattr(trl.trainer.dpo_trainer, "create_model_from_path", no_reload)
    recorder = Recorder()
    outcome = run(tiny_spec(Method.DPO), tiny_model, dataset_folder, tmp_path / "out", recorder)

    assert outcome.steps == 3
    assert recorder.steps_with("loss") == {1, 2, 3}
    assert recorder.steps_with("rewards/margins") >= {1, 2, 3}
    assert recorder.steps_with("rewards/accuracies") >= {1, 2, 3}
    assert not torch.equal(weight(outcome.output_dir), weight(tiny_model))
    generates(outcome.output_dir)


def test_reward_model_trains_and_loads_as_a_classifier(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path
) -> None:
    recorder = Recorder()
    spec = tiny_spec(Method.REWARD)
    outcome = run(spec, tiny_model, dataset_folder, tmp_path / "out", recorder)

    assert outcome.steps == 3
    assert recorder.steps_with("loss") == {1, 2, 3}
    model = AutoModelForSequenceClassification.from_pretrained(str(outcome.output_dir))
    assert model.config.num_labels == 1
    assert model.config.pad_token_id is not None
    trained = model.state_dict()[WEIGHT]
    assert not torch.equal(trained, weight(tiny_model))
    tokenizer = AutoTokenizer.from_pretrained(str(outcome.output_dir))
    scores = model(
        **tokenizer(["a reply", "another, longer reply"], padding=True, return_tensors="pt")
    )
    assert scores.logits.shape == (2, 1)


def test_lora_sft_saves_a_merged_full_model(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path
) -> None:
    spec = tiny_spec(Method.SFT, use_lora=True, lora_r=4, lora_alpha=8)
    outcome = run(spec, tiny_model, dataset_folder, tmp_path / "out", Recorder())

    assert not (outcome.output_dir / "adapter_config.json").exists()
    assert (outcome.output_dir / "model.safetensors").exists()
    merged = weight(outcome.output_dir)
    assert merged.shape == weight(tiny_model).shape
    assert not torch.equal(merged, weight(tiny_model))
    generates(outcome.output_dir)


def test_stop_request_keeps_the_model_at_the_stop(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path
) -> None:
    recorder = Recorder(stop_after=2)
    spec = tiny_spec(Method.SFT, max_steps=6)
    outcome = run(spec, tiny_model, dataset_folder, tmp_path / "out", recorder)

    assert outcome.stopped_early
    assert outcome.steps == 2
    assert "eval_loss" not in outcome.final_metrics  # a stopped run is not evaluated
    assert not torch.equal(weight(outcome.output_dir), weight(tiny_model))
    assert (outcome.output_dir / "checkpoints" / "checkpoint-2").is_dir()


@pytest.fixture
def broken_model(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model with one NaN weight: its loss is NaN from the first step."""
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    with torch.no_grad():
        model.get_parameter(WEIGHT)[0, 0] = float("nan")
    folder = tmp_path / "broken"
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_model)).save_pretrained(str(folder))
    return folder


def test_divergence_raises_and_keeps_the_log(
    broken_model: Path, dataset_folder: Path, tmp_path: Path
) -> None:
    # A huge learning rate only saturates this tiny model (gradients vanish, no NaN), so the
    # NaN is planted in the weights instead.
    recorder = Recorder()
    output = tmp_path / "out"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 1: .*learning rate"):
        run(tiny_spec(Method.SFT), broken_model, dataset_folder, output, recorder)

    log = (output / "training_log.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in log]
    assert entries[-1]["loss"] == "nan" and entries[-1]["step"] == 1
    assert all("loss" not in metrics for _, metrics in recorder.metrics)  # NaN is not reported
    assert not (output / "model.safetensors").exists()


def test_out_of_memory_says_what_to_lower(
    tiny_model: Path, dataset_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train", no_memory)
    output = tmp_path / "out"
    with pytest.raises(TrainingOutOfMemory, match=r"per_device_train_batch_size.*max_length.*lora"):
        run(tiny_spec(Method.SFT), tiny_model, dataset_folder, output, Recorder())
    assert (output / "training_log.jsonl").exists()


def test_missing_base_model_fails_before_any_dataset_work(tmp_path: Path) -> None:
    started = time.monotonic()
    # The dataset folder does not exist either: a TrainingInputError would mean data came first.
    with pytest.raises(BaseModelError, match="cannot load base model"):
        run(
            tiny_spec(Method.SFT),
            tmp_path / "no-such-model",
            tmp_path / "no-such-dataset",
            tmp_path / "out",
            Recorder(),
        )
    assert time.monotonic() - started < 5


def test_missing_split_names_it(tiny_model: Path, sft_only_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingInputError, match="train_prefs"):
        load_training_split(sft_only_folder, Method.DPO)
    with pytest.raises(TrainingInputError, match=r"train_prefs.*sft-only|sft-only.*train_prefs"):
        run(tiny_spec(Method.REWARD), tiny_model, sft_only_folder, tmp_path / "out", Recorder())


def test_rows_take_trl_columns_only(dataset_folder: Path) -> None:
    train, evaluation = load_training_split(dataset_folder, Method.SFT)
    assert train.column_names == ["prompt", "completion"]
    assert train[0]["prompt"] == [{"role": "user", "content": QUESTIONS[0]}]
    assert train[0]["completion"][0]["role"] == "assistant"
    assert evaluation is not None and len(evaluation) == 2

    prefs, _ = load_training_split(dataset_folder, Method.REWARD)
    # soft_label is the target p (worker/training/soft_labels.py); TRL's own trainers drop it.
    assert prefs.column_names == ["prompt", "chosen", "rejected", "soft_label"]
    assert prefs[0]["soft_label"] == 0.7


def test_spec_round_trips_and_names_a_bad_field() -> None:
    for name in PRESETS:
        for method in Method:
            spec = preset_spec(name, method)
            stored = json.loads(json.dumps(spec.to_parameters()))
            assert TrainingHyperparameters.from_parameters(stored) == spec

    data = preset_spec("cpu-smoke", Method.DPO).to_parameters()
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingHyperparameters.from_parameters({**data, "learning_rate": -1})
    with pytest.raises(ValueError, match="per_device_train_batch_size"):
        TrainingHyperparameters.from_parameters({**data, "per_device_train_batch_size": "2"})
    with pytest.raises(ValueError, match="method"):
        TrainingHyperparameters.from_parameters({**data, "method": "ppo"})
    with pytest.raises(ValueError, match="max_length"):
        TrainingHyperparameters.from_parameters(
            {key: value for key, value in data.items() if key != "max_length"}
        )
    with pytest.raises(ValueError, match="epochs"):
        TrainingHyperparameters.from_parameters({**data, "epochs": 2})
    with pytest.raises(ValueError, match="hf-7b"):
        preset_spec("nope", Method.SFT)


def test_trainer_config_on_cpu(tmp_path: Path) -> None:
    spec = preset_spec("hf-7b", Method.DPO)
    config = trainer_config(spec, tmp_path, device="cpu")
    assert isinstance(config, DPOConfig)
    assert config.bf16 is False and config.fp16 is False and config.use_cpu is True
    assert config.beta == 0.1 and config.learning_rate == 5e-7
    assert config.dataloader_num_workers == 0 and config.report_to == []
    # A long run checkpoints every 100 steps and keeps the last two.
    assert str(config.save_strategy) in {"steps", "SaveStrategy.STEPS"}
    assert config.save_steps == 100 and config.save_total_limit == 2
    smoke = trainer_config(preset_spec("cpu-smoke", Method.SFT), tmp_path, device="cpu")
    assert smoke.gradient_checkpointing is False  # TRL's default is True
    assert smoke.max_steps < smoke.save_steps  # cpu-smoke never stops to write a checkpoint
    never = trainer_config(tiny_spec(Method.SFT, save_steps=0), tmp_path, device="cpu")
    assert str(never.save_strategy) in {"no", "SaveStrategy.NO"}
