"""Jobs, their members and their events.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# The migration keeps its own copies of the column types so that later edits
# of the models cannot change what this revision creates.
DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'jobs',
        sa.Column('id', sa.String(36), nullable=False),
        sa.Column('server_group_id', sa.String(36), nullable=False),
        sa.Column('server_group_name', sa.String(255), nullable=True),
        sa.Column('strategy', sa.String(64), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('request', MediumText, nullable=False),
        sa.Column('plan', MediumText, nullable=True),
        sa.Column('owner', sa.String(255), nullable=True),
        sa.Column('lease_expires_at', DateTime, nullable=True),
        sa.Column('error', sa.Text, nullable=True),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_jobs'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.create_index('ix_jobs_status', 'jobs', ['status'])
    op.create_index('ix_jobs_server_group_id', 'jobs', ['server_group_id'])

    op.create_table(
        'job_members',
        sa.Column('id', sa.Integer, autoincrement=True, nullable=False),
        sa.Column('job_id', sa.String(36), nullable=False),
        sa.Column('server_id', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=True),
        sa.Column('source_host', sa.String(255), nullable=False),
        sa.Column('destination_host', sa.String(255), nullable=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('started_at', DateTime, nullable=True),
        sa.Column('switchover_at', DateTime, nullable=True),
        sa.Column('bytes_transferred', sa.BigInteger, nullable=False),
        sa.Column('downtime_ms', sa.Integer, nullable=True),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_job_members'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE',
                                name='fk_job_members_job_id_jobs'),
        sa.UniqueConstraint('job_id', 'server_id', name='uq_job_members_job_id_server_id'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )

    op.create_table(
        'job_events',
        sa.Column('id', sa.Integer, autoincrement=True, nullable=False),
        sa.Column('job_id', sa.String(36), nullable=False),
        sa.Column('member_id', sa.Integer, nullable=True),
        sa.Column('at', DateTime, nullable=False),
        sa.Column('kind', sa.String(64), nullable=False),
        sa.Column('detail', sa.Text, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_job_events'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE',
                                name='fk_job_events_job_id_jobs'),
        sa.ForeignKeyConstraint(['member_id'], ['job_members.id'], ondelete='CASCADE',
                                name='fk_job_events_member_id_job_members'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.create_index('ix_job_events_job_id_at', 'job_events', ['job_id', 'at'])
    op.create_index('ix_job_events_member_id', 'job_events', ['member_id'])


def downgrade():
    op.drop_table('job_events')
    op.drop_table('job_members')
    op.drop_table('jobs')
