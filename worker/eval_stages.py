"""The evaluation run as a chunked stage: chunks of prompts; in each, every model answers every
prompt (stored answers under the run's settings are reused), the judge compares every pair of
models on every prompt, then classes every answer's refusal. After the last chunk the summary
fits the ratings (worker.evaluation_rows.run_result).

The chunk runner loads one backend, the stage's `model_id`: here the judge. The models that
answer are opened in turn inside the chunk (`open_answerer`) and closed after their answers,
so a worker holds the judge and at most one answering model at a time; a model that is also
the judge answers through the judge's backend.
"""

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from app.evaluations import evaluation_errors, suite_prompts
from app.models import LanguageModel
from app.specs.evaluation import EvaluationSpec
from worker.backends.base import Backend, GenerationParams
from worker.chunk_stages import CHUNK_STAGES, ChunkStage, StepFn
from worker.evaluation_rows import (
    EvalChunkResult,
    EvalInputs,
    load_inputs,
    run_result,
    store_results,
    stored_prompts,
)
from worker.pipeline.evaluation import Answer, answer_prompts, judge_pairs
from worker.pipeline.refusal_judge import ReplyToClass, classify_replies


def open_answerer(model: LanguageModel) -> Backend:
    """The backend of a model that answers (tests put a fake one here)."""
    from worker.backends.loading import load_backend

    return load_backend(model)


def _params(spec: EvaluationSpec, chunk_index: int) -> GenerationParams:
    return GenerationParams(
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        top_k=spec.top_k,
        repetition_penalty=spec.repetition_penalty,
        stop=spec.stop,
        # One seed per chunk and model, so a chunk re-run draws what its first try would.
        seed=spec.seed * 1_000_003 + chunk_index,
    )


class EvaluationStage(ChunkStage):
    spec_type = EvaluationSpec

    def items(self, session: Session, spec: EvaluationSpec) -> list[int]:
        errors = evaluation_errors(session=session, spec=spec)
        if errors:
            raise ValueError("; ".join(f"{name}: {text}" for name, text in errors.items()))
        return [row.id or 0 for row in suite_prompts(session, spec)]

    def stored(self, session: Session, job_id: int) -> set[int]:
        return stored_prompts(session, job_id)

    def model_id(self, spec: EvaluationSpec) -> int:
        return int(spec.judge_model_id)

    def prepare(self, session: Session, spec: EvaluationSpec, item_ids: Sequence[int]) -> Any:
        return load_inputs(session, spec, item_ids)

    def steps(self, spec: EvaluationSpec) -> int:
        return len(spec.model_ids) + 2

    def run(
        self, inputs: EvalInputs, chunk_index: int, backend: Backend, step: StepFn
    ) -> list[Any]:
        spec = inputs.spec
        texts: dict[tuple[int, int], str] = dict(inputs.stored)
        written: list[Answer] = []
        for model in inputs.models:
            model_id = model.id or 0
            missing = [p for p in inputs.prompts if (model_id, p.prompt_id) not in texts]
            step(f"answers · {model.name} · {len(missing)} new")
            if not missing:
                continue
            own = model_id == spec.judge_model_id
            answerer = backend if own else open_answerer(model)
            try:
                answers = answer_prompts(model_id, missing, answerer, _params(spec, chunk_index))
            finally:
                if not own:
                    answerer.close()
            written.extend(answers)
            texts.update({(a.model_id, a.prompt_id): a.text for a in answers})
        step("pairwise judging")
        model_ids = [m.id or 0 for m in inputs.models]
        judgements = judge_pairs(
            inputs.prompts, model_ids, texts, inputs.constitutions, backend, seed=spec.seed
        )
        step("refusal classes")
        keyed = [(m, p) for p in inputs.prompts for m in model_ids]
        classed = classify_replies(
            [
                ReplyToClass(i, p.messages, texts[(m, p.prompt_id)])
                for i, (m, p) in enumerate(keyed)
            ],
            backend,
        )
        refusals = [(keyed[c.key][0], keyed[c.key][1].prompt_id, c) for c in classed]
        return [EvalChunkResult(written, judgements, refusals)]

    def store(self, session: Session, job_id: int, inputs: Any, results: list[Any]) -> None:
        for result in results:
            store_results(session, job_id, inputs, result)

    def summary(self, session: Session, job_id: int, total: int) -> tuple[dict[str, Any], str]:
        result = run_result(session, job_id)
        done = len(stored_prompts(session, job_id))
        message = (
            f"{done} of {total} prompts · {result['judgements']} comparisons · "
            f"{result['replies']} replies classed"
        )
        return result, message


CHUNK_STAGES["evaluate"] = EvaluationStage()
