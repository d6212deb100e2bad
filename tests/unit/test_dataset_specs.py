"""The dataset build spec: bounds, defaults, percent in the form and shares in the spec, several
runs from one form field, the round trip through a job row, and the mapping onto the row
builders' options."""

import pytest
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.dataset_builds import dataset_options, stored_options
from app.datasets.feedback_rows import ComparisonRecord, build_feedback_rows
from app.datasets.rows import DatasetOptions
from app.forms import parse_spec, spec_fields, spec_form_values
from app.specs import SpecError
from app.specs.datasets import (
    DatasetBuildJobSpec,
    DatasetBuildSpec,
    FeedbackOptions,
    ReviewFilter,
)
from app.web_datasets import BUILD_FIELDS, parse_feedback_options

BUILD_FORM = {
    "name": " harmless v1 ",
    "runs": "3\n1\n3",
    "review_filter": "approved_only",
    "min_change": "25",
    "min_chars": "5",
    "max_chars": "400",
    "max_prompt_chars": "0",
    "drop_duplicates": "true",
    "test_fraction": "20",
    "seed": "7",
    "helpful_max_rows": "0",
}


def test_the_form_reads_percent_into_shares_and_several_runs_into_sorted_ids() -> None:
    spec, errors = parse_spec(DatasetBuildSpec, BUILD_FORM, only=BUILD_FIELDS)
    assert errors == {} and spec is not None
    assert spec.runs == (1, 3) and spec.name == "harmless v1"
    assert spec.min_change == 0.25 and spec.test_fraction == 0.2
    assert spec.review_filter is ReviewFilter.APPROVED_ONLY
    assert spec.drop_duplicates and not spec.split_halves  # an unticked box is False
    assert dataset_options(spec) == DatasetOptions(
        review_filter=ReviewFilter.APPROVED_ONLY,
        min_change=0.25,
        min_chars=5,
        max_chars=400,
        max_prompt_chars=None,  # 0 in the form: no limit
        drop_duplicates=True,
        split_halves=False,
        test_fraction=0.2,
        seed=7,
        helpful_max_rows=0,
    )


def test_a_multi_valued_form_gives_each_of_its_ids() -> None:
    others = [(name, value) for name, value in BUILD_FORM.items() if name != "runs"]
    form = FormData([*others, ("runs", "5"), ("runs", "2")])
    spec, errors = parse_spec(DatasetBuildSpec, form, only=BUILD_FIELDS)  # type: ignore[arg-type]
    assert errors == {} and spec is not None and spec.runs == (2, 5)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"runs": ""}, "runs", "Choose at least one generation run."),
        ({"runs": "1\nabc"}, "runs", "Choose at least one generation run."),
        ({"runs": str(2**63)}, "runs", "Choose at least one generation run."),
        ({"min_change": "150"}, "min_change", "From 0 to 100."),
        ({"test_fraction": "60"}, "test_fraction", "From 0 to 50."),
        ({"seed": "-1"}, "seed", "From 0 to 2147483647."),
        ({"min_chars": "1.5"}, "min_chars", "A whole number from 0 to 1000000."),
        (
            {"max_chars": "4"},
            "max_chars",
            "The longest allowed answer is shorter than the shortest.",
        ),
        ({"review_filter": "bogus"}, "review_filter", "Choose which reviewed traces to keep."),
        ({"name": "x" * 201}, "name", "At most 200 characters."),
    ],
)
def test_a_bad_field_is_named_with_a_message(
    changes: dict[str, str], field: str, message: str
) -> None:
    spec, errors = parse_spec(DatasetBuildSpec, {**BUILD_FORM, **changes}, only=BUILD_FIELDS)
    assert spec is None and errors[field] == message


def test_a_new_form_shows_the_defaults_in_percent_and_the_kinds_of_input() -> None:
    shown = spec_form_values(DatasetBuildSpec)
    assert shown["test_fraction"] == "10" and shown["min_change"] == "0"
    assert shown["drop_duplicates"] == "true" and shown["runs"] == ""
    fields = spec_fields(DatasetBuildSpec)
    assert fields["min_change"].input == "percent" and fields["runs"].input == "ids"
    assert fields["review_filter"].input == "choice" and fields["seed"].input == "number"
    assert fields["test_fraction"].label == "Held-out test split, in % of prompts (0 to 50)"
    # The same spec's values show as the form showed them.
    spec, _ = parse_spec(DatasetBuildSpec, BUILD_FORM, only=BUILD_FIELDS)
    assert spec is not None
    assert spec_form_values(spec)["min_change"] == "25"
    assert spec_form_values(spec)["runs"] == "1\n3"


def test_the_defaults_are_the_row_builders_defaults() -> None:
    assert dataset_options(DatasetBuildSpec(runs=(1,))) == DatasetOptions()


def test_the_job_row_round_trips_and_a_bad_row_names_its_field() -> None:
    spec, _ = parse_spec(DatasetBuildSpec, BUILD_FORM, only=BUILD_FIELDS)
    assert spec is not None
    job = DatasetBuildJobSpec(
        **spec.model_dump(), dataset_id=4, user_id=2, helpful_path="", helpful_filename=""
    )
    assert DatasetBuildJobSpec.from_parameters(job.to_parameters()) == job
    # The dataset row shows shares, as it always did.
    assert stored_options(spec)["min_change"] == 0.25
    assert stored_options(spec)["review_filter"] == "approved_only"
    # A row as an older version stored it: no runs, no name.
    with pytest.raises(SpecError, match="runs") as refused:
        DatasetBuildJobSpec.from_parameters({"dataset_id": 4, "helpful_path": "", "user_id": 2})
    assert "name" in str(refused.value)
    with pytest.raises(ValidationError):
        DatasetBuildJobSpec(**{**job.model_dump(), "name": ""})  # a job builds a named dataset


def test_the_feedback_options_read_percent_and_feed_the_row_builder() -> None:
    options, errors = parse_spec(
        FeedbackOptions, {"min_margin": "49", "test_fraction": "0", "seed": "0"}
    )
    assert errors == {} and options is not None
    assert options.min_margin == 0.49 and not options.prefer_human  # unticked
    assert parse_spec(FeedbackOptions, {"min_margin": "60"})[1] == {"min_margin": "From 0 to 50."}
    spec = DatasetBuildSpec(kind="ai-feedback", name="rlaif", runs=(9,), **options.model_dump())
    assert set(stored_options(spec)) == {"min_margin", "prefer_human", "test_fraction", "seed"}
    record = ComparisonRecord(
        comparison_id=1,
        pair_id=1,
        messages=[{"role": "user", "content": "hi"}],
        reply_a="a",
        reply_b="b",
        prob_a=0.8,
        label="A",
        principle_keys=["harm"],
    )
    # The build spec is the row builder's options as it is: |0.8 - 0.5| is below 0.49.
    assert build_feedback_rows([record], spec).dropped == {"too close to call": 1}
    looser = spec.model_copy(update={"min_margin": 0.2})
    assert build_feedback_rows([record], looser).counts["train_prefs"] == 1


def test_an_ai_feedback_build_reads_one_labelling_run() -> None:
    with pytest.raises(ValidationError, match="one labelling run"):
        DatasetBuildSpec(kind="ai-feedback", name="rlaif", runs=(1, 2))


def test_the_feedback_form_checks_the_name_by_the_build_specs_rule() -> None:
    form = {"name": "x" * 201, "min_margin": "0", "test_fraction": "10", "seed": "0"}
    assert parse_feedback_options(form) == (None, {"name": "At most 200 characters."})
    options, errors = parse_feedback_options({**form, "name": "rlaif", "prefer_human": "1"})
    assert errors == {} and options == FeedbackOptions(test_fraction=0.1, prefer_human=True)
