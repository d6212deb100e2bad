"""A constitution's life: created, imported or copied into a draft, then published as a version."""

from sqlalchemy import func
from sqlmodel import Session, select

from app.audit import record_event
from app.constitutions.edits import NotEditable, require_draft
from app.constitutions.queries import (
    draft_of,
    few_shots_of,
    latest_published,
    principles_of,
    to_document,
)
from app.models import (
    Constitution,
    ConstitutionVersion,
    FewShotConversation,
    Principle,
    User,
    VersionState,
)
from app.recipe.documents import ConstitutionDoc
from app.timeutil import utcnow


def _store_contents(
    session: Session, version: ConstitutionVersion, doc: ConstitutionDoc, user: User | None
) -> None:
    assert version.id is not None
    for position, p in enumerate(doc.principles):
        session.add(
            Principle(
                version_id=version.id,
                position=position,
                key=p.key,
                critique_request=p.critique_request,
                revision_request=p.revision_request,
                comparison_instruction=p.comparison_instruction,
                tags=list(p.tags),
                enabled=p.enabled,
                updated_by_id=user.id if user else None,
            )
        )
    for position, f in enumerate(doc.few_shots):
        session.add(
            FewShotConversation(
                version_id=version.id,
                position=position,
                kind=f.kind,
                title=f.title,
                messages=list(f.messages),
                extra=dict(f.extra),
            )
        )


def create_constitution(
    *,
    session: Session,
    doc: ConstitutionDoc,
    user: User | None,
    source_format: str = "",
    publish: bool = False,
) -> tuple[Constitution, ConstitutionVersion]:
    """A new constitution whose first version holds `doc`: a draft, or v1 when `publish`."""
    constitution = Constitution(
        name=doc.name, description=doc.description, created_by_id=user.id if user else None
    )
    session.add(constitution)
    session.flush()
    version = ConstitutionVersion(
        constitution_id=constitution.id or 0,
        system_prompt=doc.system_prompt,
        note=doc.note,
        extra=dict(doc.extra),
        source_format=source_format,
        created_by_id=user.id if user else None,
        updated_by_id=user.id if user else None,
    )
    session.add(version)
    session.flush()
    _store_contents(session, version, doc, user)
    record_event(
        session=session,
        actor=user,
        action="constitution.create",
        object_type="constitution",
        object_id=constitution.id,
        name=doc.name,
        source_format=source_format,
        principles=len(doc.principles),
    )
    if publish:
        publish_version(session=session, version=version, user=user, note=doc.note)
    return constitution, version


def import_as_draft(
    *,
    session: Session,
    constitution: Constitution,
    doc: ConstitutionDoc,
    user: User,
    source_format: str,
) -> ConstitutionVersion:
    """Replaces the constitution's draft (or starts one) with the imported document."""
    draft = draft_of(session=session, constitution=constitution)
    based_on = latest_published(session=session, constitution=constitution)
    if draft is not None:
        for row in [
            *principles_of(session=session, version=draft),
            *few_shots_of(session=session, version=draft),
        ]:
            session.delete(row)
        session.flush()
    else:
        draft = ConstitutionVersion(
            constitution_id=constitution.id or 0,
            based_on_id=based_on.id if based_on else None,
            created_by_id=user.id,
        )
    draft.system_prompt = doc.system_prompt
    draft.note = doc.note
    draft.extra = dict(doc.extra)
    draft.source_format = source_format
    draft.lock_version += 1
    draft.updated_by_id = user.id
    draft.updated_at = utcnow()
    session.add(draft)
    session.flush()
    _store_contents(session, draft, doc, user)
    record_event(
        session=session,
        actor=user,
        action="constitution.import",
        object_type="constitution_version",
        object_id=draft.id,
        source_format=source_format,
        principles=len(doc.principles),
    )
    return draft


def start_draft(
    *, session: Session, constitution: Constitution, source: ConstitutionVersion, user: User
) -> ConstitutionVersion:
    """Editing a published constitution starts a draft copied from one of its versions."""
    existing = draft_of(session=session, constitution=constitution)
    if existing is not None:
        return existing
    doc = to_document(session=session, version=source)
    draft = ConstitutionVersion(
        constitution_id=constitution.id or 0,
        system_prompt=doc.system_prompt,
        extra=doc.extra,
        source_format=source.source_format,
        based_on_id=source.id,
        created_by_id=user.id,
        updated_by_id=user.id,
    )
    session.add(draft)
    session.flush()
    _store_contents(session, draft, doc, user)
    record_event(
        session=session,
        actor=user,
        action="constitution.draft",
        object_type="constitution_version",
        object_id=draft.id,
        based_on=source.label,
    )
    return draft


def publish_version(
    *, session: Session, version: ConstitutionVersion, user: User | None, note: str
) -> ConstitutionVersion:
    require_draft(version)
    if not any(p.enabled for p in principles_of(session=session, version=version)):
        raise NotEditable("a constitution needs at least one enabled principle to be published")
    latest = session.exec(
        select(func.max(ConstitutionVersion.number)).where(
            ConstitutionVersion.constitution_id == version.constitution_id
        )
    ).one()
    version.number = (latest or 0) + 1
    version.state = VersionState.PUBLISHED
    version.note = note.strip()[:2000]
    version.published_at = utcnow()
    version.published_by_id = user.id if user else None
    version.lock_version += 1
    session.add(version)
    session.flush()
    record_event(
        session=session,
        actor=user,
        action="constitution.publish",
        object_type="constitution_version",
        object_id=version.id,
        number=version.number,
        note=version.note,
    )
    return version
