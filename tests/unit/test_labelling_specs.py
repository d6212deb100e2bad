"""The labelling and labeller-evaluation specs: bounds, defaults, the clamp rule, the round trip
through a job row, and the worker's mapping onto the engine's configs."""

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from app.forms import parse_spec, spec_form_values
from app.specs import SpecError
from app.specs.labelling import (
    EVAL_SETTINGS,
    HHHEvalSpec,
    LabellerEvalRequest,
    LabellerEvalSpec,
    LabelSpec,
)
from worker.evals.hhh import SETTINGS, eval_settings, first_questions
from worker.labelling import label_config
from worker.pipeline.ai_feedback import LabelConfig

IDS = {"pair_job_id": 3, "constitution_version_id": 2, "model_id": 1}
LABEL_FORM = {
    "pair_job_id": "3",
    "constitution_version_id": "2",
    "model_id": "1",
    "ensemble": "2",
    "clamp_low": "0.3",
    "clamp_high": "0.7",
    "cot_max_new_tokens": "64",
    "seed": "5",
    "chunk_size": "8",
}


def test_a_label_spec_has_the_engines_defaults() -> None:
    spec = LabelSpec(**IDS)
    assert label_config(spec) == LabelConfig()
    assert spec.chunk_size == 16


def test_label_config_takes_every_engine_field_by_its_name() -> None:
    spec = LabelSpec(
        **IDS,
        order_average=False,
        ensemble=3,
        chain_of_thought=True,
        clamp_low=0.2,
        clamp_high=0.9,
        few_shot=True,
        seed=11,
        cot_max_new_tokens=7,
    )
    config = label_config(spec)
    for field in dataclasses.fields(LabelConfig):
        assert getattr(config, field.name) == getattr(spec, field.name), field.name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ensemble", 0),
        ("ensemble", 17),
        ("clamp_low", -0.1),
        ("clamp_low", 0.51),
        ("clamp_high", 0.49),
        ("clamp_high", 1.01),
        ("cot_max_new_tokens", 0),
        ("seed", -1),
        ("seed", 2**31),
        ("chunk_size", 0),
        ("pair_job_id", 0),
        ("model_id", 2**63),
    ],
)
def test_a_label_spec_refuses_out_of_range_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        LabelSpec(**{**IDS, field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_the_upper_clamp_must_be_above_the_lower_one() -> None:
    # The bounds leave one way to break the rule: both at 0.5, a band of no width.
    with pytest.raises(ValidationError, match=r"Above the lower clamp\.") as caught:
        LabelSpec(**IDS, clamp_low=0.5, clamp_high=0.5)
    assert caught.value.errors()[0]["loc"] == ("clamp_high",)
    assert LabelSpec(**IDS, clamp_low=0.5, clamp_high=0.51).clamp_high == 0.51
    assert LabelSpec(**IDS, clamp_low=0.45, clamp_high=0.5).clamp_low == 0.45


def test_a_label_spec_round_trips_through_a_job_row() -> None:
    spec = LabelSpec(**IDS, ensemble=4, chain_of_thought=True, order_average=False)
    parameters = spec.to_parameters()
    assert parameters["ensemble"] == 4 and parameters["order_average"] is False
    assert LabelSpec.from_parameters(parameters) == spec


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"ensemble": 99}, "ensemble"),
        ({"clamp_high": 0.3}, "clamp_high"),
        ({"model_id": None}, "model_id"),
        ({"typo": 1}, "typo"),
    ],
)
def test_a_bad_stored_label_row_names_its_field(change: dict[str, Any], named: str) -> None:
    parameters = {**LabelSpec(**IDS).to_parameters(), **change}
    with pytest.raises(SpecError, match=rf"^LabelSpec: {named}: "):
        LabelSpec.from_parameters(parameters)


def test_a_form_unticks_a_box_that_defaults_to_ticked() -> None:
    assert spec_form_values(LabelSpec)["order_average"] == "true"
    assert spec_form_values(LabelSpec)["few_shot"] == ""
    spec, errors = parse_spec(LabelSpec, LABEL_FORM)
    assert errors == {} and spec is not None
    assert (spec.order_average, spec.few_shot, spec.chain_of_thought) == (False, False, False)
    ticked, _ = parse_spec(LabelSpec, {**LABEL_FORM, "order_average": "1", "few_shot": "true"})
    assert ticked is not None and ticked.order_average and ticked.few_shot
    assert (spec.ensemble, spec.clamp_low, spec.clamp_high, spec.seed) == (2, 0.3, 0.7, 5)


def test_a_form_shows_every_mistake_with_its_field() -> None:
    spec, errors = parse_spec(
        LabelSpec, {**LABEL_FORM, "pair_job_id": "", "model_id": "x", "clamp_low": "0.7"}
    )
    assert spec is None
    assert errors == {
        "pair_job_id": "Choose a run of reply pairs.",
        "model_id": "Choose a model.",
        "clamp_low": "From 0 to 0.5.",
    }
    _, clamped = parse_spec(LabelSpec, {**LABEL_FORM, "clamp_low": "0.5", "clamp_high": "0.5"})
    assert clamped == {"clamp_high": "Above the lower clamp."}


# --- the labeller evaluation --------------------------------------------------------------


def test_the_spec_knows_the_benchmarks_settings() -> None:
    assert list(EVAL_SETTINGS) == list(SETTINGS)


def test_an_eval_spec_refuses_no_settings_or_an_unknown_one() -> None:
    with pytest.raises(ValidationError, match=r"Choose at least one setting\."):
        HHHEvalSpec(settings=(" ", ""))
    with pytest.raises(ValidationError, match="choose from plain, order, cot, cot-order"):
        HHHEvalSpec(settings=("plain", "ensemble"))
    for field, value in [("limit", -1), ("limit", 100_001), ("cot_max_new_tokens", 0)]:
        with pytest.raises(ValidationError) as caught:
            HHHEvalSpec(**{field: value})
        assert caught.value.errors()[0]["loc"] == (field,)


def test_eval_settings_follow_the_spec_in_order_with_its_reasoning_length() -> None:
    spec = HHHEvalSpec(settings=("cot-order", "plain"), cot_max_new_tokens=9, limit=2)
    settings = eval_settings(spec)
    assert [s.name for s in settings] == ["cot-order", "plain"]
    assert all(s.cot_max_new_tokens == 9 for s in settings)
    assert settings[0].chain_of_thought and settings[0].order_average
    assert first_questions([1, 2, 3], spec) == [1, 2]  # type: ignore[list-item]
    assert first_questions([1, 2, 3], HHHEvalSpec()) == [1, 2, 3]  # type: ignore[list-item]


def test_an_eval_form_reads_ticked_settings_one_per_line() -> None:
    assert spec_form_values(LabellerEvalRequest)["settings"] == "plain\norder"
    form = {"model_id": "4", "settings": "order\ncot", "limit": "0", "cot_max_new_tokens": "32"}
    spec, errors = parse_spec(LabellerEvalRequest, form)
    assert errors == {} and spec is not None
    assert (spec.model_id, spec.settings, spec.cot_max_new_tokens) == (4, ("order", "cot"), 32)
    _, bad = parse_spec(LabellerEvalRequest, {**form, "model_id": "", "settings": ""})
    assert bad == {
        "model_id": "Choose the feedback model to evaluate.",
        "settings": "Choose at least one setting.",
    }


def test_an_eval_job_row_round_trips_and_names_a_bad_field() -> None:
    spec = LabellerEvalSpec(
        model_id=1, settings=("plain",), path="/data/u.jsonl", filename="hhh.jsonl", questions=4
    )
    parameters = spec.to_parameters()
    assert parameters["settings"] == ["plain"]
    assert LabellerEvalSpec.from_parameters(parameters) == spec
    with pytest.raises(SpecError, match=r"^LabellerEvalSpec: settings: .*choose from"):
        LabellerEvalSpec.from_parameters({**parameters, "settings": ["best"]})
    with pytest.raises(SpecError, match=r"path: Field required"):
        LabellerEvalSpec.from_parameters({k: v for k, v in parameters.items() if k != "path"})
