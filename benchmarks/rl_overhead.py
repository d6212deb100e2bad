"""RL overhead of the app (issue 16): an RL job through a real worker against the same TRL call.

Both sides optimise the bundled SmolLM2-135M-Instruct (dequantised once into `var/models`, fp32
on the CPU) with GRPO (or RLOO) against the same preference model, on the same prompts, for the
same steps with the same seed and settings (the `cpu-smoke` RL preset):

- the preference model is SmolLM2-135M with a fresh one-output score head
  (`AutoModelForSequenceClassification`, num_labels 1, seeded 0), saved once into
  `var/bench/rl_overhead/preference-model` and registered in the app as a local `reward`
  model, as a reward-model training job registers its result. Its scores are arbitrary (it
  learnt nothing), which is all a timing needs: both sides score with the same weights;
- the prompts are the built-in example set `cai init` loads, drawn in the order the job
  draws them (`mix_prompts` with the job's seed: steps x prompts per step of them).

1. direct: what a user writes by hand: `AutoModelForSequenceClassification` and a reward
   function scoring the chat-templated prompt and completion with it, `AutoModelForCausalLM`/
   `AutoTokenizer.from_pretrained` for the policy, a `datasets.Dataset` of the prompts, a
   `GRPOConfig`/`RLOOConfig` written out (checked equal, field by field, to the app's own
   `rl_config`), `GRPOTrainer`/`RLOOTrainer(...).train()` and `save_model`; timed from before
   loading the preference model to after saving;
2. app: `POST /rl` to the real app (`cai init`, uvicorn, a celery worker with the solo pool,
   SQLite for both the database and the broker), started once before the repeats and warmed by
   an untimed job; timed from the POST until the job row reads succeeded (polled every 0.1 s).

The sides alternate and are warmed as in benchmarks/training_overhead.py, whose helpers (CPU
accounting, the model, the tables) this reuses. Goal: app / direct (medians) at most 1.1.

    .venv/bin/python -m benchmarks.rl_overhead --repeats 3
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from datasets import Dataset
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    set_seed,
)
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from app.db import engine_for
from app.forms import spec_form_values
from app.models import Job, JobMetric, JobStatus, LanguageModel, Prompt, PromptSet
from app.recipe.prompt_mix import mix_prompts
from app.recipe.rl_presets import RL_PRESETS
from app.specs.rl import Algorithm, RLHyperparameters, RLJobSpec, rl_preset_spec
from benchmarks.config_check import config_differences
from benchmarks.training_overhead import (
    REPO,
    Measure,
    accounted,
    machine,
    parts_table,
    prepare_model,
    table,
    utc_seconds,
    wait_until_ended,
)
from tests.live import LiveApp, live_app
from worker.backends.local_models import load_tokenizer
from worker.training.rl import rl_config

BENCH = REPO / "var" / "bench" / "rl_overhead"
OUT = REPO / "var" / "benchmarks" / "rl_overhead_{algorithm}.json"
Messages = list[dict[str, str]]


# --- the preference model and the prompts ------------------------------------------------------


def prepare_preference_model(policy_folder: str, folder: Path) -> str:
    """SmolLM2 with a fresh score head, seeded: the reward model both sides score with."""
    if not (folder / "config.json").is_file():
        set_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(policy_folder, num_labels=1)
        tokenizer = load_tokenizer(policy_folder)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
    return str(folder)


def built_in_prompts(engine: Engine) -> tuple[int, list[Messages]]:
    """The example set `cai init` loads, as the job reads it: its id and its prompts in order."""
    with Session(engine) as session:
        prompt_set = session.exec(select(PromptSet).where(PromptSet.source == "built-in")).one()
        assert prompt_set.id is not None
        rows = session.exec(
            select(Prompt)
            .where(Prompt.prompt_set_id == prompt_set.id)
            .order_by(col(Prompt.position))
        ).all()
        return prompt_set.id, [
            [*(p.context or []), {"role": "user", "content": p.text}] for p in rows
        ]


def drawn_prompts(set_id: int, prompts: list[Messages], spec: RLHyperparameters) -> list[Messages]:
    """The prompts the job trains on, in its order (worker/rl_job.py draws them so)."""
    count = spec.max_steps * max(spec.prompts_per_step, 1)
    return [
        messages for _, messages in mix_prompts({set_id: prompts}, {set_id: 1.0}, count, spec.seed)
    ]


# --- direct: the TRL call by hand --------------------------------------------------------------


def hand_written_config(spec: RLHyperparameters, output_dir: Path) -> GRPOConfig | RLOOConfig:
    """The config a user writes for these settings; checked equal to the app's below."""
    settings: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": spec.learning_rate,
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "num_generations": spec.num_generations,
        "max_completion_length": spec.max_completion_length,
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "beta": spec.beta,
        "seed": spec.seed,
        "logging_steps": spec.logging_steps,
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "activation_checkpointing": False,
        "save_strategy": "steps" if spec.save_steps > 0 else "no",
        "save_steps": spec.save_steps if spec.save_steps > 0 else 500,
        "save_total_limit": 2,
        "report_to": [],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "logging_nan_inf_filter": False,
        "remove_unused_columns": False,
    }
    if spec.algorithm is Algorithm.GRPO:
        return GRPOConfig(**settings)
    return RLOOConfig(**settings)


def check_same_settings(spec: RLHyperparameters, output_dir: Path) -> None:
    mine = hand_written_config(spec, output_dir)
    apps = rl_config(spec, output_dir, device="cpu")
    if type(mine) is not type(apps):
        sys.exit(f"the hand-written config is a {type(mine).__name__}, the app's a {type(apps)}")
    differ = config_differences(mine.to_dict(), apps.to_dict())
    if differ:
        sys.exit(f"the hand-written config differs from the app's in: {', '.join(differ)}")


def preference_reward(folder: str) -> Callable[..., list[float]]:
    """A TRL reward function: the preference model's score of the chat-templated conversation."""
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, dtype=torch.float32
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model.config.pad_token_id = tokenizer.pad_token_id

    @torch.inference_mode()
    def preference(
        prompts: Sequence[Messages], completions: Sequence[Messages], **kwargs: Any
    ) -> list[float]:
        texts = [
            tokenizer.apply_chat_template([*p, *c], tokenize=False)
            for p, c in zip(prompts, completions, strict=True)
        ]
        inputs = tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False
        )
        return [float(x) for x in model(**inputs).logits[:, 0].tolist()]

    return preference


def logged(history: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    return [float(entry[name]) for entry in history if name in entry]


def direct(
    spec: RLHyperparameters,
    policy_folder: str,
    reward_folder: str,
    prompts: list[Messages],
    out: Path,
) -> tuple[Measure, list[float]]:
    parts: dict[str, float] = {}
    with accounted(os.getpid(), []) as used:
        mark = time.perf_counter()
        reward = preference_reward(reward_folder)
        model = AutoModelForCausalLM.from_pretrained(policy_folder, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(policy_folder)
        train = Dataset.from_list([{"prompt": messages} for messages in prompts])
        parts["load"], mark = time.perf_counter() - mark, time.perf_counter()
        config = hand_written_config(spec, out / "checkpoints")
        trainer_type = GRPOTrainer if isinstance(config, GRPOConfig) else RLOOTrainer
        # With beta > 0 the trainer loads its reference model from the policy's folder itself.
        trainer = trainer_type(
            model=model,
            reward_funcs=reward,  # type: ignore[arg-type]  # TRL types list[float | None]
            args=config,  # type: ignore[arg-type]
            train_dataset=train,
            processing_class=tokenizer,
        )
        parts["trainer"], mark = time.perf_counter() - mark, time.perf_counter()
        output = trainer.train()
        parts["train"], mark = time.perf_counter() - mark, time.perf_counter()
        trainer.save_model(str(out))
        parts["save"] = time.perf_counter() - mark
    parts["train_runtime"] = float(output.metrics["train_runtime"])  # Trainer's own loop time
    parts["outside the loop"] = used["seconds"] - parts["train_runtime"]
    assert trainer.state.global_step == spec.max_steps, trainer.state.global_step
    rewards = logged(trainer.state.log_history, "reward")
    del trainer, model
    shutil.rmtree(out, ignore_errors=True)
    return Measure(used["seconds"], used["cpu"], used["others"], parts), rewards


# --- through the app ---------------------------------------------------------------------------


def with_steps(spec: RLHyperparameters, steps: int) -> RLHyperparameters:
    return RLHyperparameters.model_validate({**spec.to_parameters(), "max_steps": steps})


class AppSide:
    """The running app, the registered policy and preference model, and one RL job per call."""

    def __init__(self, app: LiveApp, policy_folder: str, reward_folder: str) -> None:
        self.app = app
        self.client = app.signed_in_client()
        self.engine: Engine = engine_for(app.env["DATABASE_URL"])
        self.count = 0
        response = self.client.post(
            "/models",
            data={
                "name": "smollm2-bench",
                "backend": "transformers",
                "path": policy_folder,
                "csrf_token": app.csrf(self.client),
            },
        )
        assert response.status_code == 303, response.text
        with Session(self.engine) as session:
            policy = session.exec(
                select(LanguageModel).where(LanguageModel.name == "smollm2-bench")
            ).one()
            # As a reward-model training job registers its result (the form has no reward kind).
            reward = LanguageModel(
                name="smollm2-fresh-head-pm",
                backend="transformers",
                path=reward_folder,
                kind="reward",
                description="benchmarks/rl_overhead.py: SmolLM2 with a fresh score head",
            )
            session.add(reward)
            session.commit()
            self.policy_id, self.reward_id = policy.id, reward.id
        self.set_id, self.prompts = built_in_prompts(self.engine)
        self.pids = [p.pid for p in app.processes.values()] + [os.getpid()]
        self.worker_pid = app.processes["worker"].pid

    def metric(self, job_id: int, name: str) -> list[float]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(JobMetric.value)
                    .where(JobMetric.job_id == job_id, JobMetric.name == name)
                    .order_by(col(JobMetric.step), col(JobMetric.id))
                ).all()
            )

    def train(self, spec: RLHyperparameters, preset: str) -> tuple[Measure, list[float]]:
        self.count += 1
        form = {
            "policy_model_id": str(self.policy_id),
            "reward_model_id": str(self.reward_id),
            f"weight_{self.set_id}": "1",
            **spec_form_values(spec),  # the algorithm and every setting, as the form sends them
            "preset": preset,
            "output_name": f"bench-rl-{spec.algorithm.value}-{self.count}",
            "csrf_token": self.app.csrf(self.client),
        }
        with accounted(self.worker_pid, [p for p in self.pids if p != self.worker_pid]) as used:
            posted_at = time.time()
            response = self.client.post("/rl", data=form)
            assert response.status_code == 303, response.text
            answered_at = time.time()
            job_id = int(response.headers["location"].rsplit("/", 1)[1])
            wait_until_ended(self.engine, job_id)
            seen_at = time.time()
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
        if job.status != JobStatus.SUCCEEDED:
            sys.exit(f"job {job_id} {job.status}: {job.error}\n{self.app.log_tail()}")
        if RLJobSpec.from_parameters(job.parameters).hyperparameters() != spec:
            sys.exit(f"job {job_id} ran another spec: {job.parameters}")
        assert job.result["steps"] == spec.max_steps, job.result
        assert job.started_at is not None and job.finished_at is not None
        started, finished = utc_seconds(job.started_at), utc_seconds(job.finished_at)
        (runtime,) = self.metric(job_id, "train_runtime")
        parts = {
            "post": answered_at - posted_at,
            "queue": started - answered_at,  # the broker's 1 s poll, the worker picking it up
            "job": finished - started,
            "train_model": float(job.result["seconds"]),  # train_rl, rounded to 0.1 s by the job
            "tail": seen_at - finished,  # until this poll saw it
            "train_runtime": runtime,  # Trainer's own loop time, as the job stored it
        }
        parts["outside the loop"] = used["seconds"] - runtime
        shutil.rmtree(job.result["output_dir"], ignore_errors=True)
        measure = Measure(used["seconds"], used["cpu"], used["others"], parts)
        return measure, self.metric(job_id, "reward")


# --- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--algorithm", choices=[a.value for a in Algorithm], default="grpo")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    parser.add_argument("--preset", default="cpu-smoke", choices=sorted(RL_PRESETS))
    parser.add_argument(
        "--warmup-steps", type=int, default=1, help="an untimed run of each side first; 0: none"
    )
    args = parser.parse_args()
    # No checkpoints on either side: the app skips the one at the last step (NoFinalCheckpoint,
    # it saves the model itself) and a user's plain Trainer would write it, optimiser and all,
    # which is not work the comparison is about. With save_steps 0 neither writes one.
    spec = RLHyperparameters.model_validate(
        {
            **rl_preset_spec(args.preset).to_parameters(),
            "algorithm": args.algorithm,
            "max_steps": args.steps,
            "save_steps": 0,
        }
    )

    shutil.rmtree(BENCH / "app", ignore_errors=True)
    shutil.rmtree(BENCH / "direct", ignore_errors=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    policy_folder = prepare_model()
    reward_folder = prepare_preference_model(policy_folder, BENCH / "preference-model")
    check_same_settings(spec, BENCH / "direct" / "checkpoints")
    print(f"prepared in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    before = machine()
    runs: dict[str, list[Measure]] = {"direct": [], "app": []}
    rewards: dict[str, list[list[float]]] = {"direct": [], "app": []}
    database = f"sqlite:///{BENCH / 'app' / 'cai.sqlite'}"
    broker = f"sqla+sqlite:///{BENCH / 'app' / 'broker.sqlite'}"
    # The default heartbeat, not live_app's 1 s for tests: the worker writes it every 10 s.
    with live_app(
        BENCH / "app", database_url=database, broker_url=broker, JOB_HEARTBEAT_SECONDS="10"
    ) as app:
        side = AppSide(app, policy_folder, reward_folder)

        def run_direct(s: RLHyperparameters) -> tuple[Measure, list[float]]:
            prompts = drawn_prompts(side.set_id, side.prompts, s)
            return direct(s, policy_folder, reward_folder, prompts, BENCH / "direct")

        sides: dict[str, Callable[[RLHyperparameters], tuple[Measure, list[float]]]] = {
            "direct": run_direct,
            "app": lambda s: side.train(s, args.preset),
        }
        if args.warmup_steps:
            # The worker's first job imports torch, transformers and TRL; the page cache.
            warm = with_steps(spec, args.warmup_steps)
            for name, run in sides.items():
                print(f"warm-up {name}: {run(warm)[0].seconds:.1f} s", file=sys.stderr)
        for repeat in range(args.repeats):  # alternated, so drift in the load hits both
            for name, run in sides.items():
                measure, reward = run(spec)
                runs[name].append(measure)
                rewards[name].append(reward)
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
        "machine": {**before, "load_average_1min_after": os.getloadavg()[0]},
        "app_over_direct": app_s / direct_s,
        "runs": {name: [asdict(m) for m in v] for name, v in runs.items()},
        "rewards_per_step": rewards,
        "total_seconds": time.perf_counter() - started,
    }
    out = Path(str(OUT).format(algorithm=spec.algorithm.value))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nmean reward per step: {json.dumps(rewards)}"
        f"\napp / direct (medians) = {app_s / direct_s:.3f} (goal <= 1.1)"
        f"\nmachine: {json.dumps(result['machine'])}\nwritten to {out.relative_to(REPO)}"
        f"\nwhole run {result['total_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
