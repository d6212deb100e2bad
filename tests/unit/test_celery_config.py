from pathlib import Path

from app.celery_config import celery_config
from app.settings import Settings


def test_late_acknowledgement_one_task_at_a_time_and_both_queues() -> None:
    import worker.celery_app as worker_app

    conf = worker_app.celery_app.conf
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert {queue.name for queue in conf.task_queues} == {"gpu", "cpu"}
    import worker.tasks  # noqa: F401

    assert "worker.tasks.run_import_prompts" in worker_app.celery_app.tasks


def test_transport_options_suit_the_broker() -> None:
    sqlite = celery_config(Settings(BROKER_URL="", _env_file=None))  # type: ignore[call-arg]
    # kombu's SQLAlchemy transport hands its options to create_engine, which refuses unknown ones.
    assert sqlite["broker_transport_options"] == {}
    redis = celery_config(Settings(BROKER_URL="redis://127.0.0.1:6379/0", _env_file=None))  # type: ignore[call-arg]
    assert redis["broker_transport_options"] == {"visibility_timeout": 24 * 3600}


def test_every_job_kind_has_a_registered_task_on_its_queue() -> None:
    import worker.tasks
    from app.celery_config import TASKS

    conf = worker.tasks.celery_app.conf
    for task_name, queue_name in TASKS.values():
        assert task_name in worker.tasks.celery_app.tasks
        assert conf.task_routes[task_name] == {
            "queue": queue_name,
            "exchange": queue_name,
            "routing_key": queue_name,
        }
        # Each names a stage that exists (imported here, as the worker does on the first job),
        # or plans a chunked run.
        assert task_name in worker.tasks.PLANNERS or callable(worker.tasks.load_stage(task_name))
    assert set(worker.tasks.STAGES) | worker.tasks.PLANNERS == {task for task, _ in TASKS.values()}
    # A chunk task is sent to its job's queue by name, so it has no fixed route.
    assert "worker.tasks.run_chunk" in worker.tasks.celery_app.tasks
    assert "worker.tasks.run_chunk" not in conf.task_routes


def test_a_worker_lost_mid_task_leaves_its_message_to_be_delivered_again() -> None:
    import worker.celery_app as worker_app

    assert worker_app.celery_app.conf.task_reject_on_worker_lost is True


def test_each_queue_has_its_own_exchange_and_routing_key() -> None:
    import worker.celery_app as worker_app

    # What the worker declares (Celery fills in defaults for a bare Queue: "cpu" for both).
    declared = worker_app.celery_app.amqp.queues
    for name in ("gpu", "cpu"):
        assert (declared[name].exchange.name, declared[name].routing_key) == (name, name)


def test_the_sqlite_broker_gets_its_queues_before_anything_starts(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from app.celery_config import declare_broker_queues

    broker = tmp_path / "broker.sqlite"
    declare_broker_queues(Settings(BROKER_URL=f"sqla+sqlite:///{broker}", _env_file=None))  # type: ignore[call-arg]
    engine = create_engine(f"sqlite:///{broker}")
    with engine.connect() as connection:
        names = set(connection.execute(text("SELECT name FROM kombu_queue")).scalars())
    engine.dispose()
    assert names == {"gpu", "cpu"}
    # Twice is harmless: `cai init` runs at every start.
    declare_broker_queues(Settings(BROKER_URL=f"sqla+sqlite:///{broker}", _env_file=None))  # type: ignore[call-arg]
