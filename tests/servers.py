"""Redis and PostgreSQL servers of a test's own, on free ports in temporary folders, for the
fault tests that stop and restart them (the machine's shared servers serve the other tests).

Import the fixtures into a test module: `from tests.servers import own_redis_fixture  # noqa`.
"""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.conftest import missing
from tests.live import free_port

PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT = 60


class RedisServer:
    """`redis-server` on a free port; nothing saved unless a restart asks to keep the data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with self._client() as client:
                    if client.ping():
                        return
            except redis.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self, *, keep_data: bool = True) -> None:
        """Shuts the server down; with `keep_data` it writes its data first and loads it again
        on the next start (a planned restart), otherwise it is killed and everything is lost."""
        if self.process is None or self.process.poll() is not None:
            return
        if keep_data:
            try:
                with self._client() as client:
                    client.shutdown(save=True)
            except redis.ConnectionError:
                pass  # the server closes the connection as it goes
        else:
            self.process.kill()
            (self.directory / "dump.rdb").unlink(missing_ok=True)  # a save of an earlier stop
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, *, down_seconds: float = 0, keep_data: bool = True) -> None:
        self.stop(keep_data=keep_data)
        time.sleep(down_seconds)
        self.start()


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb, trust) started and stopped with pg_ctl."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = free_port()
        # initdb and the server refuse to run as root; a root test runs them as `postgres`.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}{log}")

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
        )
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()

    def stop(self) -> None:
        """A fast shutdown: every open connection is cut, as in a restart by an operator."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self, *, down_seconds: float = 0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


@contextmanager
def _own_directory(prefix: str) -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are private to root, and a root test runs
    # PostgreSQL as `postgres`, which must reach its own folder.
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(name="own_redis")
def own_redis_fixture() -> Iterator[RedisServer]:
    """A Redis server of this test's own, stopped (and its folder removed) afterwards."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not on PATH")
    with _own_directory("cai-redis-") as directory:
        server = RedisServer(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop(keep_data=False)


@pytest.fixture(name="own_postgres")
def own_postgres_fixture() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, stopped (and its folder removed) afterwards."""
    if not (PG_BIN / "initdb").exists():
        missing(f"PostgreSQL's initdb is not in {PG_BIN} (set TEST_PG_BIN)")
    with _own_directory("cai-postgres-") as directory:
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        server = PostgresServer(directory)
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
