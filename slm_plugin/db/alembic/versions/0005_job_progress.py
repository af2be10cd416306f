"""A running job's predicted switchover instant and its progress, for show and --wait.

Written with the members' progress (``[engine] progress_interval``); see
``slm_plugin.control.eta`` for how they are predicted and why the progress
only grows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('progress', sa.Float(), nullable=True))
        batch.add_column(sa.Column('eta_at', DateTime, nullable=True))


def downgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('eta_at')
        batch.drop_column('progress')
