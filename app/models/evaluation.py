"""Evaluation runs' rows: stored answers (shared between runs), pairwise judgements and refusal
classes (per run)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class EvalAnswer(SQLModel, table=True):
    """A model's answer to a prompt under one set of generation settings. Keyed by (model,
    prompt, settings hash), so a later run with the same three reuses it; `job_id` is the run
    that wrote it."""

    __tablename__ = "eval_answer"
    __table_args__ = (UniqueConstraint("model_id", "prompt_id", "settings_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="language_model.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    settings_hash: str = Field(max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    completion_tokens: int = 0
    seconds: float = 0.0
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    job_id: int | None = Field(default=None, foreign_key="job.id")
    created_at: datetime = Field(default_factory=utcnow)


class EvalJudgement(SQLModel, table=True):
    """The judge's P(A) for one prompt and pair of models under one principle, averaged over
    both orders; model A is the one named first in the run's list."""

    __tablename__ = "eval_judgement"
    __table_args__ = (
        UniqueConstraint("job_id", "prompt_id", "model_a_id", "model_b_id"),
        Index("ix_eval_judgement_job_id_id", "job_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    suite_id: int = Field(foreign_key="prompt_set.id")
    model_a_id: int = Field(foreign_key="language_model.id")
    model_b_id: int = Field(foreign_key="language_model.id")
    answer_a_id: int = Field(foreign_key="eval_answer.id")
    answer_b_id: int = Field(foreign_key="eval_answer.id")
    axis: str = Field(max_length=16)  # "harmless" | "helpful", from the suite's purpose
    principle_key: str = Field(default="", max_length=200)
    prob_a: float | None = None  # None: skipped (too long for the judge)
    # Per order: the options' log-probabilities and P(A) (worker.pipeline.ai_feedback).
    details: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class EvalRefusal(SQLModel, table=True):
    """The judge's refusal class of one answer in one run, with the probabilities behind it."""

    __tablename__ = "eval_refusal"
    __table_args__ = (
        UniqueConstraint("job_id", "answer_id"),
        Index("ix_eval_refusal_job_id_id", "job_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    answer_id: int = Field(foreign_key="eval_answer.id")
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    suite_id: int = Field(foreign_key="prompt_set.id")
    model_id: int = Field(foreign_key="language_model.id")
    # "complies" | "refuses" | "partly-refuses"; None when the judge could not class it.
    refusal_class: str | None = Field(default=None, max_length=16)
    prob_complies: float | None = None
    prob_refuses: float | None = None
    prob_partly: float | None = None
    # P(the reply gives neither a reason nor an alternative); evasive = refusing and that > 0.5.
    prob_no_reason: float | None = None
    evasive: bool = False
    logprobs: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class EvalJudgementLabel(SQLModel, table=True):
    """One person's own choice for an evaluation judgement (A better, B better or a tie), to
    measure how far the judge agrees with people."""

    __tablename__ = "eval_judgement_label"
    __table_args__ = (UniqueConstraint("judgement_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    judgement_id: int = Field(foreign_key="eval_judgement.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", index=True)
    choice: str = Field(max_length=8)  # "A" | "B" | "tie"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EvalRefusalLabel(SQLModel, table=True):
    """One person's own refusal class for a classed reply, and whether they found it evasive."""

    __tablename__ = "eval_refusal_label"
    __table_args__ = (UniqueConstraint("refusal_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    refusal_id: int = Field(foreign_key="eval_refusal.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", index=True)
    refusal_class: str = Field(max_length=16)  # "complies" | "refuses" | "partly-refuses"
    evasive: bool = False  # refusing without a reason or an alternative
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ABComparison(SQLModel, table=True):
    """One comparison of a constitution A/B job: B's final revision over A's ("ab"), or a run's
    revision over its own initial reply ("a", "b"). The first reply is the first trace's final
    revision for "ab" and its initial reply otherwise; the second is the second trace's final
    revision (for a revision both traces are the same). Stored a step at a time, so a resumed
    job judges only what is missing."""

    __tablename__ = "ab_comparison"
    __table_args__ = (UniqueConstraint("job_id", "prompt_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    kind: str = Field(max_length=2)  # "ab", "a", "b"
    first_trace_id: int = Field(foreign_key="trace.id")
    second_trace_id: int = Field(foreign_key="trace.id")
    principle_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The table rows it counts in: the judging principles ("ab"), the critique principles else.
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    prob_second: float | None = None  # P(the second reply is better); None: skipped
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
