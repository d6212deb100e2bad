"""Constitutions: starting one, comparing versions, importing and exporting files, bootstrap."""

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.constitutions import to_document
from app.models import Constitution, ConstitutionVersion, Principle, Role, User, VersionState
from tests.conftest import post
from tests.web.drafts import create, keys, principle_form


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


def anthropic_files(shared_data: Callable[[str], Path]) -> dict[str, bytes]:
    names = [
        "CritiqueRevisionInstructions.json",
        "RLMadisonInstructions.json",
        "CritiqueRevisionFewShotPrompts.json",
        "RLMadisonFewShotPrompts.json",
    ]
    return {name: shared_data(f"cai-paper/prompts/{name}").read_bytes() for name in names}


def test_import_anthropic_files_and_export_them_back_unchanged(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    shared_data: Callable[[str], Path],
) -> None:
    files = anthropic_files(shared_data)
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


def test_bootstrap_publishes_the_default_constitution_once(session: Session) -> None:
    from app.bootstrap import ensure_default_constitution

    assert ensure_default_constitution(session=session) is not None
    assert ensure_default_constitution(session=session) is None
    versions = session.exec(select(ConstitutionVersion).order_by(col(ConstitutionVersion.id))).all()
    assert [(v.number, v.state) for v in versions] == [(1, VersionState.PUBLISHED)]
