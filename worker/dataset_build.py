"""The dataset build job: reads the runs, filters and splits the rows, writes files and a card."""

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.dataset_builds import load_trace_records, options_from_json, source_runs
from app.datasets.card import CardInfo, render_card
from app.datasets.export import write_all
from app.datasets.feedback_card import render_feedback_card
from app.datasets.feedback_rows import FeedbackOptions, build_feedback_rows
from app.datasets.helpful_files import parse_helpful_file
from app.datasets.rows import BuiltDataset, build_rows
from app.feedback import comparison_records
from app.models import Dataset, Job
from app.prompt_files import PromptFileError
from app.settings import get_settings
from app.timeutil import utcnow
from app.upload_store import remove_upload, upload_byte_limit
from app.users import username_of
from worker.lifecycle import JobContext


def dataset_folder(dataset_id: int) -> Path:
    return get_settings().DATA_DIR / "datasets" / str(dataset_id)


def build_dataset(engine: Engine, context: JobContext) -> None:
    dataset_id = int(context.parameters["dataset_id"])
    try:
        _build(engine, context, dataset_id)
    except Exception:
        with Session(engine) as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is not None:
                dataset.status = "failed"
                session.add(dataset)
                session.commit()
        raise
    finally:
        # The helpful rows are read once; a failed build is started again by a new upload.
        remove_upload(context.parameters.get("helpful_path"))


def _build(engine: Engine, context: JobContext, dataset_id: int) -> None:
    context.progress(0, None, "reading the runs")
    with Session(engine) as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise LookupError(f"dataset {dataset_id} does not exist")
        feedback = (
            _feedback_rows_and_card(session, dataset) if dataset.kind == "ai-feedback" else None
        )
    if feedback is not None:
        _write(engine, context, dataset_id, *feedback)
        return
    with Session(engine) as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        options = options_from_json(dataset.options)
        records = load_trace_records(session=session, job_ids=dataset.source_job_ids)
        sources = source_runs(session=session, job_ids=dataset.source_job_ids)
        author = username_of(session=session, user_id=dataset.created_by_id, default="unknown")
        name, description = dataset.name, dataset.description
        helpful_source = dataset.helpful_source or None
    helpful_path = context.parameters.get("helpful_path") or ""
    helpful = []
    if helpful_path and options.helpful_max_rows:
        try:
            helpful = parse_helpful_file(
                Path(helpful_path),
                max_rows=options.helpful_max_rows,
                source_name=helpful_source,
                max_bytes=upload_byte_limit(),
            )
        except PromptFileError as exc:
            # The job's error names the user's file, not the server's copy.
            raise ValueError(f"{helpful_source or 'helpful rows'}: {exc}") from None
    context.progress(0, len(records), f"filtering {len(records)} traces")
    built = build_rows(records, helpful, options)
    card = render_card(
        CardInfo(
            name=name,
            description=description,
            sources=sources,
            options=options,
            counts=built.counts,
            dropped=built.dropped,
            helpful_source=helpful_source,
            created_by=author,
            created_at=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    _write(engine, context, dataset_id, built, card)


def _feedback_rows_and_card(session: Session, dataset: Dataset) -> tuple[BuiltDataset, str]:
    """AI-labelled preference rows from one labelling run, and their card."""
    label_job_id = dataset.source_job_ids[0]
    options = FeedbackOptions(**dataset.options)
    built = build_feedback_rows(comparison_records(session=session, job_id=label_job_id), options)
    label_job = session.get(Job, label_job_id)
    assert label_job is not None
    pair_job_id = int(label_job.parameters.get("pair_job_id") or 0)
    labelling = source_runs(session=session, job_ids=[label_job_id])[0]
    pairs = source_runs(session=session, job_ids=[pair_job_id]) if pair_job_id else []
    card = render_feedback_card(
        name=dataset.name,
        description=dataset.description,
        labelling=labelling,
        pairs=pairs[0] if pairs else None,
        options=options,
        counts=built.counts,
        dropped=built.dropped,
        created_by=username_of(session=session, user_id=dataset.created_by_id, default="unknown"),
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
