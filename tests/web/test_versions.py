"""Versions: publishing freezes a numbered version; viewers read it without editing controls."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.constitutions import principles_of
from app.models import AuditEvent, ConstitutionVersion, Role, User, VersionState
from tests.conftest import post
from tests.web.drafts import create, keys, principle_form


def test_publish_freezes_a_numbered_version_and_editing_starts_a_new_draft(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    empty = create(client, name="Empty", start="empty")
    refused = post(client, f"/versions/{empty}/publish", data={"note": "first"})
    assert refused.status_code == 400 and "at least one enabled principle" in refused.text

    first = create(client, name="Numbered")
    assert post(client, f"/versions/{first}/publish", data={"note": "first cut"}).status_code == 303
    v1 = session.get(ConstitutionVersion, first)
    assert v1 is not None and (v1.number, v1.state, v1.note) == (
        1,
        VersionState.PUBLISHED,
        "first cut",
    )
    principle = principles_of(session=session, version=v1)[0]
    frozen = post(
        client,
        f"/versions/{first}/principles/{principle.id}",
        data=principle_form(lock_version="1"),
    )
    assert frozen.status_code == 409 and "published" in frozen.text
    assert "Publish as a new version" not in client.get(f"/versions/{first}").text

    response = post(
        client, f"/constitutions/{v1.constitution_id}/drafts", data={"from_version": str(first)}
    )
    draft_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert keys(session, draft_id) == keys(session, first)
    again = post(
        client, f"/constitutions/{v1.constitution_id}/drafts", data={"from_version": str(first)}
    )
    assert again.headers["location"] == f"/versions/{draft_id}"  # one draft at a time
    post(client, f"/versions/{draft_id}/principles", data=principle_form())
    post(client, f"/versions/{draft_id}/publish", data={"note": "kindness"})
    v2 = session.get(ConstitutionVersion, draft_id)
    assert v2 is not None and v2.number == 2 and v2.based_on_id == first
    assert keys(session, first)[-1] != "kindness"  # v1 did not change
    assert {"constitution.publish", "constitution.draft"} <= {
        e.action for e in session.exec(select(AuditEvent))
    }


def test_viewers_read_but_see_no_editing_controls(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    version_id = create(make_client(Role.AUTHOR))
    page = make_client(Role.REVIEWER).get(f"/versions/{version_id}").text
    assert "Critique request" in page
    assert (
        "Add a principle" not in page
        and "Publish as a new version" not in page
        and ">Edit<" not in page
    )
    listing = make_client(Role.VIEWER).get("/constitutions").text
    assert "Mine" in listing and "New constitution" not in listing
