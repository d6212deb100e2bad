"""SQL tables. Importing this package registers every table on SQLModel.metadata."""

from app.models.audit import AuditEvent
from app.models.jobs import Job, JobStatus
from app.models.prompts import Prompt, PromptSet
from app.models.users import Role, User, UserSession

__all__ = [
    "AuditEvent",
    "Job",
    "JobStatus",
    "Prompt",
    "PromptSet",
    "Role",
    "User",
    "UserSession",
]
