"""A job's priority: pending jobs are claimed highest first, and a job plans on what
higher-priority jobs leave of the links they share (``slm_plugin.control.shares``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        # 200: "user", the level of every job created before priorities existed
        batch.add_column(sa.Column('priority', sa.Integer(), nullable=False,
                                   server_default='200'))


def downgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('priority')
