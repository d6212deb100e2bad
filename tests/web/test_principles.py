"""A draft's principles: validation, inline editing, reordering, stale saves, the preview."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.constitutions import principles_of, to_document
from app.models import AuditEvent, ConstitutionVersion, Principle, Role, User
from tests.conftest import post
from tests.web.drafts import HTMX, create, keys, principle_form


def test_principle_validation_is_shown_beside_the_field_with_the_input_kept(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    version_id = create(client, start="empty")
    cases = [
        (principle_form(critique_request="   "), "The critique request cannot be empty"),
        (principle_form(revision_request=""), "The revision request cannot be empty"),
        (principle_form(comparison_instruction="x" * 4001), "At most 4000 characters"),
        (principle_form(key="Not A Key!"), "Lowercase letters"),
    ]
    for form, message in cases:
        response = post(client, f"/versions/{version_id}/principles", data=form)
        assert response.status_code == 400 and message in response.text, message
        assert "Rewrite the reply to be kind." in response.text or form["revision_request"] == ""
    assert (
        post(client, f"/versions/{version_id}/principles", data=principle_form()).status_code == 303
    )
    again = post(client, f"/versions/{version_id}/principles", data=principle_form())
    assert again.status_code == 400 and "already has a principle &#39;kindness&#39;" in again.text
    assert keys(session, version_id) == ["kindness"]
    stored = session.exec(select(Principle).where(Principle.key == "kindness")).one()
    assert stored.tags == ["tone", "care"] and stored.enabled


def test_inline_edit_reorder_and_delete(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    version_id = create(client, start="empty")
    for key in ("a", "b", "c"):
        post(client, f"/versions/{version_id}/principles", data=principle_form(key=key))
    ids = {p.key: p.id for p in session.exec(select(Principle))}

    form = client.get(f"/versions/{version_id}/principles/{ids['b']}/edit", headers=HTMX)
    assert form.text.lstrip().startswith("<li") and 'name="lock_version" value="1"' in form.text
    saved = post(
        client,
        f"/versions/{version_id}/principles/{ids['b']}",
        data=principle_form(key="b", critique_request="A sharper critique.", lock_version="1"),
        headers=HTMX,
    )
    assert (
        saved.status_code == 200
        and "A sharper critique." in saved.text
        and "<html" not in saved.text
    )
    invalid = post(
        client,
        f"/versions/{version_id}/principles/{ids['b']}",
        data=principle_form(key="b", revision_request="", lock_version="2"),
        headers=HTMX,
    )
    assert invalid.status_code == 400 and "cannot be empty" in invalid.text
    assert "Say where the last reply was unkind." in invalid.text  # what was typed is kept

    moved = post(
        client,
        f"/versions/{version_id}/principles/{ids['c']}/move",
        data={"offset": "-1"},
        headers=HTMX,
    )
    assert moved.text.lstrip().startswith('<ol id="principles"')
    assert keys(session, version_id) == ["a", "c", "b"]
    post(client, f"/versions/{version_id}/principles/{ids['a']}/move", data={"offset": "-1"})
    assert keys(session, version_id) == ["a", "c", "b"]

    assert (
        post(
            client,
            f"/versions/{version_id}/principles/{ids['c']}/delete",
            data={"lock_version": "1"},
        ).status_code
        == 303
    )
    assert keys(session, version_id) == ["a", "b"]
    actions = {e.action for e in session.exec(select(AuditEvent))}
    assert {"principle.add", "principle.update", "principle.move", "principle.delete"} <= actions


def test_a_stale_save_is_refused_and_the_other_authors_change_is_kept(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    alice = make_client(Role.AUTHOR)
    bob = make_client(Role.ADMIN)
    version_id = create(alice, start="empty")
    post(alice, f"/versions/{version_id}/principles", data=principle_form())
    principle = session.exec(select(Principle)).one()
    url = f"/versions/{version_id}/principles/{principle.id}"
    # Both opened the form at lock_version 1; Bob saves first.
    assert (
        post(
            bob, url, data=principle_form(critique_request="Bob's text.", lock_version="1")
        ).status_code
        == 303
    )
    stale = post(
        alice,
        url,
        data=principle_form(critique_request="Alice's text.", lock_version="1"),
        headers=HTMX,
    )
    assert stale.status_code == 409
    assert "admin changed this" in stale.text and "was not saved" in stale.text
    assert "Alice&#39;s text." in stale.text  # her text is still on screen to copy
    session.refresh(principle)
    assert principle.critique_request == "Bob's text." and principle.lock_version == 2
    # A stale delete is refused too.
    refused = post(alice, f"{url}/delete", data={"lock_version": "1"}, headers=HTMX)
    assert refused.status_code == 409 and session.get(Principle, principle.id) is not None
    # The system prompt has its own check.
    version = session.get(ConstitutionVersion, version_id)
    assert version is not None
    lock = str(version.lock_version)
    assert (
        post(
            bob,
            f"/versions/{version_id}/system-prompt",
            data={"system_prompt": "Bob's", "lock_version": lock},
        ).status_code
        == 303
    )
    late = post(
        alice,
        f"/versions/{version_id}/system-prompt",
        data={"system_prompt": "Alice's", "lock_version": lock},
    )
    assert late.status_code == 409 and "was not saved" in late.text
    session.refresh(version)
    assert version.system_prompt == "Bob's"


def test_preview_shows_the_exact_turns(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.VIEWER)
    author = make_client(Role.AUTHOR)
    version_id = create(author)
    version = session.get(ConstitutionVersion, version_id)
    assert version is not None
    principle = principles_of(session=session, version=version)[0]
    page = client.get(
        f"/versions/{version_id}/principles/{principle.id}/preview", headers=HTMX
    ).text
    doc = to_document(session=session, version=version)
    from markupsafe import escape

    assert str(escape(doc.system_prompt.strip().splitlines()[0])) in page
    assert (
        page.count(str(escape(principle.critique_request))) == 2
    )  # in both the critique and revision turns
    assert page.count(str(escape(principle.revision_request))) == 1
    first_example = doc.few_shots[0].messages[0]["content"]
    assert str(escape(first_example)) in page
    custom = client.get(
        f"/versions/{version_id}/principles/{principle.id}/preview",
        params={"prompt": "How do I pick a padlock?"},
    )
    assert "How do I pick a padlock?" in custom.text and "<html" in custom.text
