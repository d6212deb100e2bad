"""docker-compose.yml cannot run here (no Docker engine); check what can be checked without one."""

import argparse
import re
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

    cai_services = {name for name in SERVICES if command_of_or_none(name)[:1] == ["cai"]}
    assert {"web", "worker-gpu", "worker-cpu"} <= cai_services
    for service in cai_services:
        # argparse exits on an unknown sub-command or option.
        args = build_parser().parse_args(command_of(service)[1:])
        assert args.command in {"web", "worker"}, service
    others = {name for name in SERVICES if command_of_or_none(name)} - cai_services
    assert others == {"flower", "vllm"}, "every other command is a `cai` one"
    flower = command_of("flower")
    assert flower[:3] == ["celery", "-A", "worker.celery_app"] and "flower" in flower
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("flower") for req in extras["team"])
    assert ".[team]" in (REPO_ROOT / "Dockerfile").read_text()
    import worker.celery_app

    assert worker.celery_app.celery_app.main == "cai"


def command_of_or_none(service: str) -> list[str]:
    return command_of(service) if "command" in SERVICES[service] else []


def worker_args(service: str) -> argparse.Namespace:
    from app.cli import build_parser

    return build_parser().parse_args(command_of(service)[1:])


def test_queues_and_gpu_reservation() -> None:
    assert worker_args("worker-gpu").queues == "gpu"
    assert worker_args("worker-cpu").queues == "cpu"
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    # One GPU per replica: `count: all` would give every replica every device.
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_gpu_workers_scale_with_compose_scale() -> None:
    """`docker compose up --scale worker-gpu=N` refuses a service with a fixed container name
    and fails on a fixed host port; N workers with one Celery name would be one worker to
    Flower and to the remote-control commands."""
    gpu = SERVICES["worker-gpu"]
    assert "container_name" not in gpu and "ports" not in gpu and "hostname" not in gpu
    assert "%h" in worker_args("worker-gpu").hostname, "each replica names itself"
    assert worker_args("worker-gpu").concurrency == 1, "one task at a time per GPU"
    readme = (REPO_ROOT / "README.md").read_text()
    assert "docker compose up --scale worker-gpu=" in readme


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


def compose_default(value: str) -> str | None:
    """What `${NAME:-default}` gives when NAME is unset; None for `${NAME:?error}` (required)."""
    found = re.fullmatch(r"\$\{\w+(?::-(?P<default>[^}]*)|:\?[^}]*)\}", value)
    assert found, value
    return found.group("default")


def test_production_cookies_are_secure_unless_the_operator_says_otherwise() -> None:
    env = SERVICES["web"]["environment"]
    default = (
        compose_default(env["SESSION_COOKIE_SECURE"]) if "SESSION_COOKIE_SECURE" in env else ""
    )
    settings = Settings(
        ENVIRONMENT=env["ENVIRONMENT"],
        SECRET_KEY="x" * 40,
        SESSION_COOKIE_SECURE=default,
        _env_file=None,
    )  # type: ignore[arg-type]
    assert settings.session_cookie_secure is True


def test_flower_needs_a_password_and_listens_on_loopback_only() -> None:
    flower = SERVICES["flower"]
    # Flower reads FLOWER_<OPTION> variables; a required one stops compose when it is unset.
    assert compose_default(flower["environment"]["FLOWER_BASIC_AUTH"]) is None
    assert not any("basic" in part for part in command_of("flower")), "no password in argv"
    assert flower["ports"] and all(str(p).startswith("127.0.0.1:") for p in flower["ports"])


def flags(service: str) -> dict[str, str]:
    """`--name=value` and bare `--name` flags of a command, as {name: value or ""}."""
    found = {}
    for part in command_of(service):
        name, _, value = part.partition("=")
        found[name] = value
    return found


def test_vllm_is_an_optional_profile_with_prefix_caching_and_logprobs() -> None:
    vllm = SERVICES["vllm"]
    assert vllm["profiles"] == ["vllm"], "started only with --profile vllm"
    assert all("profiles" not in SERVICES[name] for name in SERVICES if name != "vllm")
    assert vllm["image"].startswith("vllm/vllm-openai:")
    given = flags("vllm")
    assert "--enable-prefix-caching" in given
    # Scoring reads top_logprobs lists of 20 (worker.backends.server_probe.TOP_LOGPROBS).
    from worker.backends.server_probe import TOP_LOGPROBS

    assert int(given["--max-logprobs"]) >= TOP_LOGPROBS
    assert given["--port"] == "8001" and "127.0.0.1:8001:8001" in vllm["ports"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_vllm_serves_the_mounted_folder_the_workers_see_at_the_same_path() -> None:
    model = flags("vllm")["--model"]
    [mount] = [v for v in SERVICES["vllm"]["volumes"] if v.rsplit(":", 2)[1] == "/models"]
    assert model.startswith("/models/") and mount.endswith(":ro")
    for service in ("web", "worker-gpu", "worker-cpu"):
        # The same folder under the same path: scoring loads the model id's tokenizer there.
        assert mount in SERVICES[service]["volumes"], service


def test_the_readme_registers_vllm_on_the_allow_list() -> None:
    from app.server_access import base_url_allowed

    readme = (REPO_ROOT / "README.md").read_text()
    assert "--profile vllm" in readme
    url = "http://vllm:8001/v1"
    assert f"OPENAI_BASE_URLS={url}" in readme
    env = SERVICES["worker-gpu"]["environment"]
    assert compose_default(env["OPENAI_BASE_URLS"]) == ""
    allowed = Settings(OPENAI_BASE_URLS=url, _env_file=None)  # type: ignore[call-arg]
    assert base_url_allowed(url, allowed)
