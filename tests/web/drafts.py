"""Makes constitutions and principle forms for web tests, through the routes a person uses."""

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.constitutions import principles_of
from app.models import ConstitutionVersion
from tests.conftest import post

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
