"""The web side of training: the launch form's choices and checks (a job's curves are in
app/metric_charts.py)."""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.forms import spec_form_values
from app.ids import parse_id
from app.models import Dataset, LanguageModel
from app.recipe.training_presets import PRESETS
from app.specs.training import MAX_OUTPUT_NAME, Method, TrainingJobSpec, preset_spec

METHODS = {
    Method.SFT: "SFT: supervised fine-tuning on the final revisions",
    Method.DPO: "DPO: direct preference optimisation on chosen/rejected pairs",
    Method.REWARD: "Reward model: a sequence classifier scoring replies",
}
# The split each method trains on (and the held-out split it is checked against).
TRAIN_SPLIT = {Method.SFT: "train_sft", Method.DPO: "train_prefs", Method.REWARD: "train_prefs"}


@dataclass
class TrainingChoices:
    models: list[LanguageModel]
    datasets: list[Dataset]

    def options(self) -> dict[str, list[tuple[object, str]]]:
        """(value, label) lists for the `spec_field` macro's selects."""
        return {
            "model_options": [(m.id, m.name) for m in self.models],
            "dataset_options": [
                (
                    d.id,
                    f"{d.name} (SFT {d.counts.get('train_sft', 0)}, "
                    f"preferences {d.counts.get('train_prefs', 0)})",
                )
                for d in self.datasets
            ],
            "method_options": [(m.value, label) for m, label in METHODS.items()],
            "preset_options": [(name, name) for name in PRESETS],
        }


def training_choices(*, session: Session) -> TrainingChoices:
    return TrainingChoices(
        models=list(
            session.exec(
                select(LanguageModel)
                .where(LanguageModel.backend == "transformers", LanguageModel.kind == "policy")
                .order_by(col(LanguageModel.name))
            )
        ),
        datasets=list(
            session.exec(
                select(Dataset).where(Dataset.status == "ready").order_by(col(Dataset.id).desc())
            )
        ),
    )


def preset_form(preset: str, method: str) -> dict[str, str]:
    """The form's values for a preset and method (cpu-smoke and SFT where either is unknown),
    as the text the form shows."""
    known_method = Method(method) if method in Method._value2member_map_ else Method.SFT
    known_preset = preset if preset in PRESETS else "cpu-smoke"
    values = spec_form_values(preset_spec(known_preset, known_method))
    return {name: _short_number(text) for name, text in values.items()}


def _short_number(text: str) -> str:
    # "3", not the "3.0" of str(3.0); "5e-07" stays as it is.
    return text.removesuffix(".0") if text.endswith(".0") and "e" not in text else text


def launch_row_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the base model, the dataset and the output name a training form
    chose (the numbers are the spec's to check), so that every mistake shows at once."""
    errors: dict[str, str] = {}
    raw_method = form.get("method", "")
    method = Method(raw_method) if raw_method in Method._value2member_map_ else None
    base_id, dataset_id = parse_id(form.get("base_model_id")), parse_id(form.get("dataset_id"))
    base = session.get(LanguageModel, base_id) if base_id else None
    if base is None:
        errors["base_model_id"] = "Choose the model to start from."
    elif base.backend != "transformers":
        errors["base_model_id"] = (
            f"{base.name} is served over HTTP: training needs a local model (hub id, folder "
            "or GGUF file)."
        )
    elif base.kind != "policy":
        errors["base_model_id"] = f"{base.name} is a reward model; start from a language model."
    dataset = session.get(Dataset, dataset_id) if dataset_id else None
    if dataset is None:
        errors["dataset_id"] = "Choose a dataset."
    elif dataset.status != "ready":
        errors["dataset_id"] = f"Dataset '{dataset.name}' is {dataset.status}, not ready."
    elif method is not None and not dataset.counts.get(TRAIN_SPLIT[method]):
        errors["dataset_id"] = (
            f"Dataset '{dataset.name}' has no {TRAIN_SPLIT[method]} rows, which "
            f"{method.value.upper()} trains on."
        )
    name = form.get("output_name", "").strip()
    if not name and base is not None and dataset is not None and method is not None:
        name = default_output_name(base=base, dataset=dataset, method=method)
    if len(name) > MAX_OUTPUT_NAME:
        errors["output_name"] = f"At most {MAX_OUTPUT_NAME} characters."
    elif name and session.exec(select(LanguageModel).where(LanguageModel.name == name)).first():
        errors["output_name"] = f"A model named '{name}' exists already."
    return errors


def default_output_name(*, base: LanguageModel, dataset: Dataset, method: Method) -> str:
    return f"{base.name}-{method.value}-d{dataset.id}"


def with_output_name(*, session: Session, spec: TrainingJobSpec) -> TrainingJobSpec:
    """The spec with the trained model's name filled in where the form left it blank."""
    if spec.output_name:
        return spec
    base = session.get(LanguageModel, spec.base_model_id)
    dataset = session.get(Dataset, spec.dataset_id)
    assert base is not None and dataset is not None, "launch_row_errors checks both"
    name = default_output_name(base=base, dataset=dataset, method=spec.method)
    return spec.model_copy(update={"output_name": name})
