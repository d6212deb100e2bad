"""The models page says how each OpenAI-compatible server scores, as the worker's probe found
it (worker.backends.server_probe), and that an unprobed one has not been checked."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import LanguageModel, Role, User
from tests.conftest import post
from worker.backends.loading import probe_recorder
from worker.backends.server_probe import ScoringMode, ServerProbe


def test_the_models_page_shows_the_probe(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    admin = make_client(Role.ADMIN)
    data = {"name": "llama-server", "backend": "openai", "path": "m"}
    data["base_url"] = "http://127.0.0.1:8001/v1"
    assert post(admin, "/models", data=data).status_code == 303
    page = make_client(Role.VIEWER).get("/models").text
    assert 'data-scoring="unprobed"' in page and "not checked yet" in page
    model = session.exec(select(LanguageModel).where(LanguageModel.name == "llama-server")).one()
    probe = ServerProbe(
        ScoringMode.ECHO_SHIFTED,
        "echo: digits at their own entries -8.20, one entry earlier -0.12",
        aligned=-8.2,
        shifted=-0.12,
        template="tokenizer",
        probed_at="2026-12-01T12:00:00+00:00",
    )
    # What the worker calls once it has probed the server.
    assert model.id is not None
    probe_recorder(model.id)(probe)
    page = make_client(Role.VIEWER).get("/models").text
    assert 'data-scoring="echo_shifted"' in page
    assert "shifted by one position: corrected" in page
    assert "one entry earlier -0.12" in page and "chat template (its tokenizer)" in page
    session.expire_all()
    stored = session.get(LanguageModel, model.id)
    assert stored is not None and stored.server_probe is not None
    assert ServerProbe.from_json(stored.server_probe) == probe
