"""Locks held by the jobs that are not finished: one per server group, one per server.

A request for a group that is already moving, or for a server that another
job is moving, fails on the primary key instead of racing a check.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'job_locks',
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('job_id', sa.String(36), nullable=False),
        sa.Column('created_at', DateTime, nullable=False),
        sa.PrimaryKeyConstraint('name', name='pk_job_locks'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE',
                                name='fk_job_locks_job_id_jobs'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.create_index('ix_job_locks_job_id', 'job_locks', ['job_id'])
    # The engines look for jobs to run or to take over by status and lease.
    op.create_index('ix_jobs_status_lease_expires_at', 'jobs', ['status', 'lease_expires_at'])


def downgrade():
    op.drop_index('ix_jobs_status_lease_expires_at', table_name='jobs')
    op.drop_table('job_locks')
