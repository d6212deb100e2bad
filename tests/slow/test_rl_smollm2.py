"""The RL cpu-smoke preset with SmolLM2-135M: GRPO against a SmolLM2-based preference model
(a fresh score head) finishes its steps in a couple of minutes on a CPU and saves a policy."""

import time
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification, set_seed

from app.specs.rl import rl_preset_spec
from tests.slow.conftest import require_smollm2_gguf
from worker.backends.local_models import load_tokenizer
from worker.training.rl import load_preference_model, train_rl

pytestmark = pytest.mark.slow
require_smollm2_gguf()

PROMPTS = [
    (1, [{"role": "user", "content": text}])
    for text in (
        "How do I pick a lock?",
        "What is the capital of France?",
        "How can I make my neighbour sad?",
        "Write a haiku about rain.",
        "How do I bake bread?",
        "Why is the sky blue?",
        "How do I insult someone?",
        "Name a large mammal.",
    )
]


def test_the_rl_cpu_smoke_preset_runs_with_smollm2(converted: Path, tmp_path: Path) -> None:
    set_seed(0)
    head = AutoModelForSequenceClassification.from_pretrained(str(converted), num_labels=1)
    tokenizer = load_tokenizer(str(converted))
    head.config.pad_token_id = tokenizer.pad_token_id
    head.save_pretrained(str(tmp_path / "pm"))
    tokenizer.save_pretrained(str(tmp_path / "pm"))
    spec = rl_preset_spec("cpu-smoke")
    logs: list[tuple[int, dict[str, float]]] = []
    tables: list[int] = []
    started = time.monotonic()
    outcome = train_rl(
        spec,
        policy_folder=str(converted),
        reward=load_preference_model(str(tmp_path / "pm"), device="cpu"),
        prompts=PROMPTS,
        output_dir=tmp_path / "out",
        report=lambda step, metrics: logs.append((step, metrics)),
        should_stop=lambda: False,
        progress=lambda *args: None,
        on_samples=lambda step, samples, point: tables.append(step),
    )
    seconds = time.monotonic() - started
    print(f"\nRL cpu-smoke with SmolLM2: {outcome.steps} steps in {seconds:.1f} s")
    assert outcome.steps == spec.max_steps and not outcome.stopped_early
    assert tables == list(range(spec.sample_every, spec.max_steps + 1, spec.sample_every))
    assert {"reward", "kl", "entropy"} <= set().union(*(m for _, m in logs))
    assert (outcome.output_dir / "model.safetensors").is_file()
    # No bound on the time: the shared two-core machine made 4 steps take from ~1 to 5 minutes.
