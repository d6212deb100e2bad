"""A draft's system prompt and few-shot conversations, edited as chat turns."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.constitutions import to_document
from app.models import ConstitutionVersion, FewShotConversation, Role, User
from tests.conftest import post
from tests.web.drafts import create


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


def test_a_stale_few_shot_delete_is_refused_and_the_conversation_kept(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    alice = make_client(Role.AUTHOR)
    bob = make_client(Role.ADMIN)
    version_id = create(alice, start="empty")
    opened = str(session.get(ConstitutionVersion, version_id).lock_version)  # type: ignore[union-attr]
    turns = {"role": ["user"], "content": ["Hi"]}
    assert (
        post(alice, f"/versions/{version_id}/few-shots", data={"lock_version": opened, **turns})
    ).status_code == 303
    few_shot_id = session.exec(select(FewShotConversation)).one().id
    # Both pages hold the version's current lock; Bob saves the system prompt first.
    session.expire_all()
    current = str(session.get(ConstitutionVersion, version_id).lock_version)  # type: ignore[union-attr]
    bob_saved = post(
        bob,
        f"/versions/{version_id}/system-prompt",
        data={"system_prompt": "Bob's", "lock_version": current},
    )
    assert bob_saved.status_code == 303
    refused = post(
        alice,
        f"/versions/{version_id}/few-shots/{few_shot_id}/delete",
        data={"lock_version": current},
    )
    assert refused.status_code == 409 and "admin changed this" in refused.text
    assert "Bob&#39;s" in refused.text  # the page shows the version as Bob left it
    assert session.exec(select(FewShotConversation)).one().id == few_shot_id
