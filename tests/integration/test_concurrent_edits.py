"""Two authors save the same thing at the same moment on PostgreSQL: exactly one save wins."""

import threading
from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from app.constitutions import (
    PrincipleFields,
    StaleEdit,
    create_constitution,
    default_document,
    principles_of,
    save_few_shot,
    update_principle,
    update_system_prompt,
)
from app.models import ConstitutionVersion, Principle, Role, User
from app.users import create_user

pytestmark = pytest.mark.services

ATTEMPTS = 5


@pytest.fixture
def pg_engine(postgres_url: str) -> Engine:
    import app.models  # noqa: F401

    engine = create_engine(postgres_url)
    SQLModel.metadata.create_all(engine)
    return engine


def race(engine: Engine, save: Callable[[Session, User, Callable[[], None]], None]) -> list[str]:
    """Two threads load the same row, meet at a barrier, then both save; their outcomes."""
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def one(username: str) -> None:
        with Session(engine) as session:
            user = session.exec(select(User).where(User.username == username)).one()
            try:
                save(session, user, lambda: barrier.wait())
                session.commit()
                outcomes.append("saved")
            except StaleEdit:
                session.rollback()
                outcomes.append("stale")

    threads = [threading.Thread(target=one, args=(name,)) for name in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


def test_exactly_one_of_two_simultaneous_saves_wins(pg_engine: Engine) -> None:
    with Session(pg_engine) as session:
        ann, _bob = (
            create_user(
                session=session, username=n, password="p" * 12, role=Role.AUTHOR, actor=None
            )
            for n in ("ann", "bob")
        )
        _, version = create_constitution(session=session, doc=default_document(), user=ann)
        session.commit()
        version_id = version.id
        principle_id = principles_of(session=session, version=version)[0].id

    def edit_principle(session: Session, user: User, wait: Callable[[], None]) -> None:
        principle = session.get(Principle, principle_id)
        assert principle is not None
        loaded_at = principle.lock_version
        wait()
        fields = PrincipleFields(
            key=principle.key,
            critique_request=f"{user.username}'s critique request",
            revision_request=principle.revision_request,
        )
        update_principle(
            session=session, principle=principle, fields=fields, expected_lock=loaded_at, user=user
        )

    def edit_system_prompt(session: Session, user: User, wait: Callable[[], None]) -> None:
        version = session.get(ConstitutionVersion, version_id)
        assert version is not None
        loaded_at = version.lock_version
        wait()
        update_system_prompt(
            session=session,
            version=version,
            text=f"{user.username}'s system prompt",
            expected_lock=loaded_at,
            user=user,
        )

    def add_few_shot(session: Session, user: User, wait: Callable[[], None]) -> None:
        version = session.get(ConstitutionVersion, version_id)
        assert version is not None
        loaded_at = version.lock_version
        wait()
        save_few_shot(
            session=session,
            version=version,
            few_shot=None,
            title=user.username,
            kind="critique-revision",
            turns=[{"role": "user", "content": user.username}],
            expected_lock=loaded_at,
            user=user,
        )

    for save in (edit_principle, edit_system_prompt, add_few_shot):
        for _ in range(ATTEMPTS):
            assert race(pg_engine, save) == ["saved", "stale"], save.__name__

    with Session(pg_engine) as session:
        principle = session.get(Principle, principle_id)
        version = session.get(ConstitutionVersion, version_id)
        assert principle is not None and version is not None
        # Each won race moved each lock on by exactly one.
        assert principle.lock_version == 1 + ATTEMPTS
        assert version.lock_version == 1 + 2 * ATTEMPTS
    pg_engine.dispose()
