"""Judges checked against people, as an evaluation run's page reads them: the refusal judge's
latest judge check (kind "eval_judge") and the HHH labeller check (kind "eval_labeller"),
which is what counts for pairwise judging."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from app.ids import parse_id
from app.models import Job, JobStatus, LanguageModel
from app.specs.evaluation import EvaluationSpec

KIND = "eval_judge"
LABELLER_KIND = "eval_labeller"
# Checks are few; reading the latest of a kind and matching the model here keeps the query
# free of JSON operators (SQLite and Postgres spell them differently).
_RECENT = 500


@dataclass(frozen=True)
class JudgeNote:
    warning: bool  # True: shown as a warning box
    text: str
    href: str | None = None


def latest_check(session: Session, kind: str, model_id: int) -> Job | None:
    """The newest succeeded job of `kind` whose parameters name `model_id`."""
    jobs = session.exec(
        select(Job)
        .where(Job.kind == kind, Job.status == JobStatus.SUCCEEDED)
        .order_by(col(Job.id).desc())
        .limit(_RECENT)
    ).all()
    return next((job for job in jobs if job.parameters.get("model_id") == model_id), None)


def check_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the judge a judge-check form chose."""
    model_id = parse_id(form.get("model_id"))
    model = session.get(LanguageModel, model_id) if model_id else None
    if model is None or model.kind != "policy":
        return {"model_id": "Choose the judge model to check."}
    return {}


def _best_labeller_accuracy(result: Mapping[str, Any]) -> tuple[str, float] | None:
    scored = [r for r in result.get("results", []) if r.get("accuracy") is not None]
    best = max(scored, key=lambda r: r["accuracy"], default=None)
    return (best["setting"], best["accuracy"]) if best else None


def judge_notes(session: Session, spec: EvaluationSpec) -> list[JudgeNote]:
    """What the run's page says about its judge: its refusal check (a warning when there is
    none, or its kappa is below the run's `min_judge_kappa`) and its HHH labeller check."""
    model = session.get(LanguageModel, spec.judge_model_id)
    name = model.name if model else f"model {spec.judge_model_id}"
    notes = []
    check = latest_check(session, KIND, spec.judge_model_id)
    kappa = check.result.get("kappa") if check else None
    if check is None or kappa is None:
        notes.append(
            JudgeNote(
                True,
                f"The judge {name} has no check against people: its refusal classes are "
                "unverified. Check it on a labelled file.",
                "/judge-checks/new",
            )
        )
    elif kappa < spec.min_judge_kappa:
        notes.append(
            JudgeNote(
                True,
                f"The judge {name} agrees with people less than this run asks: Cohen's kappa "
                f"{kappa:.2f} (accuracy {100 * check.result['accuracy']:.0f}%, "
                f"n={check.result['n']}) is below {spec.min_judge_kappa:.2f}.",
                f"/jobs/{check.id}",
            )
        )
    else:
        notes.append(
            JudgeNote(
                False,
                f"Refusal classes: the judge's latest check against people has Cohen's kappa "
                f"{kappa:.2f} (accuracy {100 * check.result['accuracy']:.0f}%, "
                f"n={check.result['n']}).",
                f"/jobs/{check.id}",
            )
        )
    labeller = latest_check(session, LABELLER_KIND, spec.judge_model_id)
    best = _best_labeller_accuracy(labeller.result) if labeller else None
    if labeller is None or best is None:
        notes.append(
            JudgeNote(
                True,
                f"Pairwise judging: {name} has no HHH labeller check (its accuracy on the "
                "paper's multiple-choice questions).",
                "/feedback/eval",
            )
        )
    else:
        setting, accuracy = best
        notes.append(
            JudgeNote(
                False,
                f"Pairwise judging: {name}'s HHH labeller check scored {100 * accuracy:.1f}% "
                f"({setting}; chance is 50%).",
                f"/jobs/{labeller.id}",
            )
        )
    return notes
