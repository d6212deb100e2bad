"""Labels through llama-cpp-python's server against local transformers (issue 14), one run.

The same HH-RLHF pairs, the same questions (`label_pairs`, both orders, one principle per pair,
seed 0) and the same bundled GGUF, labelled three ways:

1. transformers: `TransformersBackend` in this process (the GGUF dequantised);
2. server, as probed: `OpenAIBackend` on `python -m llama_cpp.server --logits_all true`; the
   probe finds llama-cpp-python 0.3.36's one-position shift and scores from the previous
   entries' `top_logprobs`;
3. server, next token: the same server scored token by token from the next token's
   `top_logprobs` (the way llama.cpp's own server and Ollama must be used);
4. server, unchecked: the server's echoed entries summed as they are (what the backend did
   before the probe), to show what the probe prevents.

Agreement is the share of pairs whose label (A, B or tie) equals transformers'; |dP| the mean
absolute difference of P(A). The server runs with 2 threads on the same 2 cores, after the
transformers pass (never at the same time).

    .venv/bin/python -m benchmarks.llama_server_labels --pairs 32
    # only the next-token way (the echo ways cost about 20 s a question on 2 cores: the
    # server computes and sends every prompt position's top log-probabilities)
    .venv/bin/python -m benchmarks.llama_server_labels --pairs 32 --ways next-token
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from app.constitutions import default_document
from benchmarks.generation_throughput import machine
from benchmarks.labelling_speed import load_pairs
from tests.llama_server import llama_server_missing, running_llama_server
from worker.backends.base import Backend
from worker.backends.local_models import default_gguf_path
from worker.backends.openai_backend import OpenAIBackend
from worker.backends.server_probe import ScoringMode
from worker.backends.server_scoring import ServerScorer
from worker.backends.transformers_backend import TransformersBackend
from worker.pipeline.ai_feedback import Comparison, LabelConfig, PairInput, label_pairs

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "var" / "benchmarks" / "llama_server_labels.json"
CHUNK = 8
WAYS = {
    "probed": "server, as probed",
    "next-token": "server, next token",
    "echo": "server, unchecked echo",
}


def labelled(pairs: list[PairInput], backend: Backend) -> tuple[list[Comparison], float]:
    constitution = default_document()
    config = LabelConfig(order_average=True, ensemble=1, seed=0)
    started = time.perf_counter()
    out: list[Comparison] = []
    for i in range(0, len(pairs), CHUNK):
        out += label_pairs(pairs[i : i + CHUNK], constitution, backend, config)
    return out, time.perf_counter() - started


# A pair the reference decides: its P(A) at least this far from 0.5. A 135M judge's
# order-averaged P(A) sits within hundredths of 0.5 on most pairs, where a difference of 0.01
# flips the label; agreement on the decided pairs is the part that says whether two backends
# judge alike.
DECIDED_MARGIN = 0.05


def compare(ours: list[Comparison], reference: list[Comparison]) -> dict[str, float]:
    same = [a.label == b.label for a, b in zip(ours, reference, strict=True)]
    decided = [
        a.label == b.label
        for a, b in zip(ours, reference, strict=True)
        if b.prob_a is not None and abs(b.prob_a - 0.5) >= DECIDED_MARGIN
    ]
    gaps = [
        abs(a.prob_a - b.prob_a)
        for a, b in zip(ours, reference, strict=True)
        if a.prob_a is not None and b.prob_a is not None
    ]
    return {
        "agreement": sum(same) / len(same),
        "decided": len(decided),
        "agreement_decided": sum(decided) / len(decided) if decided else float("nan"),
        "mean_abs_dp": statistics.fmean(gaps) if gaps else float("nan"),
        "skipped": sum(c.label == "skipped" for c in ours),
    }


def decided_cell(result: dict[str, float]) -> str:
    """Agreement on the decided pairs, with how many there are: "83% of 12"."""
    if not result["decided"]:
        return "none decided"
    return f"{result['agreement_decided']:.0%} of {int(result['decided'])}"


class ForcedMode(OpenAIBackend):
    """The same backend with its scoring mode fixed instead of probed."""

    def __init__(self, base_url: str, model: str, mode: ScoringMode) -> None:
        super().__init__(base_url, model, timeout=600)
        self._forced = mode

    def probe_scoring(self):  # type: ignore[no-untyped-def]
        scorer, render = super().probe_scoring()
        if scorer.mode is not self._forced:
            self._scorer = ServerScorer(
                scorer._post, scorer.url, scorer.model, self._forced, end_ids=scorer.end_ids
            )
        return self._scorer, render


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument(
        "--ways",
        default=",".join(WAYS),
        help=f"which server ways to run, comma-separated, of {', '.join(WAYS)}",
    )
    args = parser.parse_args()
    chosen = [w.strip() for w in args.ways.split(",") if w.strip()]
    unknown = sorted(set(chosen) - set(WAYS))
    if unknown:
        sys.exit(f"--ways: unknown {', '.join(unknown)}; choose from {', '.join(WAYS)}")
    reason = llama_server_missing()
    gguf = default_gguf_path()
    if reason or gguf is None:
        sys.exit(reason or "no GGUF")
    pairs = [p.pair for p in load_pairs(args.pairs)]
    before = machine()
    local = TransformersBackend(str(gguf), cache_dir=REPO / "var" / "models")
    reference, seconds = labelled(pairs, local)
    local.close()
    results: dict[str, dict[str, float]] = {
        "transformers": {"seconds": seconds, **compare(reference, reference)}
    }
    print(f"transformers: {seconds:.1f} s", file=sys.stderr)
    log = REPO / "var" / "benchmarks" / "llama_server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    probe_json: dict[str, object] = {}
    with running_llama_server(log, n_ctx=4096) as server:
        made = {
            "probed": lambda: OpenAIBackend(server.base_url, server.model, timeout=600),
            "next-token": lambda: ForcedMode(server.base_url, server.model, ScoringMode.NEXT_TOKEN),
            "echo": lambda: ForcedMode(server.base_url, server.model, ScoringMode.ECHO),
        }
        for way in chosen:
            name, backend = WAYS[way], made[way]()
            ours, seconds = labelled(pairs, backend)
            scorer, _ = backend.probe_scoring()
            results[name] = {
                "seconds": seconds,
                **compare(ours, reference),
                "requests": scorer.requests,
                "bounded": scorer.bounded,
                "asked_again": scorer.asked_again,
            }
            if backend.probe is not None and not probe_json:
                probe_json = backend.probe.to_json()
            print(f"{name}: {seconds:.1f} s", file=sys.stderr)
            backend.close()
    lines = [
        f"| labeller ({len(pairs)} pairs, both orders) | wall s | pairs/s | agreement with "
        f"transformers | on the pairs it decides (P(A) at least {DECIDED_MARGIN} from 0.5) "
        "| mean abs dP(A) | requests | asked again, end banned | bounded tokens |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {len(pairs) / r['seconds']:.2f} "
            f"| {r['agreement']:.0%} | {decided_cell(r)} | {r['mean_abs_dp']:.3f} "
            f"| {r.get('requests', '-')} | {r.get('asked_again', '-')} "
            f"| {r.get('bounded', '-')} |"
        )
    print("\n".join(lines))
    print(f"probe: {probe_json}")
    result = {
        "args": vars(args),
        "machine": {**before, "load_average_1min_after": os.getloadavg()[0]},
        "probe": probe_json,
        "results": results,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {json.dumps(result['machine'])}\nwritten to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
