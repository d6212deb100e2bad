"""The web side of RL: the launch form's choices and checks, and what the job page shows of a
run (the sample tables, the Goodhart warning; its curves, the reward with its spread among
them, are app/metric_charts.py's)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, func, select

from app.forms import spec_form_values
from app.ids import parse_id
from app.models import Job, JobMetric, LanguageModel, Prompt, PromptSet
from app.recipe.goodhart import goodhart_warning
from app.recipe.rl_presets import RL_PRESETS
from app.specs.rl import MAX_OUTPUT_NAME, MAX_PROMPT_SETS, Algorithm, rl_preset_spec

ALGORITHMS = {
    Algorithm.GRPO: "GRPO: advantages normalised within each prompt's group",
    Algorithm.RLOO: "RLOO: each completion against the mean of the others (leave one out)",
}
WEIGHT_PREFIX = "weight_"


@dataclass
class RLChoices:
    policies: list[LanguageModel]
    rewards: list[LanguageModel]
    prompt_sets: list[tuple[PromptSet, int]]  # the set and its prompt count

    def options(self) -> dict[str, Any]:
        return {
            "policy_options": [(m.id, m.name) for m in self.policies],
            "reward_options": [(m.id, m.name) for m in self.rewards],
            "algorithm_options": [(a.value, label) for a, label in ALGORITHMS.items()],
            "preset_options": [(name, name) for name in RL_PRESETS],
            "prompt_sets": self.prompt_sets,
        }


def rl_choices(*, session: Session) -> RLChoices:
    def local(kind: str) -> list[LanguageModel]:
        return list(
            session.exec(
                select(LanguageModel)
                .where(LanguageModel.backend == "transformers", LanguageModel.kind == kind)
                .order_by(col(LanguageModel.name))
            )
        )

    counts = session.exec(
        select(PromptSet, func.count(col(Prompt.id)))
        .join(Prompt, col(Prompt.prompt_set_id) == col(PromptSet.id), isouter=True)
        .group_by(col(PromptSet.id))
        .order_by(col(PromptSet.id))
    ).all()
    return RLChoices(
        policies=local("policy"),
        rewards=local("reward"),
        prompt_sets=[(prompt_set, count) for prompt_set, count in counts],
    )


def preset_form(preset: str) -> dict[str, str]:
    values = spec_form_values(rl_preset_spec(preset if preset in RL_PRESETS else "cpu-smoke"))
    return {
        k: v.removesuffix(".0") if v.endswith(".0") and "e" not in v else v
        for k, v in values.items()
    }


def with_prompt_mix(form: Mapping[str, str]) -> dict[str, str]:
    """The form with its per-set weight inputs (`weight_<set id>`) as the spec's `prompt_mix`
    lines ("set id:weight"); blank or 0 leaves a set out, anything else goes to the spec."""
    lines = [
        f"{name.removeprefix(WEIGHT_PREFIX)}:{value.strip()}"
        for name, value in form.items()
        if name.startswith(WEIGHT_PREFIX) and value.strip() and value.strip() not in ("0", "0.0")
    ]
    return {**form, "prompt_mix": "\n".join(lines)}


def rl_row_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the models, the prompt sets and the output name the form chose."""
    errors: dict[str, str] = {}
    policy_id, reward_id = (
        parse_id(form.get("policy_model_id")),
        parse_id(form.get("reward_model_id")),
    )
    policy = session.get(LanguageModel, policy_id) if policy_id else None
    reward = session.get(LanguageModel, reward_id) if reward_id else None
    if policy is None:
        errors["policy_model_id"] = "Choose the policy to optimise (no such model)."
    elif policy.kind != "policy":
        errors["policy_model_id"] = f"{policy.name} is a reward model: choose a policy."
    elif policy.backend != "transformers":
        errors["policy_model_id"] = f"{policy.name} is served over HTTP: RL needs a local model."
    if reward is None:
        errors["reward_model_id"] = "Choose a registered reward model (no such model)."
    elif reward.kind != "reward":
        errors["reward_model_id"] = f"{reward.name} is not a reward model: train one first."
    elif reward.backend != "transformers":
        errors["reward_model_id"] = f"{reward.name} is served over HTTP: it must be local."
    set_ids = [parse_id(line.partition(":")[0]) for line in form.get("prompt_mix", "").splitlines()]
    for set_id in set_ids[:MAX_PROMPT_SETS]:
        prompt_set = session.get(PromptSet, set_id) if set_id else None
        if prompt_set is None:
            errors.setdefault("prompt_mix", f"No prompt set {set_id}.")
        elif (
            not prompt_set.prompt_count
            and not session.exec(
                select(Prompt.id).where(Prompt.prompt_set_id == set_id).limit(1)
            ).first()
        ):
            errors.setdefault("prompt_mix", f"Prompt set '{prompt_set.name}' has no prompts.")
    name = form.get("output_name", "").strip()
    if len(name) > MAX_OUTPUT_NAME:
        errors["output_name"] = f"At most {MAX_OUTPUT_NAME} characters."
    elif name and session.exec(select(LanguageModel).where(LanguageModel.name == name)).first():
        errors["output_name"] = f"A model named '{name}' exists already."
    return errors


# The RL curves first, in this order; TRL's other metrics follow.
RL_CURVES = [
    "reward",
    "reward_std",
    "kl",
    "completions/mean_length",
    "entropy",
    "goodhart/repeated_share",
    "goodhart/mean_words",
    "loss",
]


def rl_curve_rank(name: str) -> int:
    return RL_CURVES.index(name) if name in RL_CURVES else len(RL_CURVES)


@dataclass
class RLView:
    tables: list[dict[str, Any]] = field(default_factory=list)  # newest first
    warning: bool = False
    shares: list[float] = field(default_factory=list)


def _series(session: Session, job_id: int, name: str) -> list[tuple[int, float]]:
    rows = session.exec(
        select(JobMetric.step, JobMetric.value)
        .where(JobMetric.job_id == job_id, JobMetric.name == name)
        .order_by(col(JobMetric.step), col(JobMetric.id))
    ).all()
    return [(step, value) for step, value in rows]


def rl_view(*, session: Session, job: Job) -> RLView:
    job_id = job.id or 0
    shares = [v for _, v in _series(session, job_id, "goodhart/repeated_share")]
    rewards = [v for _, v in _series(session, job_id, "goodhart/reward_mean")]
    tables = list(reversed((job.result or {}).get("samples", [])))
    return RLView(
        tables=tables,
        warning=goodhart_warning(shares, rewards),
        shares=shares,
    )
