"""A worker keeps a published version's document between chunks, and reads a draft every time."""

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.constitutions import create_constitution, default_document
from app.models import Principle
from worker.constitution_cache import version_document


class StatementCount:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1


def test_a_published_version_is_read_whole_once(engine: Engine, session: Session) -> None:
    _, version = create_constitution(
        session=session, doc=default_document(), user=None, publish=True
    )
    session.commit()
    first = version_document(session, version.id or 0)
    assert first.document.principles and set(first.principle_ids) == {
        p.key for p in first.document.principles
    }
    statements = StatementCount(engine)
    with Session(engine) as other:
        again = version_document(other, version.id or 0)
    assert again is first
    assert statements.count == 1  # the version row, to know it is still the same publication


def test_a_draft_is_read_afresh(session: Session) -> None:
    _, draft = create_constitution(session=session, doc=default_document(), user=None)
    before = version_document(session, draft.id or 0)
    principle = session.get(Principle, next(iter(before.principle_ids.values())))
    assert principle is not None
    principle.critique_request = "What is wrong here?"
    session.add(principle)
    session.commit()
    after = version_document(session, draft.id or 0)
    assert principle.key in {p.key for p in after.document.principles}
    edited = next(p for p in after.document.principles if p.key == principle.key)
    assert edited.critique_request == "What is wrong here?"


def test_no_version_is_a_lookup_error(session: Session) -> None:
    try:
        version_document(session, 999)
    except LookupError as error:
        assert "999" in str(error)
    else:
        raise AssertionError("expected a LookupError")
