"""GPU tasks reach only GPU workers and CPU tasks only CPU workers, on Redis, however they are
sent: by the web app's name-and-queue, by `.delay()`, or to an exchange and routing key."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from app.celery_config import CPU_QUEUE, GPU_QUEUE, TASKS, make_celery
from app.cli import worker_command
from app.settings import Settings
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.services, pytest.mark.worker]

GPU_TASK = TASKS["generate"][0]
CPU_TASK = TASKS["import_prompts"][0]


@pytest.fixture
def celery(redis_url: str) -> Iterator[Celery]:
    app = make_celery(Settings(BROKER_URL=redis_url, _env_file=None))  # type: ignore[call-arg]
    yield app
    app.close()


def queue_lengths(redis_url: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return {name: int(client.llen(name)) for name in (GPU_QUEUE, CPU_QUEUE)}
    finally:
        client.close()


def test_each_message_lands_in_its_own_queue_only(celery: Celery, redis_url: str) -> None:
    # Declared as the workers declare them, so every binding is in place.
    with celery.connection_for_write() as connection:
        for queue in celery.amqp.queues.values():
            queue.bind(connection.default_channel).declare()
    celery.send_task(GPU_TASK, args=[1], queue=GPU_QUEUE)  # as the web app sends
    celery.send_task(GPU_TASK, args=[2])  # by name alone: the routes decide
    celery.send_task(CPU_TASK, args=[3], exchange=CPU_QUEUE, routing_key=CPU_QUEUE)
    celery.send_task(GPU_TASK, args=[4], exchange=GPU_QUEUE, routing_key=GPU_QUEUE)
    assert queue_lengths(redis_url) == {GPU_QUEUE: 3, CPU_QUEUE: 1}


def start_worker(queues: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        worker_command(queues, 1, "solo", f"{queues}-{uuid.uuid4().hex[:6]}@%h"),
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_for_line(log: Path, text: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"no {text!r} in {log.name}:\n" + log.read_text()
        time.sleep(0.3)


def test_a_gpu_worker_and_a_cpu_worker_each_receive_only_their_own_tasks(
    tmp_path: Path, redis_url: str
) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cai.sqlite'}",
        "BROKER_URL": redis_url,
        "SECRET_KEY": "queues-" + uuid.uuid4().hex,
        "PYTHONUNBUFFERED": "1",
    }
    logs = {name: tmp_path / f"{name}.log" for name in (GPU_QUEUE, CPU_QUEUE)}
    workers = {name: start_worker(name, env, logs[name]) for name in (GPU_QUEUE, CPU_QUEUE)}
    try:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "init"], env=env, cwd=REPO_ROOT, check=True
        )
        for log in logs.values():
            wait_for_line(log, "ready.")
        # `.delay()` on the worker's own task objects, as a person at a Python prompt would.
        delay = (
            "import worker.tasks as t\n"
            "for n in range(3):\n"
            f"    t.celery_app.tasks[{GPU_TASK!r}].delay(1000 + n)\n"
            f"    t.celery_app.tasks[{CPU_TASK!r}].delay(2000 + n)\n"
            # As `celery call --exchange cpu --routing-key cpu` sends it.
            f"t.celery_app.send_task({CPU_TASK!r}, args=[3000],"
            " exchange='cpu', routing_key='cpu')\n"
            # Sent last: once the GPU worker has it, it has had everything in its queue.
            f"t.celery_app.tasks[{GPU_TASK!r}].delay(1999)\n"
        )
        subprocess.run([sys.executable, "-c", delay], env=env, cwd=REPO_ROOT, check=True)
        # The tasks name job ids that do not exist: each is received, then fails at once.
        for number in range(3):
            wait_for_line(logs[GPU_QUEUE], f"job {1000 + number} does not exist")
            wait_for_line(logs[CPU_QUEUE], f"job {2000 + number} does not exist")
        wait_for_line(logs[CPU_QUEUE], "job 3000 does not exist")
        wait_for_line(logs[GPU_QUEUE], "job 1999 does not exist")
        assert "job 3000" not in logs[GPU_QUEUE].read_text()
        gpu_log, cpu_log = (logs[name].read_text() for name in (GPU_QUEUE, CPU_QUEUE))
        assert f"{GPU_TASK}[" in gpu_log and f"{CPU_TASK}[" not in gpu_log
        assert f"{CPU_TASK}[" in cpu_log and f"{GPU_TASK}[" not in cpu_log
    finally:
        for process in workers.values():
            process.terminate()
        for process in workers.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
