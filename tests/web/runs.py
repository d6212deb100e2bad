"""Makes generation runs for web tests: real tables and job code, a scripted backend."""

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.constitutions import create_constitution
from app.models import Job, LanguageModel
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.recipe.documents import ConstitutionDoc, PrincipleDoc
from worker.backends.fake import FakeBackend
from worker.chunk_runner import run_in_process

PRINCIPLES = [
    PrincipleDoc(
        key="harm", critique_request="How was it harmful?", revision_request="Make it harmless."
    ),
    PrincipleDoc(
        key="honesty",
        critique_request="Where was it dishonest?",
        revision_request="Make it honest.",
    ),
]


def make_run(
    session: Session,
    engine: Engine,
    *,
    prompts: int,
    rounds: int = 1,
    reviews_needed: int = 1,
    texts: list[str] | None = None,
    backend: FakeBackend | None = None,
) -> Job:
    _, version = create_constitution(
        session=session,
        doc=ConstitutionDoc(
            name=f"run constitution {prompts}-{rounds}-{reviews_needed}", principles=PRINCIPLES
        ),
        user=None,
        publish=True,
    )
    prompt_set = store_prompt_set(
        session=session,
        name="run prompts",
        prompts=[
            ParsedPrompt(
                text=(texts[i] if texts else f"question number {i}?"),
                context=None,
                line=i,
                metadata={},
            )
            for i in range(prompts)
        ],
    )
    model = LanguageModel(name=f"fake-{prompt_set.id}", backend="transformers", path="fake")
    session.add(model)
    session.flush()
    job = Job(
        kind="generate",
        queue="gpu",
        reviews_needed=reviews_needed,
        parameters={
            "constitution_version_id": version.id,
            "prompt_set_id": prompt_set.id,
            "model_id": model.id,
            "rounds": rounds,
            "seed": 1,
            "max_new_tokens": 64,
            "temperature": 1.0,
            "top_p": 1.0,
            "chunk_size": 64,
        },
    )
    session.add(job)
    session.commit()
    run_in_process(engine, job.id or 0, backend=backend or FakeBackend())
    session.refresh(job)
    return job
