"""prompt_set.purpose: a prompt set marked as an evaluation suite

Revision ID: c630e50c7642
Revises: 12ef91b1bbda
Create Date: 2026-12-01 12:43:35.744376
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'c630e50c7642'
down_revision: str | None = '12ef91b1bbda'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: every existing set stays "not a suite" until a user marks it.
    with op.batch_alter_table('prompt_set', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.Enum('red-team', 'helpful', 'over-refusal', 'refusal-expected', name='suitepurpose', native_enum=False, length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('prompt_set', schema=None) as batch_op:
        batch_op.drop_column('purpose')
