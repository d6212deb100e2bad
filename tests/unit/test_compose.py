"""docker-compose.yml cannot run here (no Docker engine); check what can be checked without one."""

import shlex
import tomllib

import yaml

from app.settings import Settings
from tests.conftest import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_of(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_the_team_services_are_all_there() -> None:
    assert {"postgres", "redis", "web", "worker-gpu", "worker-cpu", "flower"} <= set(SERVICES)


def test_each_app_service_names_a_real_entry_point() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cai"] == "app.cli:main"
    from app.cli import build_parser

    for service in ("web", "worker-gpu", "worker-cpu"):
        command = command_of(service)
        assert command[0] == "cai", service
        # argparse exits on an unknown sub-command or option.
        args = build_parser().parse_args(command[1:])
        assert args.command in {"web", "worker"}, service
    flower = command_of("flower")
    assert flower[:3] == ["celery", "-A", "worker.celery_app"] and "flower" in flower
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("flower") for req in extras["team"])
    assert ".[team]" in (REPO_ROOT / "Dockerfile").read_text()
    import worker.celery_app

    assert worker.celery_app.celery_app.main == "cai"


def test_queues_and_gpu_reservation() -> None:
    assert "gpu" in command_of("worker-gpu") and "cpu" not in command_of("worker-gpu")
    assert "cpu" in command_of("worker-cpu")
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_app_services_get_the_environment_they_need() -> None:
    for service in ("web", "worker-gpu", "worker-cpu", "flower"):
        env = SERVICES[service]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), service
        assert env["BROKER_URL"].startswith("redis://"), service
        assert env["ENVIRONMENT"] == "production" and "SECRET_KEY" in env, service
        settings = Settings(
            **{
                k: v
                for k, v in env.items()
                if k in Settings.model_fields and not str(v).startswith("${")
            },
            SECRET_KEY="x" * 40,
            _env_file=None,
        )  # type: ignore[arg-type]
        assert settings.database_url == env["DATABASE_URL"]
    assert {"postgres", "redis"} <= set(SERVICES["web"]["depends_on"])
