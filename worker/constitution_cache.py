"""A published constitution version as the engine reads it, kept per worker process.

Every chunk of a run reads the same version, and any worker may take any chunk, so without this
each chunk reads the constitution, its principles and its few-shots again. A published version
never changes (app.models.ConstitutionVersion), so its document is kept, by database, id and
publication time (the version row itself, one read by key, is read every time); a draft is read
whole every time.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from app.constitutions import to_document
from app.models import ConstitutionVersion, Principle
from app.recipe.documents import ConstitutionDoc

# Few runs are live in one worker at a time; the oldest entry goes past this many.
MAX_VERSIONS = 16


@dataclass(frozen=True)
class VersionDocument:
    version_id: int
    document: ConstitutionDoc
    principle_ids: dict[str, int]


_published: dict[tuple[str, int, datetime], VersionDocument] = {}


def version_document(session: Session, version_id: int) -> VersionDocument:
    """The version's document and its principles' ids; LookupError when there is no version."""
    version = session.get(ConstitutionVersion, version_id)
    if version is None:
        raise LookupError(f"constitution version {version_id} does not exist")
    key = None
    if not version.is_draft and version.published_at is not None:
        key = (str(session.get_bind().engine.url), version_id, version.published_at)
        if key in _published:
            return _published[key]
    principles = session.exec(select(Principle).where(Principle.version_id == version.id)).all()
    read = VersionDocument(
        version_id=version_id,
        document=to_document(session=session, version=version),
        principle_ids={p.key: p.id or 0 for p in principles},
    )
    if key is not None:
        while len(_published) >= MAX_VERSIONS:
            _published.pop(next(iter(_published)))
        _published[key] = read
    return read
