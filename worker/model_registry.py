"""A finished training or RL job's model, registered: one `LanguageModel` row with its lineage
and an audit event, in one transaction, under a name no other model has."""

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.audit import record_event
from app.models import LanguageModel


@dataclass(frozen=True)
class TrainedModel:
    name: str  # wanted; "-job<id>" is added when another model has it
    path: Path
    kind: str  # "policy" or "reward"
    description: str
    parent_id: int | None
    job_id: int
    owner_id: int | None
    dataset_id: int | None = None
    # More for the audit event (the preference model an RL policy was trained against).
    audit: dict[str, object] = field(default_factory=dict)


def register_trained_model(engine: Engine, trained: TrainedModel) -> tuple[int, str]:
    """The new model's id and the name it was registered under."""
    with Session(engine) as session:
        name = trained.name
        if session.exec(select(LanguageModel).where(LanguageModel.name == name)).first():
            name = f"{name}-job{trained.job_id}"
        model = LanguageModel(
            name=name,
            backend="transformers",
            path=str(trained.path),
            kind=trained.kind,
            description=trained.description[:2000],
            parent_id=trained.parent_id,
            dataset_id=trained.dataset_id,
            job_id=trained.job_id,
            created_by_id=trained.owner_id,
        )
        session.add(model)
        session.flush()
        record_event(
            session=session,
            actor=trained.owner_id,
            action="model.register",
            object_type="model",
            object_id=model.id,
            name=name,
            job_id=trained.job_id,
            parent_id=trained.parent_id,
            **trained.audit,
        )
        session.commit()
        assert model.id is not None
        return model.id, name
