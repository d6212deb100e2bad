"""The training spec: bounds, defaults, the presets that fill it, stored parameters read back."""

import json
from typing import Any, get_args

import pytest

from app.forms import parse_spec, spec_fields
from app.recipe.training_presets import PRESETS, PresetName
from app.specs import SpecError
from app.specs.training import Method, TrainingHyperparameters, TrainingJobSpec, preset_spec


def job_values(**changes: Any) -> dict[str, Any]:
    """A valid stored training job: the cpu-smoke DPO preset on model 1 and dataset 2."""
    return {
        **preset_spec("cpu-smoke", Method.DPO).to_parameters(),
        "base_model_id": 1,
        "dataset_id": 2,
        "preset": "cpu-smoke",
        **changes,
    }


def test_the_presets_are_the_names_the_spec_takes_and_fill_every_method() -> None:
    assert set(get_args(PresetName)) == set(PRESETS)
    for by_method in PRESETS.values():
        assert set(by_method) == {method.value for method in Method}
        for settings in by_method.values():
            assert set(settings) <= set(TrainingHyperparameters.model_fields)


def test_a_preset_round_trips_through_a_job_row() -> None:
    for name in PRESETS:
        for method in Method:
            preset = preset_spec(name, method)
            spec = TrainingJobSpec.model_validate(
                {**preset.to_parameters(), "base_model_id": 3, "dataset_id": 4, "preset": name}
            )
            stored = json.loads(json.dumps(spec.to_parameters()))
            assert TrainingJobSpec.from_parameters(stored) == spec
            assert spec.hyperparameters() == preset
    hf = preset_spec("hf-7b", Method.DPO)
    assert (hf.learning_rate, hf.num_train_epochs, hf.beta) == (5e-7, 3.0, 0.1)
    assert hf.gradient_checkpointing and hf.logging_steps == 10


def test_defaults_fill_what_a_job_leaves_out() -> None:
    spec = TrainingJobSpec.from_parameters(
        {
            "base_model_id": 1,
            "dataset_id": 2,
            "method": "sft",
            "learning_rate": 1e-5,
            "max_steps": 3,
            "num_train_epochs": 1,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_length": 64,
        }
    )
    assert spec.method is Method.SFT and spec.num_train_epochs == 1.0
    assert (spec.beta, spec.use_lora, spec.lora_r, spec.lora_alpha) == (0.1, False, 16, 32)
    assert (spec.seed, spec.logging_steps, spec.save_steps, spec.warmup_ratio) == (0, 1, 100, 0.0)
    assert spec.preset == "cpu-smoke" and spec.output_name == ""
    assert not spec.gradient_checkpointing


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("learning_rate", 0.0, 1.5),
        ("max_steps", -2, 10_000_001),
        ("num_train_epochs", 0.0, 1001.0),
        ("per_device_train_batch_size", 0, 4097),
        ("gradient_accumulation_steps", 0, 4097),
        ("max_length", 15, 1_048_577),
        ("beta", 0.0, 101.0),
        ("lora_r", 0, 4097),
        ("lora_dropout", -0.1, 1.0),
        ("seed", -1, 2**31),
        ("logging_steps", 0, 10_000_001),
        ("save_steps", -1, 10_000_001),
        ("warmup_ratio", -0.1, 1.0),
        ("base_model_id", 0, 2**63),
    ],
)
def test_each_number_has_bounds(field: str, low: float, high: float) -> None:
    for value in (low, high):
        with pytest.raises(SpecError, match=rf"TrainingJobSpec: {field}: "):
            TrainingJobSpec.from_parameters(job_values(**{field: value}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_steps": 0}, r"max_steps: .*At least 1 step, or -1"),
        ({"per_device_train_batch_size": "2"}, "per_device_train_batch_size: "),
        ({"lora_r": True}, "lora_r: "),  # bool is an int in Python, not a rank
        ({"use_lora": 1}, "use_lora: "),
        ({"method": "ppo"}, r"method: .*Choose SFT, DPO or a reward model"),
        ({"method": ["sft"]}, r"method: .*Choose SFT, DPO or a reward model"),
        ({"preset": "nope"}, r"preset: .*Choose a preset"),
        ({"output_name": "x" * 201}, r"output_name: .*At most 200 characters"),
        # The parameters a job stored before the spec: the user is the job row's creator.
        ({"user_id": 1}, "user_id: Extra inputs are not permitted"),
        ({"spec": {}}, "spec: Extra inputs are not permitted"),
    ],
)
def test_a_bad_stored_field_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        TrainingJobSpec.from_parameters(job_values(**change))


def test_a_missing_stored_field_is_named() -> None:
    values = job_values()
    del values["dataset_id"]
    with pytest.raises(SpecError, match="dataset_id: Field required"):
        TrainingJobSpec.from_parameters(values)


def test_every_field_has_a_label_and_a_line_of_help() -> None:
    for name, info in TrainingJobSpec.model_fields.items():
        assert info.title, name
        assert info.description and "\n" not in info.description, name


def test_the_form_parses_into_the_spec_and_shows_every_mistake_at_once() -> None:
    form = {name: str(value) for name, value in job_values().items()}
    spec, errors = parse_spec(TrainingJobSpec, form)
    assert errors == {} and spec == TrainingJobSpec.model_validate(job_values())

    spec, errors = parse_spec(
        TrainingJobSpec, {**form, "learning_rate": "fast", "max_steps": "0", "method": ""}
    )
    assert spec is None
    assert errors["learning_rate"].startswith("A number from")
    assert errors["max_steps"] == "At least 1 step, or -1 to train for the epochs given."
    assert errors["method"] == "Choose SFT, DPO or a reward model."
    assert spec_fields(TrainingJobSpec)["method"].input == "choice"
