from typing import Any

from sqlmodel import Session

from app.models import AuditEvent, User


def record_event(
    *,
    session: Session,
    actor: User | int | None,
    action: str,
    object_type: str,
    object_id: object = "",
    **details: Any,
) -> AuditEvent:
    """Adds the event to the caller's transaction: it is stored exactly when the change is."""
    event = AuditEvent(
        actor_id=actor.id if isinstance(actor, User) else actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        details=details,
    )
    session.add(event)
    return event
