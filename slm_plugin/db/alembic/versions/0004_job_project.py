"""The project and the user a job was created for, to check policies against.

A project-scoped rule (``project_id:%(project_id)s``) needs the job's project,
as Nova has the instance's: until now it was only in the ``job.created`` event,
from which the upgrade copies it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import json

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('project_id', sa.String(255), nullable=True))
        batch.add_column(sa.Column('user_id', sa.String(255), nullable=True))
        batch.create_index('ix_jobs_project_id', ['project_id'])
    jobs = sa.table('jobs', sa.column('id', sa.String), sa.column('project_id', sa.String),
                    sa.column('user_id', sa.String))
    events = sa.table('job_events', sa.column('job_id', sa.String),
                      sa.column('kind', sa.String), sa.column('detail', sa.Text))
    bind = op.get_bind()
    rows = bind.execute(sa.select(events.c.job_id, events.c.detail)
                        .where(events.c.kind == 'job.created')).all()
    for job_id, detail in rows:
        try:
            detail = json.loads(detail or '{}')
        except ValueError:
            continue
        if isinstance(detail, dict) and (detail.get('project_id') or detail.get('user_id')):
            bind.execute(jobs.update().where(jobs.c.id == job_id).values(
                project_id=detail.get('project_id'), user_id=detail.get('user_id')))


def downgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index('ix_jobs_project_id')
        batch.drop_column('user_id')
        batch.drop_column('project_id')
