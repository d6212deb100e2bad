"""The chunked stages, by job kind: what a run's items are, and how one chunk of them runs.

The chunk runner (worker.chunk_runner) does the rest (claims, leases, retries, progress) the same
way for every kind, so a new chunked stage is one class here.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from sqlmodel import Session, select

from app.models import Comparison, ReplyPair, Trace
from app.prompt_selection import select_prompts
from app.specs.base import StageSpec
from app.specs.feedback import ReplyPairSpec
from app.specs.generation import GenerationSpec
from app.specs.labelling import LabelSpec
from worker.backends.base import Backend

StepFn = Callable[[str], None]


class ChunkStage(ABC):
    """One chunked stage. `prepare` reads what every chunk of a run shares (once per chunk,
    since any worker may take any chunk); `run` is torch-level work with no database."""

    spec_type: type[StageSpec]
    unit: str = "prompts"

    def chunk_size(self, spec: Any) -> int:
        return int(spec.chunk_size)

    @abstractmethod
    def items(self, session: Session, spec: Any) -> list[int]:
        """Every item of the run, in order."""

    @abstractmethod
    def stored(self, session: Session, job_id: int) -> set[int]:
        """Items this job stored already (by an earlier try)."""

    def model_id(self, spec: Any) -> int:
        return int(spec.model_id)

    @abstractmethod
    def prepare(self, session: Session, spec: Any, item_ids: Sequence[int]) -> Any: ...

    def steps(self, spec: Any) -> int:
        """How many step reports one chunk makes."""
        return 1

    @abstractmethod
    def run(self, inputs: Any, chunk_index: int, backend: Backend, step: StepFn) -> list[Any]: ...

    @abstractmethod
    def store(self, session: Session, job_id: int, inputs: Any, results: list[Any]) -> None:
        """Adds the chunk's results to the session (no commit), skipping what is stored."""

    @abstractmethod
    def summary(self, session: Session, job_id: int, total: int) -> tuple[dict[str, Any], str]:
        """The finished job's result and last message."""


class GenerationStage(ChunkStage):
    spec_type = GenerationSpec

    def items(self, session: Session, spec: GenerationSpec) -> list[int]:
        return [row.id or 0 for row in select_prompts(session, spec)]

    def stored(self, session: Session, job_id: int) -> set[int]:
        return set(session.exec(select(Trace.prompt_id).where(Trace.job_id == job_id)))

    def prepare(self, session: Session, spec: GenerationSpec, item_ids: Sequence[int]) -> Any:
        from worker.generation import load_inputs

        return load_inputs(session, spec, item_ids)

    def steps(self, spec: GenerationSpec) -> int:
        return 1 + 2 * spec.rounds

    def run(self, inputs: Any, chunk_index: int, backend: Backend, step: StepFn) -> list[Any]:
        from worker.pipeline.critique_revision import critique_and_revise

        return critique_and_revise(
            inputs.prompts, inputs.constitution, backend, inputs.config, progress=step
        )

    def store(self, session: Session, job_id: int, inputs: Any, results: list[Any]) -> None:
        from worker.generation import store_traces

        store_traces(session, job_id, inputs, results)

    def summary(self, session: Session, job_id: int, total: int) -> tuple[dict[str, Any], str]:
        done = len(self.stored(session, job_id))
        return {"traces": done}, f"{done} of {total} prompts"


class ReplyPairStage(ChunkStage):
    spec_type = ReplyPairSpec

    def items(self, session: Session, spec: ReplyPairSpec) -> list[int]:
        return [row.id or 0 for row in select_prompts(session, spec)]

    def stored(self, session: Session, job_id: int) -> set[int]:
        return set(session.exec(select(ReplyPair.prompt_id).where(ReplyPair.job_id == job_id)))

    def prepare(self, session: Session, spec: ReplyPairSpec, item_ids: Sequence[int]) -> Any:
        from worker.reply_pairs import load_inputs

        return load_inputs(session, spec, item_ids)

    def run(self, inputs: Any, chunk_index: int, backend: Backend, step: StepFn) -> list[Any]:
        from worker.reply_pairs import sample_pairs

        step("sampling two replies")
        return sample_pairs(inputs.prompts, backend, inputs.config, chunk_index=chunk_index)

    def store(self, session: Session, job_id: int, inputs: Any, results: list[Any]) -> None:
        from worker.reply_pairs import store_pairs

        store_pairs(session, job_id, inputs.model_id, results)

    def summary(self, session: Session, job_id: int, total: int) -> tuple[dict[str, Any], str]:
        done = len(self.stored(session, job_id))
        return {"pairs": done}, f"{done} of {total} prompts have two replies"


class LabellingStage(ChunkStage):
    spec_type = LabelSpec
    unit = "pairs"

    def items(self, session: Session, spec: LabelSpec) -> list[int]:
        from worker.labelling import load_pairs

        pairs = load_pairs(session, spec.pair_job_id)
        if not pairs:
            raise ValueError(f"pair run {spec.pair_job_id} has no pairs with two distinct replies")
        return [pair.pair_id for pair in pairs]

    def stored(self, session: Session, job_id: int) -> set[int]:
        return set(session.exec(select(Comparison.pair_id).where(Comparison.job_id == job_id)))

    def prepare(self, session: Session, spec: LabelSpec, item_ids: Sequence[int]) -> Any:
        from worker.labelling import load_inputs

        return load_inputs(session, spec, item_ids)

    def run(self, inputs: Any, chunk_index: int, backend: Backend, step: StepFn) -> list[Any]:
        from worker.pipeline.ai_feedback import label_pairs

        step("comparing replies")
        return label_pairs(inputs.pairs, inputs.constitution, backend, inputs.config)

    def store(self, session: Session, job_id: int, inputs: Any, results: list[Any]) -> None:
        from worker.labelling import store_comparisons

        store_comparisons(
            session,
            job_id=job_id,
            version_id=inputs.version_id,
            model_id=inputs.model_id,
            judgements=results,
        )

    def summary(self, session: Session, job_id: int, total: int) -> tuple[dict[str, Any], str]:
        labels = list(session.exec(select(Comparison.label).where(Comparison.job_id == job_id)))
        skipped = sum(1 for label in labels if label == "skipped")
        message = f"{len(labels)} of {total} pairs labelled" + (
            f"; {skipped} skipped (too long for the model)" if skipped else ""
        )
        return {"comparisons": len(labels), "skipped": skipped}, message


CHUNK_STAGES: dict[str, ChunkStage] = {
    "generate": GenerationStage(),
    "reply_pairs": ReplyPairStage(),
    "label_pairs": LabellingStage(),
}

# Stages kept in modules of their own register themselves here (a plain import: it also works
# when such a module is imported first).
import worker.eval_stages  # noqa: E402, F401
