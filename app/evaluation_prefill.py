"""The evaluation form filled in from a link: `/evaluations/new?model=<id>&model=<id>`, as the
"Evaluate it" links on a finished training or RL job and on the models page send it (the
trained model, then the model it started from).

A value that names no policy model is left out of the form, with a note saying which and why:
the form is still the one to fill in, so a stale or mistyped link is not an error page."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from app.ids import parse_id
from app.models import LanguageModel
from app.specs.evaluation import MAX_MODELS

# Longer values are cut in the note: a note repeats the request, not all of it.
SHOWN_CHARS = 40


@dataclass
class ModelPrefill:
    model_ids: list[int] = field(default_factory=list)  # in the link's order, no repeats
    notes: list[str] = field(default_factory=list)


def _shown(raw: str) -> str:
    text = raw.strip()
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def prefill_models(*, session: Session, raw: Sequence[str]) -> ModelPrefill:
    """The policy models among the link's `model` values; a note for each value left out."""
    out = ModelPrefill()
    # Each value costs a query: a link with many is read only as far as a run could use.
    if len(raw) > 2 * MAX_MODELS:
        out.notes.append(f"model: {len(raw)} values; only the first {2 * MAX_MODELS} are read.")
    for value in raw[: 2 * MAX_MODELS]:
        model_id = parse_id(value)
        if model_id is None:
            out.notes.append(f"model: {_shown(value)!r} is not a model id; left out.")
            continue
        if model_id in out.model_ids:
            continue
        model = session.get(LanguageModel, model_id)
        if model is None:
            out.notes.append(f"model: there is no model {model_id}; left out.")
        elif model.kind != "policy":
            out.notes.append(
                f"model: {model.name} is a {model.kind} model, which does not answer "
                "prompts; left out."
            )
        elif len(out.model_ids) >= MAX_MODELS:
            out.notes.append(f"model: at most {MAX_MODELS} models; {model.name} left out.")
        else:
            out.model_ids.append(model_id)
    return out


def evaluate_href(model_id: int, started_from: int | None) -> str:
    """The "Evaluate it" link: the model, then the one it started from (if any)."""
    start = f"&model={started_from}" if started_from and started_from != model_id else ""
    return f"/evaluations/new?model={model_id}{start}"
