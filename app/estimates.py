"""What a generation run will cost, before it starts: tokens from the prompt set and the form,
time from the model's measured tokens/s on past runs (app.run_rates).

Token counts of text are rough (about four characters a token for English): enough to tell a
two-minute run from a two-hour one, which is what the launch form needs.
"""

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.constitutions import to_document
from app.models import ConstitutionVersion, LanguageModel, Prompt
from app.run_rates import MeasuredRate, measured_rates

CHARS_PER_TOKEN = 4


def rough_tokens(chars: float) -> int:
    return round(chars / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class RunShape:
    """The form's numbers that decide a run's size."""

    prompt_set_id: int
    model_id: int
    constitution_version_id: int | None = None
    rounds: int = 1
    max_new_tokens: int = 256
    sample_size: int = 0
    max_prompts: int = 0


@dataclass(frozen=True)
class TimeEstimate:
    rate: MeasuredRate
    seconds_at_most: float  # every output at max_new_tokens
    seconds_expected: float  # outputs as long as on past runs (capped at max_new_tokens)


@dataclass(frozen=True)
class RunEstimate:
    model_name: str
    prompts: int
    outputs: int  # replies, critiques and revisions: prompts * (1 + 2 * rounds)
    prompt_tokens: int  # the prompts themselves, all of them
    context_tokens: int  # system prompt and few-shots, which every step reads again
    generated_at_most: int
    times: list[TimeEstimate]

    @property
    def measured(self) -> bool:
        return bool(self.times)


def _prompt_stats(session: Session, prompt_set_id: int) -> tuple[int, float]:
    count, mean_chars = session.execute(
        sa_select(func.count(), func.avg(func.length(col(Prompt.text)))).where(
            col(Prompt.prompt_set_id) == prompt_set_id
        )
    ).one()
    return int(count), float(mean_chars or 0.0)


def _context_chars(session: Session, version_id: int | None) -> int:
    version = session.get(ConstitutionVersion, version_id) if version_id else None
    if version is None:
        return 0
    doc = to_document(session=session, version=version)
    shots = sum(len(m.get("content", "")) for shot in doc.few_shots for m in shot.messages)
    return len(doc.system_prompt) + shots


def estimate_run(*, session: Session, shape: RunShape) -> RunEstimate | None:
    """None when the prompt set or the model does not exist (the form says which to choose)."""
    model = session.get(LanguageModel, shape.model_id)
    count, mean_chars = _prompt_stats(session, shape.prompt_set_id)
    if model is None or not count:
        return None
    prompts = count
    for limit in (shape.sample_size, shape.max_prompts):
        if limit:
            prompts = min(prompts, limit)
    outputs = prompts * (1 + 2 * shape.rounds)
    at_most = outputs * shape.max_new_tokens
    times = []
    for rate in measured_rates(session=session, model_id=shape.model_id):
        if rate.tokens_per_second <= 0:
            continue
        per_output = min(float(shape.max_new_tokens), rate.tokens_per_output or 0.0)
        times.append(
            TimeEstimate(
                rate=rate,
                seconds_at_most=at_most / rate.tokens_per_second,
                seconds_expected=outputs * per_output / rate.tokens_per_second,
            )
        )
    return RunEstimate(
        model_name=model.name,
        prompts=prompts,
        outputs=outputs,
        prompt_tokens=rough_tokens(prompts * mean_chars),
        context_tokens=rough_tokens(_context_chars(session, shape.constitution_version_id)),
        generated_at_most=at_most,
        times=times,
    )
