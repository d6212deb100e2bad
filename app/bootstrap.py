"""First-run set-up: the first admin and the built-in example prompt set."""

from pathlib import Path

from sqlmodel import Session, func, select

from app.audit import record_event
from app.constitutions import create_constitution, default_document
from app.models import Constitution, PromptSet, Role, User
from app.prompt_files import ImportSpec, PromptFormat, drop_duplicates, parse_prompt_file
from app.prompt_sets import store_prompt_set
from app.recipe.evaluation import SuitePurpose
from app.security import new_one_time_password
from app.settings import Settings
from app.users import create_user

EXAMPLE_PROMPTS = Path(__file__).resolve().parent / "defaults" / "example_prompts.jsonl"
EXAMPLE_SET_NAME = "Example prompts (built-in)"
OVER_REFUSAL_PROMPTS = Path(__file__).resolve().parent / "defaults" / "over_refusal_prompts.jsonl"
OVER_REFUSAL_SET_NAME = "Over-refusal suite (built-in)"
# Not "built-in": that source names the one example set, which tests and scripts look up by it.
SUITE_SOURCE = "built-in suite"


def ensure_first_admin(*, session: Session, settings: Settings) -> str | None:
    """Creates the first admin when there are no users.

    Returns the one-time password it made, if it made one (no ADMIN_PASSWORD was set).
    """
    if session.exec(select(func.count()).select_from(User)).one() > 0:
        return None
    one_time = None if settings.ADMIN_PASSWORD else new_one_time_password()
    create_user(
        session=session,
        username=settings.ADMIN_USERNAME,
        password=settings.ADMIN_PASSWORD or str(one_time),
        role=Role.ADMIN,
        actor=None,
        must_change_password=one_time is not None,
    )
    session.commit()
    return one_time


def ensure_default_constitution(*, session: Session) -> Constitution | None:
    """Publishes the default constitution as v1 on the first run, so runs have one to pin."""
    if session.exec(select(Constitution)).first() is not None:
        return None
    constitution, _ = create_constitution(
        session=session, doc=default_document(), user=None, source_format="built-in", publish=True
    )
    session.commit()
    return constitution


def ensure_example_prompts(*, session: Session) -> PromptSet | None:
    """Loads the built-in example set on the first run, so a new install has prompts to try."""
    if session.exec(select(PromptSet).where(PromptSet.source == "built-in")).first() is not None:
        return None
    prompts, dropped = drop_duplicates(
        parse_prompt_file(EXAMPLE_PROMPTS, ImportSpec(format=PromptFormat.JSONL, field="prompt"))
    )
    prompt_set = store_prompt_set(
        session=session,
        name=EXAMPLE_SET_NAME,
        description="Red-team and helpful prompts written for this project, to try the recipe on.",
        source="built-in",
        source_format=PromptFormat.JSONL.value,
        prompts=prompts,
        duplicates_dropped=dropped,
    )
    record_event(
        session=session,
        actor=None,
        action="prompt_set.create",
        object_type="prompt_set",
        object_id=prompt_set.id,
        source="built-in",
    )
    session.commit()
    return prompt_set


def ensure_example_suites(*, session: Session) -> PromptSet | None:
    """Loads the built-in over-refusal suite once (also on an install made before it existed):
    safe prompts written for this project that only look unsafe, which a model should answer."""
    exists = session.exec(
        select(PromptSet).where(
            PromptSet.source == SUITE_SOURCE, PromptSet.name == OVER_REFUSAL_SET_NAME
        )
    ).first()
    if exists is not None:
        return None
    prompts, dropped = drop_duplicates(
        parse_prompt_file(
            OVER_REFUSAL_PROMPTS, ImportSpec(format=PromptFormat.JSONL, field="prompt")
        )
    )
    prompt_set = store_prompt_set(
        session=session,
        name=OVER_REFUSAL_SET_NAME,
        description=(
            "Safe requests worded like unsafe ones (killing a process, shooting photos), written "
            "for this project: a model that refuses them is over-cautious."
        ),
        source=SUITE_SOURCE,
        source_format=PromptFormat.JSONL.value,
        prompts=prompts,
        duplicates_dropped=dropped,
        purpose=SuitePurpose.OVER_REFUSAL,
    )
    record_event(
        session=session,
        actor=None,
        action="prompt_set.create",
        object_type="prompt_set",
        object_id=prompt_set.id,
        source=SUITE_SOURCE,
    )
    session.commit()
    return prompt_set
