"""The web side of training: the launch form's choices and checks, and a job's metric curves."""

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.forms import NumberFields, form_id, parse_numbers
from app.models import Dataset, JobMetric, LanguageModel
from app.recipe.training_spec import PRESETS, Method, TrainingSpec

METHODS = {
    Method.SFT: "SFT: supervised fine-tuning on the final revisions",
    Method.DPO: "DPO: direct preference optimisation on chosen/rejected pairs",
    Method.REWARD: "Reward model: a sequence classifier scoring replies",
}
# The split each method trains on (and the held-out split it is checked against).
TRAIN_SPLIT = {Method.SFT: "train_sft", Method.DPO: "train_prefs", Method.REWARD: "train_prefs"}

# Form fields of a TrainingSpec: (type, lowest, highest).
SPEC_FIELDS: NumberFields = {
    "learning_rate": (float, 1e-10, 1.0),
    "num_train_epochs": (float, 0.01, 1000.0),
    "max_steps": (int, -1, 10_000_000),
    "per_device_train_batch_size": (int, 1, 4096),
    "gradient_accumulation_steps": (int, 1, 4096),
    "max_length": (int, 16, 1_048_576),
    "beta": (float, 0.0001, 100.0),
    "lora_r": (int, 1, 4096),
    "lora_alpha": (int, 1, 16384),
    "seed": (int, 0, 2**31 - 1),
    "save_steps": (int, 0, 10_000_000),
}


@dataclass
class TrainingChoices:
    models: list[LanguageModel]
    datasets: list[Dataset]


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


def spec_form(preset: str, method: str) -> dict[str, str]:
    """The form's values for a preset and method, as the strings the form shows."""
    chosen = PRESETS.get(preset) or PRESETS["cpu-smoke"]
    spec = chosen.get(Method(method) if method in Method._value2member_map_ else Method.SFT)
    assert spec is not None
    values = spec.to_dict()
    form = {name: _show(values[name]) for name in SPEC_FIELDS}
    form["use_lora"] = "1" if spec.use_lora else ""
    return form


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def validate_training(
    *, session: Session, form: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The job's parameters, and errors by field (empty when it can start)."""
    errors: dict[str, str] = {}
    method = Method(form["method"]) if form.get("method") in Method._value2member_map_ else None
    if method is None:
        errors["method"] = "Choose SFT, DPO or a reward model."
    if form.get("preset") not in PRESETS:
        errors["preset"] = "Choose a preset."
    base = session.get(LanguageModel, form_id(form.get("base_model_id")))
    if base is None:
        errors["base_model_id"] = "Choose the model to start from."
    elif base.backend != "transformers":
        errors["base_model_id"] = (
            f"{base.name} is served over HTTP: training needs a local model (hub id, folder "
            "or GGUF file)."
        )
    elif base.kind != "policy":
        errors["base_model_id"] = f"{base.name} is a reward model; start from a language model."
    dataset = session.get(Dataset, form_id(form.get("dataset_id")))
    if dataset is None:
        errors["dataset_id"] = "Choose a dataset."
    elif dataset.status != "ready":
        errors["dataset_id"] = f"Dataset '{dataset.name}' is {dataset.status}, not ready."
    elif method is not None and not dataset.counts.get(TRAIN_SPLIT[method]):
        errors["dataset_id"] = (
            f"Dataset '{dataset.name}' has no {TRAIN_SPLIT[method]} rows, which "
            f"{method.value.upper()} trains on."
        )
    values = parse_numbers(form, SPEC_FIELDS, errors)
    if values.get("max_steps") == 0:
        errors["max_steps"] = "At least 1 step, or -1 to train for the epochs given."
    output_name = form.get("output_name", "").strip()
    if not output_name and base is not None and dataset is not None and method is not None:
        output_name = f"{base.name}-{method.value}-d{dataset.id}"
    if len(output_name) > 200:
        errors["output_name"] = "At most 200 characters."
    elif (
        output_name
        and session.exec(select(LanguageModel).where(LanguageModel.name == output_name)).first()
    ):
        errors["output_name"] = f"A model named '{output_name}' exists already."
    if errors or method is None:
        return {}, errors
    spec = TrainingSpec.from_dict(
        {**values, "method": method.value, "use_lora": bool(form.get("use_lora"))}
    )
    return {
        "base_model_id": base.id if base else None,
        "dataset_id": dataset.id if dataset else None,
        "preset": form["preset"],
        "output_name": output_name,
        "spec": spec.to_dict(),
    }, {}


# The order curves are drawn in; anything else follows alphabetically.
CURVE_ORDER = [
    "loss",
    "eval_loss",
    "rewards/margins",
    "rewards/accuracies",
    "rewards/chosen",
    "rewards/rejected",
    "accuracy",
    "learning_rate",
    "grad_norm",
]
# Bookkeeping values that are not worth a curve.
NOT_CURVES = {"epoch", "total_flos", "train_runtime", "step"}


@dataclass
class Curve:
    name: str
    points: str  # SVG polyline points, in a 0..300 x 0..100 box
    first_step: int
    last_step: int
    low: float
    high: float
    last: float
    count: int


def metric_curves(
    *, session: Session, job_id: int, width: int = 300, height: int = 100
) -> list[Curve]:
    rows = session.exec(
        select(JobMetric.step, JobMetric.name, JobMetric.value)
        .where(JobMetric.job_id == job_id)
        .order_by(col(JobMetric.step), col(JobMetric.id))
    ).all()
    series: dict[str, list[tuple[int, float]]] = {}
    for step, name, value in rows:
        if name not in NOT_CURVES and not name.startswith("train_"):
            series.setdefault(name, []).append((step, value))
    return [_curve(name, series[name], width, height) for name in sorted(series, key=_curve_rank)]


def _curve_rank(name: str) -> tuple[int, str]:
    return (CURVE_ORDER.index(name) if name in CURVE_ORDER else len(CURVE_ORDER), name)


def _curve(name: str, values: list[tuple[int, float]], width: int, height: int) -> Curve:
    steps = [s for s, _ in values]
    ys = [v for _, v in values]
    first, last = min(steps), max(steps)
    low, high = min(ys), max(ys)
    span_x = max(last - first, 1)
    span_y = (high - low) or 1.0
    # A single point is drawn as a short flat line, so it shows at all.
    points = (
        [(first, ys[0]), (first + span_x, ys[0])]
        if len(values) == 1
        else list(zip(steps, ys, strict=True))
    )
    text = " ".join(
        f"{(s - first) / span_x * width:.1f},{height - (v - low) / span_y * height:.1f}"
        for s, v in points
    )
    return Curve(
        name=name,
        points=text,
        first_step=first,
        last_step=last,
        low=low,
        high=high,
        last=ys[-1],
        count=len(values),
    )
