"""constitution A/B comparisons

Revision ID: 7b3f0d2c9e15
Revises: 5e7a1c3b9d42
Create Date: 2026-12-01 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "7b3f0d2c9e15"
down_revision: str | None = "5e7a1c3b9d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ab_comparison",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("first_trace_id", sa.Integer(), nullable=False),
        sa.Column("second_trace_id", sa.Integer(), nullable=False),
        sa.Column("principle_keys", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("prob_second", sa.Float(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"]),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompt.id"]),
        sa.ForeignKeyConstraint(["first_trace_id"], ["trace.id"]),
        sa.ForeignKeyConstraint(["second_trace_id"], ["trace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "prompt_id", "kind"),
    )
    with op.batch_alter_table("ab_comparison", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ab_comparison_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ab_comparison", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ab_comparison_job_id"))
    op.drop_table("ab_comparison")
