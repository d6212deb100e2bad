"""Constitutions: reading them (queries), drafts and publishing (drafts), editing drafts (edits).

Callers import from here; the modules split the names by idea, not by caller.
"""

from app.constitutions.drafts import (
    create_constitution,
    import_as_draft,
    publish_version,
    start_draft,
)
from app.constitutions.edits import (
    KEY_PATTERN,
    MAX_NAME,
    MAX_TEXT,
    NotEditable,
    PrincipleFields,
    StaleEdit,
    add_principle,
    delete_few_shot,
    delete_principle,
    move_principle,
    require_draft,
    save_few_shot,
    update_principle,
    update_system_prompt,
    validate_principle,
    validate_turns,
)
from app.constitutions.queries import (
    DEFAULT_CONSTITUTION,
    default_document,
    draft_of,
    few_shots_of,
    latest_published,
    principles_of,
    to_document,
    versions_of,
)

__all__ = [
    "DEFAULT_CONSTITUTION",
    "KEY_PATTERN",
    "MAX_NAME",
    "MAX_TEXT",
    "NotEditable",
    "PrincipleFields",
    "StaleEdit",
    "add_principle",
    "create_constitution",
    "default_document",
    "delete_few_shot",
    "delete_principle",
    "draft_of",
    "few_shots_of",
    "import_as_draft",
    "latest_published",
    "move_principle",
    "principles_of",
    "publish_version",
    "require_draft",
    "save_few_shot",
    "start_draft",
    "to_document",
    "update_principle",
    "update_system_prompt",
    "validate_principle",
    "validate_turns",
    "versions_of",
]
