"""What a member's migration is doing now: remaining bytes, iteration, when last seen.

``bytes_transferred`` was written at the switchover only; with these the API
shows a migration's progress while it runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    with op.batch_alter_table('job_members') as batch:
        batch.add_column(sa.Column('remaining_bytes', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('iteration', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('progress_at', DateTime, nullable=True))


def downgrade():
    with op.batch_alter_table('job_members') as batch:
        batch.drop_column('progress_at')
        batch.drop_column('iteration')
        batch.drop_column('remaining_bytes')
