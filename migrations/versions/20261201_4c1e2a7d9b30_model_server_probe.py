"""model server probe: how an OpenAI-compatible server scores, as the worker found it

Revision ID: 4c1e2a7d9b30
Revises: c630e50c7642
Create Date: 2026-12-01 12:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '4c1e2a7d9b30'
down_revision: str | None = 'c630e50c7642'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('language_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('server_probe', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('language_model', schema=None) as batch_op:
        batch_op.drop_column('server_probe')
