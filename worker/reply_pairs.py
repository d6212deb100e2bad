"""The reply-pair stage's parts: a policy model writes two sampled replies per prompt of a chunk.

Resumable like generation: prompts that already have a pair for this job are skipped, and the
database holds at most one pair per job and prompt.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from app.models import LanguageModel, Prompt, ReplyPair
from app.prompt_sets import prompt_messages
from app.specs.feedback import ReplyPairSpec
from worker.backends.base import Backend, GenerationParams
from worker.pipeline.critique_revision import PromptInput, clean_output


@dataclass(frozen=True)
class PairConfig:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()


@dataclass
class PairResult:
    prompt_id: int
    reply_a: str
    reply_b: str
    tokens_a: int
    tokens_b: int
    seconds: float
    flags: list[str] = field(default_factory=list)


def sample_pairs(
    prompts: list[PromptInput], backend: Backend, config: PairConfig, *, chunk_index: int = 0
) -> list[PairResult]:
    """Two replies per prompt from one batched call: the batch holds every prompt twice."""
    if not prompts:
        return []
    conversations = [p.messages for p in prompts] * 2
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        repetition_penalty=config.repetition_penalty,
        stop=config.stop,
        # One seed per chunk, so a resumed job draws its remaining chunks as the first try would.
        seed=config.seed * 1_000_003 + chunk_index,
    )
    started = time.monotonic()
    replies = backend.generate(conversations, params)
    seconds = (time.monotonic() - started) / len(prompts)
    results = []
    for index, prompt in enumerate(prompts):
        first, second = replies[index], replies[index + len(prompts)]
        reply_a = clean_output(first.text, config.stop)
        reply_b = clean_output(second.text, config.stop)
        flags = []
        if not reply_a or not reply_b:
            flags.append("empty_output")
        if reply_a == reply_b:
            flags.append("identical")
        if first.truncated:
            flags.append("truncated_prompt")
        results.append(
            PairResult(
                prompt_id=prompt.prompt_id,
                reply_a=reply_a,
                reply_b=reply_b,
                tokens_a=first.completion_tokens,
                tokens_b=second.completion_tokens,
                seconds=seconds,
                flags=flags,
            )
        )
    return results


def pair_config(spec: ReplyPairSpec) -> PairConfig:
    return PairConfig(
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        top_k=spec.top_k,
        repetition_penalty=spec.repetition_penalty,
        seed=spec.seed,
        stop=spec.stop,
    )


@dataclass
class PairInputs:
    model_id: int
    prompts: list[PromptInput]
    config: PairConfig


def load_inputs(session: Session, spec: ReplyPairSpec, prompt_ids: Sequence[int]) -> PairInputs:
    """One chunk's prompts, in the chunk's order."""
    if session.get(LanguageModel, spec.model_id) is None:
        raise LookupError(f"model {spec.model_id} does not exist")
    by_id = {
        row.id: row for row in session.exec(select(Prompt).where(col(Prompt.id).in_(prompt_ids)))
    }
    return PairInputs(
        model_id=spec.model_id,
        prompts=[
            PromptInput(prompt_id=row.id or 0, messages=prompt_messages(row.text, row.context))
            for row in (by_id[i] for i in prompt_ids if i in by_id)
        ],
        config=pair_config(spec),
    )


def store_pairs(session: Session, job_id: int, model_id: int, results: list[PairResult]) -> int:
    """Adds a chunk's pairs to the session (the caller commits); stored prompts are skipped."""
    stored = set(
        session.exec(
            select(ReplyPair.prompt_id).where(
                ReplyPair.job_id == job_id,
                col(ReplyPair.prompt_id).in_([r.prompt_id for r in results]),
            )
        )
    )
    fresh = [r for r in results if r.prompt_id not in stored]
    session.add_all(
        ReplyPair(
            job_id=job_id,
            prompt_id=r.prompt_id,
            model_id=model_id,
            reply_a=r.reply_a,
            reply_b=r.reply_b,
            tokens_a=r.tokens_a,
            tokens_b=r.tokens_b,
            seconds=r.seconds,
            flags=r.flags,
        )
        for r in fresh
    )
    return len(fresh)
