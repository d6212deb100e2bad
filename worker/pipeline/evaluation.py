"""One chunk of an evaluation as plain data: the models' answers, the judge's pairwise
comparisons (the labelling engine, `label_pairs`) and its refusal classes. No database.

Each comparison is of two models' answers to one prompt under one principle sampled (seeded by
the run and the comparison, so a resumed run samples the same) from those of the suite's axis
(app.recipe.eval_axes), both orders averaged: P(A) is how likely the judge found it that the
first-named model's answer is the better.
"""

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.recipe.documents import ConstitutionDoc
from app.recipe.eval_axes import Axis
from worker.backends.base import Backend, Conversation, GenerationParams
from worker.pipeline.ai_feedback import LabelConfig, PairInput, label_pairs
from worker.pipeline.critique_revision import clean_output


@dataclass(frozen=True)
class EvalPrompt:
    prompt_id: int
    suite_id: int
    axis: Axis
    messages: Conversation


@dataclass(frozen=True)
class Answer:
    model_id: int
    prompt_id: int
    text: str
    completion_tokens: int = 0
    seconds: float = 0.0
    flags: tuple[str, ...] = ()


@dataclass
class PairJudgement:
    prompt_id: int
    suite_id: int
    axis: Axis
    model_a: int
    model_b: int
    principle_key: str
    prob_a: float | None  # None: skipped
    details: list[dict[str, Any]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def answer_prompts(
    model_id: int,
    prompts: Sequence[EvalPrompt],
    backend: Backend,
    params: GenerationParams,
) -> list[Answer]:
    """The model's answer to each prompt, from one batched `generate` call."""
    if not prompts:
        return []
    started = time.monotonic()
    generations = backend.generate([p.messages for p in prompts], params)
    seconds = (time.monotonic() - started) / len(prompts)
    answers = []
    for prompt, generation in zip(prompts, generations, strict=True):
        text = clean_output(generation.text, params.stop)
        flags = []
        if not text:
            flags.append("empty_output")
        if generation.truncated:
            flags.append("truncated_prompt")
        if generation.finish_reason == "length":
            flags.append("max_tokens")
        answers.append(
            Answer(
                model_id,
                prompt.prompt_id,
                text,
                generation.completion_tokens,
                seconds,
                tuple(flags),
            )
        )
    return answers


def comparison_key(prompt_id: int, model_a: int, model_b: int) -> int:
    """A stable number for one comparison: it seeds the principle's sampling, so the same
    comparison gets the same principle whichever chunk or try it runs in."""
    return zlib.crc32(f"eval:{prompt_id}:{model_a}:{model_b}".encode())


def judge_pairs(
    prompts: Sequence[EvalPrompt],
    model_ids: Sequence[int],
    answers: dict[tuple[int, int], str],
    constitutions: dict[Axis, ConstitutionDoc],
    backend: Backend,
    *,
    seed: int,
) -> list[PairJudgement]:
    """Every pair of models (in the run's order: model A is the one named first) on every
    prompt, judged under its axis's principles; one `label_pairs` call per axis."""
    config = LabelConfig(order_average=True, ensemble=1, seed=seed)
    out: list[PairJudgement] = []
    for axis in Axis:
        planned: list[tuple[EvalPrompt, int, int]] = []
        pairs: list[PairInput] = []
        for prompt in (p for p in prompts if p.axis is axis):
            for i, model_a in enumerate(model_ids):
                for model_b in model_ids[i + 1 :]:
                    planned.append((prompt, model_a, model_b))
                    pairs.append(
                        PairInput(
                            pair_id=comparison_key(prompt.prompt_id, model_a, model_b),
                            conversation=prompt.messages,
                            reply_a=answers[(model_a, prompt.prompt_id)],
                            reply_b=answers[(model_b, prompt.prompt_id)],
                        )
                    )
        if not pairs:
            continue
        judged = label_pairs(pairs, constitutions[axis], backend, config)
        for (prompt, model_a, model_b), comparison in zip(planned, judged, strict=True):
            out.append(
                PairJudgement(
                    prompt_id=prompt.prompt_id,
                    suite_id=prompt.suite_id,
                    axis=axis,
                    model_a=model_a,
                    model_b=model_b,
                    principle_key=comparison.principle_keys[0] if comparison.principle_keys else "",
                    prob_a=comparison.prob_a,
                    details=comparison.per_principle,
                    flags=comparison.flags,
                )
            )
    return out
