import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.constitutions import principles_of, to_document
from app.models import (
    AuditEvent,
    Constitution,
    ConstitutionVersion,
    FewShotConversation,
    Principle,
    Role,
    User,
    VersionState,
)
from tests.conftest import SHARED_DATA, post

PROMPTS_DIR = SHARED_DATA / "cai-paper" / "prompts"
HTMX = {"HX-Request": "true"}


def create(client: TestClient, name: str = "Mine", start: str = "default") -> int:
    response = post(
        client, "/constitutions", data={"name": name, "description": "d", "start": start}
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def principle_form(**overrides: Any) -> dict[str, Any]:
    return {
        "key": "kindness",
        "critique_request": "Say where the last reply was unkind.",
        "revision_request": "Rewrite the reply to be kind.",
        "comparison_instruction": "Which reply is kinder? Options:",
        "tags": "tone, care",
        "enabled": "true",
        **overrides,
    }


def keys(session: Session, version_id: int) -> list[str]:
    version = session.get(ConstitutionVersion, version_id)
    assert version is not None
    session.expire_all()
    return [p.key for p in principles_of(session=session, version=version)]


def test_a_new_constitution_starts_as_a_draft_copy_of_the_default(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    version_id = create(client)
    version = session.get(ConstitutionVersion, version_id)
    assert version is not None and version.state == VersionState.DRAFT and version.number is None
    assert len(keys(session, version_id)) >= 12
    page = client.get(f"/versions/{version_id}")
    assert "Publish as a new version" in page.text and "Add a principle" in page.text
    duplicate = post(client, "/constitutions", data={"name": "Mine", "start": "empty"})
    assert duplicate.status_code == 400 and "exists already" in duplicate.text


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


def test_diff_marks_added_removed_and_changed_words(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    first = create(client, name="Diffed", start="empty")
    post(client, f"/versions/{first}/principles", data=principle_form(key="stays"))
    post(client, f"/versions/{first}/principles", data=principle_form(key="goes"))
    post(client, f"/versions/{first}/publish", data={})
    constitution_id = session.get(ConstitutionVersion, first).constitution_id  # type: ignore[union-attr]
    draft = int(
        post(client, f"/constitutions/{constitution_id}/drafts", data={"from_version": str(first)})
        .headers["location"]
        .rsplit("/", 1)[1]
    )
    ids = {
        p.key: p.id for p in session.exec(select(Principle).where(Principle.version_id == draft))
    }
    post(
        client,
        f"/versions/{draft}/principles/{ids['stays']}",
        data=principle_form(
            key="stays", critique_request="Say where the last reply was cruel.", lock_version="1"
        ),
    )
    post(client, f"/versions/{draft}/principles/{ids['goes']}/delete", data={"lock_version": "1"})
    post(client, f"/versions/{draft}/principles", data=principle_form(key="arrives"))

    page = client.get(
        f"/constitutions/{constitution_id}/diff", params={"a": first, "b": draft}
    ).text
    assert "1 added, 1 removed, 1 changed, 0 unchanged" in page
    # Side by side: the old text with the deleted word marked, the new with the inserted one.
    assert '<div class="pre old">Say where the last reply was <del>unkind.</del></div>' in page
    assert '<div class="pre new">Say where the last reply was <ins>cruel.</ins></div>' in page
    assert 'class="card diff-item added" data-key="arrives"' in page
    assert 'class="card diff-item removed" data-key="goes"' in page
    overview = client.get(f"/constitutions/{constitution_id}").text
    assert "v1" in overview and "draft" in overview


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


def test_system_prompt_and_few_shots_are_edited_as_chat_turns(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    version_id = create(client, start="empty")

    def lock() -> str:
        session.expire_all()
        return str(session.get(ConstitutionVersion, version_id).lock_version)  # type: ignore[union-attr]

    post(
        client,
        f"/versions/{version_id}/system-prompt",
        data={"system_prompt": "Be kind.", "lock_version": lock()},
    )
    turns = {"role": ["user", "assistant", "user"], "content": ["Hi", "Hello!", "   "]}
    added = post(
        client,
        f"/versions/{version_id}/few-shots",
        data={"title": "greeting", "kind": "critique-revision", "lock_version": lock(), **turns},
    )
    assert added.status_code == 303
    version = session.get(ConstitutionVersion, version_id)
    assert version is not None
    doc = to_document(session=session, version=version)
    assert doc.system_prompt == "Be kind."
    assert doc.few_shots[0].messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    bad = post(
        client,
        f"/versions/{version_id}/few-shots",
        data={"lock_version": lock(), "role": ["wizard"], "content": ["x"]},
    )
    assert bad.status_code == 400 and "role must be one of" in bad.text
    empty = post(
        client,
        f"/versions/{version_id}/few-shots",
        data={"lock_version": lock(), "role": ["user"], "content": [""]},
    )
    assert empty.status_code == 400 and "at least one turn" in empty.text
    few_shot_id = session.exec(select(FewShotConversation)).one().id
    stale_lock = str(int(lock()) - 1)
    stale = post(
        client,
        f"/versions/{version_id}/few-shots/{few_shot_id}",
        data={"lock_version": stale_lock, "role": ["user"], "content": ["Changed"]},
    )
    assert stale.status_code == 409 and "was not saved" in stale.text
    assert session.exec(select(FewShotConversation)).one().messages[0]["content"] == "Hi"


def anthropic_files() -> dict[str, bytes]:
    names = [
        "CritiqueRevisionInstructions.json",
        "RLMadisonInstructions.json",
        "CritiqueRevisionFewShotPrompts.json",
        "RLMadisonFewShotPrompts.json",
    ]
    if not PROMPTS_DIR.exists():
        pytest.skip("shared/data is not beside the project")
    return {name: (PROMPTS_DIR / name).read_bytes() for name in names}


def test_import_anthropic_files_and_export_them_back_unchanged(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    files = anthropic_files()
    client = make_client(Role.AUTHOR)
    response = post(
        client,
        "/constitutions/import",
        data={"name": "Anthropic", "into": ""},
        files=[("files", (n, d)) for n, d in files.items()],
    )
    assert response.status_code == 303, response.text
    version_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert len(keys(session, version_id)) == 16
    exported = client.get(f"/versions/{version_id}/export", params={"format": "anthropic"})
    assert exported.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        for name, data in files.items():
            assert json.loads(archive.read(name)) == json.loads(data), name

    project = client.get(f"/versions/{version_id}/export", params={"format": "project-yaml"})
    again = post(
        client,
        "/constitutions/import",
        data={"name": "Anthropic again", "into": ""},
        files=[("files", ("c.yaml", project.content))],
    )
    assert again.status_code == 303
    copy_id = int(again.headers["location"].rsplit("/", 1)[1])
    original = to_document(session=session, version=session.get(ConstitutionVersion, version_id))  # type: ignore[arg-type]
    copied = to_document(session=session, version=session.get(ConstitutionVersion, copy_id))  # type: ignore[arg-type]
    assert (copied.principles, copied.few_shots, copied.extra) == (
        original.principles,
        original.few_shots,
        original.extra,
    )


def test_a_bad_import_names_the_file_and_path_and_stores_nothing(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR)
    before = len(session.exec(select(Constitution)).all())
    bad = json.dumps({"p1": {"prompt": ["\n\nCritiqueRequest: Find harm.\n\nCritique:"]}}).encode()
    response = post(
        client,
        "/constitutions/import",
        data={"name": "Bad", "into": ""},
        files=[("files", ("CritiqueRevisionInstructions.json", bad))],
    )
    assert response.status_code == 400
    assert (
        "CritiqueRevisionInstructions.json" in response.text
        and "$.p1.edit_request" in response.text
    )
    unknown = post(
        client,
        "/constitutions/import",
        data={"name": "Bad"},
        files=[("files", ("notes.json", b'{"hello": 1}'))],
    )
    assert unknown.status_code == 400 and "not a constitution in any known format" in unknown.text
    assert len(session.exec(select(Constitution)).all()) == before


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


def test_bootstrap_publishes_the_default_constitution_once(session: Session) -> None:
    from app.bootstrap import ensure_default_constitution

    assert ensure_default_constitution(session=session) is not None
    assert ensure_default_constitution(session=session) is None
    versions = session.exec(select(ConstitutionVersion).order_by(col(ConstitutionVersion.id))).all()
    assert [(v.number, v.state) for v in versions] == [(1, VersionState.PUBLISHED)]
