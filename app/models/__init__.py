"""SQL tables. Importing this package registers every table on SQLModel.metadata."""

from app.models.audit import AuditEvent
from app.models.chunks import Chunk, ChunkStatus
from app.models.constitutions import (
    Constitution,
    ConstitutionVersion,
    FewShotConversation,
    Principle,
    VersionState,
)
from app.models.datasets import Dataset, JobMetric
from app.models.evaluation import (
    ABComparison,
    EvalAnswer,
    EvalJudgement,
    EvalJudgementLabel,
    EvalRefusal,
    EvalRefusalLabel,
)
from app.models.feedback import Comparison, HumanLabel, ReplyPair
from app.models.generation import LanguageModel, Review, Trace, TraceStep
from app.models.jobs import Job, JobStatus
from app.models.prompts import Prompt, PromptSet
from app.models.users import Role, SignInFailure, User, UserSession

__all__ = [
    "ABComparison",
    "AuditEvent",
    "Chunk",
    "ChunkStatus",
    "Comparison",
    "Constitution",
    "ConstitutionVersion",
    "Dataset",
    "EvalAnswer",
    "EvalJudgement",
    "EvalJudgementLabel",
    "EvalRefusal",
    "EvalRefusalLabel",
    "FewShotConversation",
    "HumanLabel",
    "Job",
    "JobMetric",
    "JobStatus",
    "LanguageModel",
    "Principle",
    "Prompt",
    "PromptSet",
    "ReplyPair",
    "Review",
    "Role",
    "SignInFailure",
    "Trace",
    "TraceStep",
    "User",
    "UserSession",
    "VersionState",
]
