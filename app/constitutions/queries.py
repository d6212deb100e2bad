"""Reading constitutions: a version's principles and few-shots, its drafts, its document."""

from pathlib import Path

from sqlmodel import Session, col, select

from app.models import (
    Constitution,
    ConstitutionVersion,
    FewShotConversation,
    Principle,
    VersionState,
)
from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from app.recipe.formats import read_project

DEFAULT_CONSTITUTION = Path(__file__).resolve().parent.parent / "defaults" / "constitution.yaml"


def default_document() -> ConstitutionDoc:
    """The project's own default constitution, shipped with the app."""
    return read_project(DEFAULT_CONSTITUTION.read_bytes(), DEFAULT_CONSTITUTION.name)


def principles_of(*, session: Session, version: ConstitutionVersion) -> list[Principle]:
    return list(
        session.exec(
            select(Principle)
            .where(Principle.version_id == version.id)
            .order_by(col(Principle.position))
        )
    )


def few_shots_of(*, session: Session, version: ConstitutionVersion) -> list[FewShotConversation]:
    return list(
        session.exec(
            select(FewShotConversation)
            .where(FewShotConversation.version_id == version.id)
            .order_by(col(FewShotConversation.position))
        )
    )


def versions_of(*, session: Session, constitution: Constitution) -> list[ConstitutionVersion]:
    return list(
        session.exec(
            select(ConstitutionVersion)
            .where(ConstitutionVersion.constitution_id == constitution.id)
            .order_by(col(ConstitutionVersion.id).desc())
        )
    )


def draft_of(*, session: Session, constitution: Constitution) -> ConstitutionVersion | None:
    return session.exec(
        select(ConstitutionVersion).where(
            ConstitutionVersion.constitution_id == constitution.id,
            ConstitutionVersion.state == VersionState.DRAFT,
        )
    ).first()


def latest_published(*, session: Session, constitution: Constitution) -> ConstitutionVersion | None:
    return session.exec(
        select(ConstitutionVersion)
        .where(
            ConstitutionVersion.constitution_id == constitution.id,
            ConstitutionVersion.state == VersionState.PUBLISHED,
        )
        .order_by(col(ConstitutionVersion.number).desc())
    ).first()


def to_document(*, session: Session, version: ConstitutionVersion) -> ConstitutionDoc:
    constitution = session.get(Constitution, version.constitution_id)
    assert constitution is not None
    return ConstitutionDoc(
        name=constitution.name,
        description=constitution.description,
        system_prompt=version.system_prompt,
        note=version.note,
        extra=dict(version.extra),
        principles=[
            PrincipleDoc(
                key=p.key,
                critique_request=p.critique_request,
                revision_request=p.revision_request,
                comparison_instruction=p.comparison_instruction,
                tags=list(p.tags),
                enabled=p.enabled,
            )
            for p in principles_of(session=session, version=version)
        ],
        few_shots=[
            FewShotDoc(kind=f.kind, title=f.title, messages=list(f.messages), extra=dict(f.extra))  # type: ignore[arg-type]
            for f in few_shots_of(session=session, version=version)
        ],
    )
