"""Queries and commands on prompt sets: storing parsed prompts, browsing, sampling."""

import random
from collections.abc import Sequence

from sqlalchemy import delete, func, insert
from sqlmodel import Session, col, select

from app.audit import record_event
from app.models import Prompt, PromptSet, Trace, User
from app.prompt_files import ParsedPrompt, prompt_hash
from app.recipe.evaluation import SuitePurpose
from app.text_search import contains


class PromptSetError(ValueError):
    pass


def prompt_messages(text: str, context: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """A prompt as the chat a model answers: its multi-turn context, or its text as one turn."""
    return list(context) if context else [{"role": "user", "content": text}]


def store_prompt_set(
    *,
    session: Session,
    name: str,
    prompts: Sequence[ParsedPrompt],
    description: str = "",
    source: str = "",
    source_format: str = "",
    duplicates_dropped: int = 0,
    created_by_id: int | None = None,
    import_job_id: int | None = None,
    purpose: SuitePurpose | None = None,
) -> PromptSet:
    """Adds the set and its prompts to the caller's transaction; the caller commits."""
    prompt_set = PromptSet(
        purpose=purpose,
        name=name,
        description=description,
        source=source,
        source_format=source_format,
        prompt_count=len(prompts),
        duplicates_dropped=duplicates_dropped,
        created_by_id=created_by_id,
        import_job_id=import_job_id,
    )
    session.add(prompt_set)
    session.flush()
    rows = [
        {
            "prompt_set_id": prompt_set.id,
            "position": position,
            "text": prompt.text,
            "context": prompt.context,
            "content_hash": prompt_hash(prompt.text),
            "source_line": prompt.line,
            "meta": prompt.metadata,
        }
        for position, prompt in enumerate(prompts)
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Prompt), rows[start : start + 5000])
    return prompt_set


def delete_prompt_set(*, session: Session, prompt_set: PromptSet, user: User) -> None:
    """Refused while runs have traces of its prompts: they would lose where they came from."""
    used = session.exec(
        select(func.count())
        .select_from(Trace)
        .join(Prompt, col(Prompt.id) == Trace.prompt_id)
        .where(Prompt.prompt_set_id == prompt_set.id)
    ).one()
    if used:
        raise PromptSetError(
            f"{used} traces of generation runs use prompts of this set; it is kept"
        )
    # Samples keep their prompts (copies), but no longer point at a parent that is gone.
    for child in session.exec(select(PromptSet).where(PromptSet.parent_id == prompt_set.id)):
        child.parent_id = None
        session.add(child)
    session.execute(delete(Prompt).where(col(Prompt.prompt_set_id) == prompt_set.id))
    record_event(
        session=session,
        actor=user,
        action="prompt_set.delete",
        object_type="prompt_set",
        object_id=prompt_set.id,
        name=prompt_set.name,
        prompts=prompt_set.prompt_count,
    )
    session.delete(prompt_set)


def list_prompt_sets(*, session: Session) -> list[PromptSet]:
    return list(session.exec(select(PromptSet).order_by(col(PromptSet.id).desc())))


def search_prompts(
    *, session: Session, prompt_set_id: int, query: str = "", page: int = 1, per_page: int = 50
) -> tuple[list[Prompt], int]:
    """One page of a set's prompts in file order, and how many match in all."""
    condition = col(Prompt.prompt_set_id) == prompt_set_id
    if query.strip():
        condition = condition & contains(query.strip(), col(Prompt.text))
    total = session.exec(select(func.count()).select_from(Prompt).where(condition)).one()
    statement = (
        select(Prompt)
        .where(condition)
        .order_by(col(Prompt.position))
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    )
    return list(session.exec(statement)), int(total)


def sample_prompt_set(
    *, session: Session, source: PromptSet, size: int, seed: int, name: str, user: User | None
) -> PromptSet:
    """A new set of `size` prompts drawn at random from `source`; the same seed draws the same."""
    if size < 1:
        raise PromptSetError("the sample size must be at least 1")
    ids = list(
        session.exec(
            select(Prompt.id)
            .where(Prompt.prompt_set_id == source.id)
            .order_by(col(Prompt.position))
        )
    )
    if size > len(ids):
        raise PromptSetError(f"the set has only {len(ids)} prompts; cannot sample {size}")
    chosen = set(random.Random(seed).sample(ids, size))
    prompts = session.exec(
        select(Prompt).where(col(Prompt.id).in_(chosen)).order_by(col(Prompt.position))
    )
    sample = store_prompt_set(
        session=session,
        name=name,
        description=f"{size} prompts sampled from '{source.name}' with seed {seed}",
        source="sample",
        source_format=source.source_format,
        prompts=[
            ParsedPrompt(text=p.text, context=p.context, line=p.source_line or 0, metadata=p.meta)
            for p in prompts
        ],
        created_by_id=user.id if user else None,
        # A sample of a suite tests what the suite tests.
        purpose=source.purpose,
    )
    sample.parent_id = source.id
    sample.sample_seed = seed
    session.add(sample)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="prompt_set.sample",
        object_type="prompt_set",
        object_id=sample.id,
        source_id=source.id,
        size=size,
        seed=seed,
    )
    return sample
