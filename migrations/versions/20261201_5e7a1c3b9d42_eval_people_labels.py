"""people's labels of evaluation judgements and classed replies

Revision ID: 5e7a1c3b9d42
Revises: 0209a43a41c9
Create Date: 2026-12-01 18:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "5e7a1c3b9d42"
down_revision: str | None = "0209a43a41c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_judgement_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("judgement_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("choice", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["judgement_id"], ["eval_judgement.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("judgement_id", "user_id"),
    )
    with op.batch_alter_table("eval_judgement_label", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eval_judgement_label_judgement_id"), ["judgement_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_eval_judgement_label_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "eval_refusal_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refusal_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("refusal_class", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("evasive", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["refusal_id"], ["eval_refusal.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("refusal_id", "user_id"),
    )
    with op.batch_alter_table("eval_refusal_label", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eval_refusal_label_refusal_id"), ["refusal_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_eval_refusal_label_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_refusal_label", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_refusal_label_user_id"))
        batch_op.drop_index(batch_op.f("ix_eval_refusal_label_refusal_id"))
    op.drop_table("eval_refusal_label")
    with op.batch_alter_table("eval_judgement_label", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_judgement_label_user_id"))
        batch_op.drop_index(batch_op.f("ix_eval_judgement_label_judgement_id"))
    op.drop_table("eval_judgement_label")
