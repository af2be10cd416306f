"""Migration 0004 on SQLite and MariaDB: jobs get the project and user they were created for.

The jobs made before it had their project only in their ``job.created``
event; the upgrade copies it from there, so that project-scoped policies
work on old jobs too.
"""

import json

import pytest
import sqlalchemy as sa

from slm_plugin.db import migration

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]


def test_upgrade_copies_the_project_from_the_creation_event(db_url):
    migration.upgrade(db_url, '0003')
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for job_id, detail in (('job-1', {'by': 'api', 'project_id': 'p-1',
                                              'user_id': 'u-1'}),
                                   ('job-2', {'by': 'maintenance', 'project_id': None}),
                                   ('job-3', None)):
                conn.execute(sa.text(
                    "INSERT INTO jobs (id, server_group_id, strategy, status, request, "
                    "created_at) VALUES (:id, 'g', 'synchronized', 'pending', '{}', "
                    "'2026-12-01 10:00:00')"), {'id': job_id})
                if detail is not None:
                    conn.execute(sa.text(
                        "INSERT INTO job_events (job_id, at, kind, detail) VALUES "
                        "(:id, '2026-12-01 10:00:00', 'job.created', :detail)"),
                        {'id': job_id, 'detail': json.dumps(detail)})
        migration.upgrade(db_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT id, project_id, user_id FROM jobs ORDER BY id')).all()
        assert [tuple(r) for r in rows] == [('job-1', 'p-1', 'u-1'), ('job-2', None, None),
                                            ('job-3', None, None)]
        migration.downgrade(db_url, '0003')
        assert migration.version(db_url) == '0003'
    finally:
        engine.dispose()
