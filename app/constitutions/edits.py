"""Editing a draft: principles, the system prompt and few-shots, each save guarded by a lock.

Only a draft can change (`require_draft`), and a save names the lock it was loaded with, so a
save made after someone else's fails with StaleEdit instead of overwriting theirs.
"""

import re
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from app.audit import record_event
from app.constitutions.queries import principles_of
from app.models import ConstitutionVersion, FewShotConversation, Principle, User
from app.recipe.documents import ROLES
from app.timeutil import utcnow
from app.users import username_of

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_TEXT = 4000
MAX_NAME = 200


class StaleEdit(Exception):
    """Someone saved the same thing since this form was loaded; their change is kept."""

    def __init__(self, who: str, when: str) -> None:
        self.who = who
        self.when = when
        super().__init__(
            f"{who} changed this at {when} UTC, after you opened it. Your edit was not saved: "
            "their version is shown now; apply your change to it again."
        )


class NotEditable(Exception):
    """The version is published, or cannot be published as it stands."""


@dataclass
class PrincipleFields:
    key: str
    critique_request: str
    revision_request: str
    comparison_instruction: str = ""
    tags: str = ""
    enabled: bool = True

    def tag_list(self) -> list[str]:
        return [t for t in (part.strip() for part in self.tags.split(",")) if t]


def validate_principle(
    *,
    session: Session,
    version: ConstitutionVersion,
    fields: PrincipleFields,
    principle_id: int | None,
) -> dict[str, str]:
    """Form errors by field name; empty when the principle can be saved."""
    errors: dict[str, str] = {}
    if not fields.key:
        errors["key"] = "Give the principle a key, such as 'privacy'."
    elif not KEY_PATTERN.match(fields.key):
        errors["key"] = (
            "Lowercase letters, digits and . _ -, starting with a letter or digit; at most 64."
        )
    else:
        clash = session.exec(
            select(Principle).where(Principle.version_id == version.id, Principle.key == fields.key)
        ).first()
        if clash is not None and clash.id != principle_id:
            errors["key"] = f"This version already has a principle '{fields.key}'."
    for name, label in (
        ("critique_request", "critique request"),
        ("revision_request", "revision request"),
    ):
        if not getattr(fields, name).strip():
            errors[name] = f"The {label} cannot be empty."
    for name in ("critique_request", "revision_request", "comparison_instruction"):
        if len(getattr(fields, name)) > MAX_TEXT:
            errors[name] = f"At most {MAX_TEXT} characters (this is {len(getattr(fields, name))})."
    if len(fields.tags) > 500:
        errors["tags"] = "At most 500 characters of tags."
    return errors


def require_draft(version: ConstitutionVersion) -> None:
    """A published version is a record of what a run used: only a draft changes."""
    if not version.is_draft:
        raise NotEditable(
            f"{version.label} is published and cannot change: start a new draft from it"
        )


def _claim_lock(session: Session, row: Principle | ConstitutionVersion, expected: int) -> None:
    """Moves the row's lock on from `expected` in one conditional UPDATE, or raises StaleEdit.

    Comparing in Python and then writing lets two simultaneous saves both pass; the database
    lets exactly one UPDATE match `lock_version = expected` (the other waits for the row and
    then matches nothing).
    """
    table = type(row)
    claimed = session.execute(
        update(table)
        .where(col(table.id) == row.id, col(table.lock_version) == expected)
        .values(lock_version=expected + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(row)
        raise StaleEdit(
            username_of(session=session, user_id=row.updated_by_id, default="someone"),
            row.updated_at.strftime("%H:%M:%S"),
        )
    # The UPDATE already moved the lock on: record that without writing it a second time.
    set_committed_value(row, "lock_version", expected + 1)


def add_principle(
    *, session: Session, version: ConstitutionVersion, fields: PrincipleFields, user: User
) -> Principle:
    require_draft(version)
    last = session.exec(
        select(func.max(Principle.position)).where(Principle.version_id == version.id)
    ).one()
    principle = Principle(
        version_id=version.id or 0,
        position=(last if last is not None else -1) + 1,
        key=fields.key,
        critique_request=fields.critique_request.strip(),
        revision_request=fields.revision_request.strip(),
        comparison_instruction=fields.comparison_instruction.strip(),
        tags=fields.tag_list(),
        enabled=fields.enabled,
        updated_by_id=user.id,
    )
    session.add(principle)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="principle.add",
        object_type="principle",
        object_id=principle.id,
        version_id=version.id,
        key=principle.key,
    )
    return principle


def update_principle(
    *,
    session: Session,
    principle: Principle,
    fields: PrincipleFields,
    expected_lock: int,
    user: User,
) -> Principle:
    version = session.get(ConstitutionVersion, principle.version_id)
    assert version is not None
    require_draft(version)
    _claim_lock(session, principle, expected_lock)
    before = {
        "key": principle.key,
        "critique_request": principle.critique_request,
        "revision_request": principle.revision_request,
        "comparison_instruction": principle.comparison_instruction,
        "tags": principle.tags,
        "enabled": principle.enabled,
    }
    principle.key = fields.key
    principle.critique_request = fields.critique_request.strip()
    principle.revision_request = fields.revision_request.strip()
    principle.comparison_instruction = fields.comparison_instruction.strip()
    principle.tags = fields.tag_list()
    principle.enabled = fields.enabled
    principle.updated_by_id = user.id
    principle.updated_at = utcnow()
    session.add(principle)
    changed = {k: v for k, v in before.items() if getattr(principle, k) != v}
    record_event(
        session=session,
        actor=user,
        action="principle.update",
        object_type="principle",
        object_id=principle.id,
        version_id=version.id,
        key=principle.key,
        before=changed,
    )
    return principle


def delete_principle(
    *, session: Session, principle: Principle, expected_lock: int, user: User
) -> None:
    version = session.get(ConstitutionVersion, principle.version_id)
    assert version is not None
    require_draft(version)
    _claim_lock(session, principle, expected_lock)
    record_event(
        session=session,
        actor=user,
        action="principle.delete",
        object_type="principle",
        object_id=principle.id,
        version_id=version.id,
        key=principle.key,
        critique_request=principle.critique_request,
        revision_request=principle.revision_request,
    )
    session.delete(principle)
    session.flush()
    for position, p in enumerate(principles_of(session=session, version=version)):
        p.position = position
        session.add(p)


def move_principle(*, session: Session, principle: Principle, offset: int, user: User) -> None:
    version = session.get(ConstitutionVersion, principle.version_id)
    assert version is not None
    require_draft(version)
    ordered = principles_of(session=session, version=version)
    index = next(i for i, p in enumerate(ordered) if p.id == principle.id)
    target = max(0, min(len(ordered) - 1, index + offset))
    if target == index:
        return
    ordered.insert(target, ordered.pop(index))
    for position, p in enumerate(ordered):
        p.position = position
        session.add(p)
    record_event(
        session=session,
        actor=user,
        action="principle.move",
        object_type="principle",
        object_id=principle.id,
        version_id=version.id,
        key=principle.key,
        position=target,
    )


def update_system_prompt(
    *, session: Session, version: ConstitutionVersion, text: str, expected_lock: int, user: User
) -> None:
    require_draft(version)
    _claim_lock(session, version, expected_lock)
    if len(text) > MAX_TEXT:
        raise ValueError(f"The system prompt can be at most {MAX_TEXT} characters.")
    before = version.system_prompt
    version.system_prompt = text.strip()
    _touch(version, user)
    session.add(version)
    record_event(
        session=session,
        actor=user,
        action="constitution.system_prompt",
        object_type="constitution_version",
        object_id=version.id,
        before=before,
    )


def _touch(version: ConstitutionVersion, user: User) -> None:
    """Who changed the version and when; its lock moved on in `_claim_lock`."""
    version.updated_by_id = user.id
    version.updated_at = utcnow()


def validate_turns(turns: list[dict[str, str]]) -> str | None:
    if not turns:
        return "A few-shot conversation needs at least one turn with text."
    for number, turn in enumerate(turns, start=1):
        if turn["role"] not in ROLES:
            return f"Turn {number}: the role must be one of {', '.join(ROLES)}."
        if len(turn["content"]) > MAX_TEXT:
            return f"Turn {number}: at most {MAX_TEXT} characters."
    return None


def save_few_shot(
    *,
    session: Session,
    version: ConstitutionVersion,
    few_shot: FewShotConversation | None,
    title: str,
    kind: str,
    turns: list[dict[str, str]],
    expected_lock: int,
    user: User,
) -> FewShotConversation:
    require_draft(version)
    _claim_lock(session, version, expected_lock)
    if few_shot is None:
        last = session.exec(
            select(func.max(FewShotConversation.position)).where(
                FewShotConversation.version_id == version.id
            )
        ).one()
        few_shot = FewShotConversation(
            version_id=version.id or 0, position=(last if last is not None else -1) + 1
        )
    few_shot.title = title.strip()[:200]
    few_shot.kind = kind if kind in ("critique-revision", "comparison") else "critique-revision"
    few_shot.messages = turns
    session.add(few_shot)
    _touch(version, user)
    session.add(version)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="few_shot.save",
        object_type="few_shot",
        object_id=few_shot.id,
        version_id=version.id,
        turns=len(turns),
    )
    return few_shot


def delete_few_shot(
    *,
    session: Session,
    version: ConstitutionVersion,
    few_shot: FewShotConversation,
    expected_lock: int,
    user: User,
) -> None:
    require_draft(version)
    _claim_lock(session, version, expected_lock)
    record_event(
        session=session,
        actor=user,
        action="few_shot.delete",
        object_type="few_shot",
        object_id=few_shot.id,
        version_id=version.id,
        messages=few_shot.messages,
    )
    session.delete(few_shot)
    _touch(version, user)
    session.add(version)
