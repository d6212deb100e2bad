"""Which prompts a run takes from its set: shared by the web app and the worker."""

import random

from sqlmodel import Session, col, select

from app.models import Prompt
from app.specs.generation import PromptSelection


def select_prompts(session: Session, selection: PromptSelection) -> list[Prompt]:
    """A run's prompts: the set, or a seeded sample of it, cut to `max_prompts`."""
    rows = list(
        session.exec(
            select(Prompt)
            .where(Prompt.prompt_set_id == selection.prompt_set_id)
            .order_by(col(Prompt.position))
        )
    )
    if not rows:
        raise LookupError(f"prompt set {selection.prompt_set_id} has no prompts")
    if selection.sample_size and selection.sample_size < len(rows):
        chosen = set(random.Random(selection.seed).sample(range(len(rows)), selection.sample_size))
        rows = [row for index, row in enumerate(rows) if index in chosen]
    if selection.max_prompts:
        rows = rows[: selection.max_prompts]
    return rows
