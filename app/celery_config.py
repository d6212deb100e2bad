"""The Celery configuration both sides load: the web app (which only sends) and the worker.

Queue names, the task each job kind runs and the queue it runs on live here, in the domain, so
the worker reads the same table the web app sends by without importing any web code.
"""

from celery import Celery
from kombu import Exchange, Queue

from app.settings import Settings, get_settings

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"

# Job kinds, the Celery task that runs each and its queue; the web app knows tasks only by name.
TASKS: dict[str, tuple[str, str]] = {
    "import_prompts": ("worker.tasks.run_import_prompts", CPU_QUEUE),
    "generate": ("worker.tasks.run_generation", GPU_QUEUE),
    "build_dataset": ("worker.tasks.run_build_dataset", CPU_QUEUE),
    "train": ("worker.tasks.run_training", GPU_QUEUE),
    "reply_pairs": ("worker.tasks.run_reply_pairs", GPU_QUEUE),
    "label_pairs": ("worker.tasks.run_labelling", GPU_QUEUE),
    "eval_labeller": ("worker.tasks.run_labeller_eval", GPU_QUEUE),
    "eval_judge": ("worker.tasks.run_judge_check", GPU_QUEUE),
    "evaluate": ("worker.tasks.run_evaluation", GPU_QUEUE),
    "rl": ("worker.tasks.run_rl", GPU_QUEUE),
    "constitution_ab": ("worker.tasks.run_constitution_ab", GPU_QUEUE),
}


def declared_queue(name: str) -> Queue:
    """A queue bound to an exchange of its own name with its own name as the routing key."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def celery_config(settings: Settings) -> dict[str, object]:
    """Shared by the web app (which only sends) and the worker (which also receives)."""
    return {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        # A worker child killed mid-task (the OOM killer, SIGKILL) leaves its message to be
        # delivered again rather than acknowledged and dropped; the chunk's claim and the
        # job's conditional start make the second delivery harmless.
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": CPU_QUEUE,
        # Each queue has its own exchange and routing key. A bare Queue("gpu") would be bound
        # by Celery to the default exchange and key ("cpu"), so a message routed to cpu would
        # land in both queues and a GPU task could run on a CPU worker.
        "task_queues": tuple(declared_queue(name) for name in (GPU_QUEUE, CPU_QUEUE)),
        "task_default_exchange": CPU_QUEUE,
        "task_default_routing_key": CPU_QUEUE,
        # Every sender (the web app, `.delay()`, Flower, `celery call`) routes a task to its
        # stage's queue, exchange and key. worker.tasks.run_chunk has no fixed route: the
        # planner sends it to its job's queue by name.
        "task_routes": {
            task: {"queue": queue, "exchange": queue, "routing_key": queue}
            for task, queue in TASKS.values()
        },
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": broker_transport_options(settings.broker_url),
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


def broker_transport_options(broker_url: str) -> dict[str, object]:
    if broker_url.startswith("redis"):
        # A late-acknowledged task is redelivered after this long unacknowledged: longer than
        # any training job, so a slow job is never run twice at once.
        return {"visibility_timeout": 24 * 3600}
    # kombu's SQLAlchemy transport passes its options straight to create_engine.
    return {}


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("cai")
    app.conf.update(celery_config(settings))
    return app


def declare_broker_queues(settings: Settings) -> None:
    """Creates the queues in kombu's SQLite broker once, before a web server and a worker start.

    That transport creates a queue's row on first use; a web server sending its first task while
    a worker starts can both try, and one of them fails on the row's unique name (and a worker
    that fails so exits). Redis needs no rows.
    """
    if not settings.broker_url.startswith("sqla+"):
        return
    celery = make_celery(settings)
    try:
        with celery.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in celery.amqp.queues.values():
                queue.bind(channel).declare()
    finally:
        celery.close()
