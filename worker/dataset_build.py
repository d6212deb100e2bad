"""The dataset build job: reads the runs, filters and splits the rows, writes files and a card."""

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.dataset_builds import dataset_options, load_trace_records, source_runs, trace_rows
from app.datasets.card import CardInfo, render_card
from app.datasets.export import write_all
from app.datasets.feedback_card import render_feedback_card
from app.datasets.feedback_rows import build_feedback_rows
from app.datasets.helpful_files import parse_helpful_file
from app.datasets.records import HelpfulExample
from app.datasets.rows import BuiltDataset
from app.feedback import comparison_records
from app.ids import parse_id
from app.models import Dataset, Job
from app.prompt_files import PromptFileError
from app.settings import get_settings
from app.specs import SpecError
from app.specs.datasets import DatasetBuildJobSpec
from app.timeutil import utcnow
from app.upload_store import remove_upload, upload_byte_limit
from app.users import username_of
from worker.lifecycle import JobContext


def dataset_folder(dataset_id: int) -> Path:
    return get_settings().DATA_DIR / "datasets" / str(dataset_id)


def build_dataset(engine: Engine, context: JobContext) -> None:
    try:
        spec = DatasetBuildJobSpec.from_parameters(context.parameters)
    except SpecError:
        # A row the web app did not write (by hand, or by an older version): nothing to build
        # from, but its dataset is marked failed and its upload removed all the same.
        _failed(engine, parse_id(str(context.parameters.get("dataset_id", ""))))
        helpful_path = context.parameters.get("helpful_path")
        remove_upload(helpful_path if isinstance(helpful_path, str) else None)
        raise
    try:
        _build(engine, context, spec)
    except Exception:
        _failed(engine, spec.dataset_id)
        raise
    finally:
        # The helpful rows are read once; a failed build is started again by a new upload.
        remove_upload(spec.helpful_path or None)


def _failed(engine: Engine, dataset_id: int | None) -> None:
    with Session(engine) as session:
        dataset = session.get(Dataset, dataset_id) if dataset_id else None
        if dataset is not None:
            dataset.status = "failed"
            session.add(dataset)
            session.commit()


def _build(engine: Engine, context: JobContext, spec: DatasetBuildJobSpec) -> None:
    context.progress(0, None, "reading the runs")
    with Session(engine) as session:
        if session.get(Dataset, spec.dataset_id) is None:
            raise LookupError(f"dataset {spec.dataset_id} does not exist")
        author = username_of(session=session, user_id=spec.user_id, default="unknown")
        if spec.kind == "ai-feedback":
            feedback = _feedback_rows_and_card(session, spec, author)
        else:
            records = load_trace_records(session=session, job_ids=list(spec.runs))
            sources = source_runs(session=session, job_ids=list(spec.runs))
    if spec.kind == "ai-feedback":
        _write(engine, context, spec.dataset_id, *feedback)
        return
    helpful = _helpful_rows(spec)
    context.progress(0, len(records), f"filtering {len(records)} traces")
    built = trace_rows(records, helpful, spec)
    card = render_card(
        CardInfo(
            name=spec.name,
            description=spec.description,
            sources=sources,
            options=dataset_options(spec),
            counts=built.counts,
            dropped=built.dropped,
            helpful_source=spec.helpful_filename or None,
            created_by=author,
            created_at=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    _write(engine, context, spec.dataset_id, built, card)


def _helpful_rows(spec: DatasetBuildJobSpec) -> list[HelpfulExample]:
    if not spec.helpful_path or not spec.helpful_max_rows:
        return []
    try:
        return parse_helpful_file(
            Path(spec.helpful_path),
            max_rows=spec.helpful_max_rows,
            source_name=spec.helpful_filename or None,
            max_bytes=upload_byte_limit(),
        )
    except PromptFileError as exc:
        # The job's error names the user's file, not the server's copy.
        raise ValueError(f"{spec.helpful_filename or 'helpful rows'}: {exc}") from None


def _feedback_rows_and_card(
    session: Session, spec: DatasetBuildJobSpec, author: str
) -> tuple[BuiltDataset, str]:
    """AI-labelled preference rows from one labelling run, and their card."""
    label_job_id = spec.runs[0]
    built = build_feedback_rows(comparison_records(session=session, job_id=label_job_id), spec)
    label_job = session.get(Job, label_job_id)
    if label_job is None:
        raise LookupError(f"labelling run {label_job_id} does not exist")
    # The card names the pairs the labelling run judged, when it still has them.
    pair_job_id = parse_id(str(label_job.parameters.get("pair_job_id", "")))
    labelling = source_runs(session=session, job_ids=[label_job_id])[0]
    pairs = source_runs(session=session, job_ids=[pair_job_id]) if pair_job_id else []
    card = render_feedback_card(
        name=spec.name,
        description=spec.description,
        labelling=labelling,
        pairs=pairs[0] if pairs else None,
        options=spec,
        counts=built.counts,
        dropped=built.dropped,
        created_by=author,
        created_at=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
    )
    return built, card


def _write(
    engine: Engine, context: JobContext, dataset_id: int, built: BuiltDataset, card: str
) -> None:
    if built.total_rows == 0:
        reasons = ", ".join(f"{count} {reason}" for reason, count in built.dropped.items())
        raise ValueError(f"no rows are left after filtering ({reasons or 'nothing to build'})")
    context.progress(0, built.total_rows, f"writing {built.total_rows} rows")
    folder = dataset_folder(dataset_id)
    write_all(built.splits, card, folder)
    with Session(engine) as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.counts = built.counts
        dataset.dropped = built.dropped
        dataset.row_count = built.total_rows
        dataset.folder = str(folder)
        dataset.card = card
        dataset.status = "ready"
        session.add(dataset)
        session.commit()
    context.result["dataset_id"] = dataset_id
    context.result["rows"] = built.total_rows
    context.progress(built.total_rows, built.total_rows, f"wrote {built.total_rows} rows")
