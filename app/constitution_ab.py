"""Constitution A/B in the browser: which generation runs can be compared, the checks before a
job starts, and the runs a version's "compare with the previous version" link fills in."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.generation import published_version_error
from app.models import (
    ABComparison,
    ConstitutionVersion,
    Job,
    JobStatus,
    LanguageModel,
    Prompt,
    Trace,
)
from app.specs.constitution_ab import ConstitutionABSpec

KIND = "constitution_ab"
GENERATE = "generate"


def finished_runs(session: Session, limit: int = 200) -> Sequence[Job]:
    """The newest succeeded generation runs, newest first."""
    return session.exec(
        select(Job)
        .where(Job.kind == GENERATE, Job.status == JobStatus.SUCCEEDED)
        .order_by(col(Job.id).desc())
        .limit(limit)
    ).all()


def shared_prompts(session: Session, run_a: int, run_b: int) -> int:
    """How many prompts both runs have a trace of."""
    a = sa_select(col(Trace.prompt_id)).where(col(Trace.job_id) == run_a)
    found = session.execute(
        sa_select(func.count(func.distinct(col(Trace.prompt_id)))).where(
            col(Trace.job_id) == run_b, col(Trace.prompt_id).in_(a)
        )
    ).scalar()
    return int(found or 0)


def _run_error(session: Session, job_id: int) -> str | None:
    job = session.get(Job, job_id)
    if job is None or job.kind != GENERATE:
        return f"job {job_id} is not a generation run"
    if job.status != JobStatus.SUCCEEDED:
        return f"generation run {job_id} is {job.status.value}: choose a finished one"
    return None


def ab_errors(*, session: Session, spec: ConstitutionABSpec) -> dict[str, str]:
    """A message per field that would make the job fail; empty when it can start."""
    errors: dict[str, str] = {}
    for name, job_id in (("run_a_id", spec.run_a_id), ("run_b_id", spec.run_b_id)):
        if message := _run_error(session, job_id):
            errors[name] = message
    if not errors:
        if spec.run_a_id == spec.run_b_id:
            errors["run_b_id"] = "choose two different runs"
        elif not shared_prompts(session, spec.run_a_id, spec.run_b_id):
            errors["run_b_id"] = (
                f"runs {spec.run_a_id} and {spec.run_b_id} share no prompt: "
                "choose two runs over the same prompts"
            )
    judge = session.get(LanguageModel, spec.judge_model_id)
    if judge is None or judge.kind != "policy":
        errors["judge_model_id"] = f"no judge model {spec.judge_model_id} is registered"
    if message := published_version_error(session, spec.constitution_version_id):
        errors["constitution_version_id"] = message
    return errors


def run_version_id(job: Job) -> int | None:
    """The constitution version a generation run critiqued and revised under."""
    value = job.parameters.get("constitution_version_id")
    return value if isinstance(value, int) else None


def previous_version(session: Session, version: ConstitutionVersion) -> ConstitutionVersion | None:
    """The constitution's published version just before this one (before a draft: the newest
    published one)."""
    statement = select(ConstitutionVersion).where(
        ConstitutionVersion.constitution_id == version.constitution_id,
        col(ConstitutionVersion.number).is_not(None),
    )
    if version.number is not None:
        statement = statement.where(col(ConstitutionVersion.number) < version.number)
    return session.exec(statement.order_by(col(ConstitutionVersion.number).desc())).first()


@dataclass(frozen=True)
class CompareLink:
    """What a version's page offers: the prefilled A/B form, or what is missing for it."""

    href: str | None
    missing: str | None


def compare_link(
    *,
    version_id: int,
    previous_id: int | None,
    previous_label: str,
    runs: Sequence[Job],
    share_prompts: Callable[[int, int], bool],
    tries: int = 5,
) -> CompareLink:
    """The A/B form prefilled with the newest finished runs of the previous version (A) and of
    this one (B) that share prompts (of each version's `tries` newest), the judge's principles
    this version's; otherwise what is missing. `runs`: finished generation runs, newest first."""
    if previous_id is None:
        return CompareLink(None, "There is no earlier published version to compare with.")
    by_version: dict[int, list[int]] = {}
    for job in runs:
        version = run_version_id(job)
        if version is not None and job.id is not None:
            by_version.setdefault(version, []).append(job.id)
    missing = [
        label
        for label, vid in ((previous_label, previous_id), ("this version", version_id))
        if vid not in by_version
    ]
    if missing:
        return CompareLink(
            None, f"To compare, run a generation under {' and under '.join(missing)} first."
        )
    for b in by_version[version_id][:tries]:
        for a in by_version[previous_id][:tries]:
            if share_prompts(a, b):
                href = (
                    f"/evaluations/ab?run_a_id={a}&run_b_id={b}"
                    f"&constitution_version_id={version_id}"
                )
                return CompareLink(href, None)
    return CompareLink(
        None,
        f"The newest generation runs under {previous_label} and under this version share no "
        "prompt: run both over the same prompt set first.",
    )


COMPARISON_KINDS = ("ab", "a", "b")


@dataclass(frozen=True)
class ShownComparison:
    """One stored comparison with what it compared: the prompt, and the first and second
    replies (A's and B's final revisions, or a run's initial reply and its revision)."""

    row: ABComparison
    prompt: str
    first: str
    second: str


def ab_comparisons(
    session: Session, *, job_id: int, kind: str, group: str, after: int = 0, limit: int = 50
) -> tuple[list[ShownComparison], int | None]:
    """The job's comparisons of one kind counted in `group` ("all": every one), by id after
    `after`; and the id to continue after, None on the last page."""
    rows = session.exec(
        select(ABComparison)
        .where(
            ABComparison.job_id == job_id, ABComparison.kind == kind, col(ABComparison.id) > after
        )
        .order_by(col(ABComparison.id))
    ).all()
    # Groups are a JSON list: filtered here, as a job holds a few thousand rows at most.
    matching = [r for r in rows if group == "all" or group in r.groups]
    page = matching[:limit]
    traces = {
        t.id: t
        for t in session.exec(
            select(Trace).where(
                col(Trace.id).in_(
                    {r.first_trace_id for r in page} | {r.second_trace_id for r in page}
                )
            )
        )
    }
    prompts = {
        p.id: p
        for p in session.exec(select(Prompt).where(col(Prompt.id).in_({r.prompt_id for r in page})))
    }
    shown = []
    for r in page:
        first, second = traces.get(r.first_trace_id), traces.get(r.second_trace_id)
        prompt = prompts.get(r.prompt_id)
        shown.append(
            ShownComparison(
                row=r,
                prompt=prompt.text if prompt else "",
                first=(first.final_reply if kind == "ab" else first.initial_reply) if first else "",
                second=second.final_reply if second else "",
            )
        )
    more = len(matching) > limit and page
    return shown, (page[-1].id if more else None)
