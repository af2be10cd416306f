"""The SLM database on SQLite and on MariaDB: migrations, models and db.api."""

import datetime

import pytest
import sqlalchemy as sa
from alembic import autogenerate
from alembic import migration as alembic_migration
from oslo_db import exception as oslo_db_exception

from slm_plugin import context as slm_context
from slm_plugin import exception
from slm_plugin.db import api as db_api
from slm_plugin.db import migration, models, states

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]

SLM_TABLES = {'jobs', 'job_members', 'job_events', 'job_locks'}


def _migrated_context(url):
    migration.upgrade(url)
    ctxt_mgr = db_api.create_context_manager(url)
    yield slm_context.get_admin_context(db_connection=ctxt_mgr)
    # Close the pooled connections, or MariaDB cannot drop the database.
    ctxt_mgr.dispose_pool()


@pytest.fixture
def ctxt(db_url):
    """An admin context on a migrated database of this test (SQLite, then MariaDB)."""
    yield from _migrated_context(db_url)


@pytest.fixture
def mariadb_ctxt(mariadb_url):
    """An admin context on a migrated MariaDB database of this test."""
    yield from _migrated_context(mariadb_url)


def _job_values(**overrides):
    values = {
        'server_group_id': 'f7a1c9e2-0b3d-4c55-9e1a-3d2b1c0a9f8e',
        'server_group_name': 'hadoop-cluster',
        'strategy': 'synchronized',
        'request': {'destination': 'dc-b', 'allowed_downtime_ms': 300,
                    'servers': ['master', 'worker-1']},
    }
    values.update(overrides)
    return values


def test_migrations_up_and_down(db_url):
    assert migration.version(db_url) is None
    migration.upgrade(db_url)
    assert migration.version(db_url) == migration.head() == '0006'
    assert SLM_TABLES <= migration.table_names(db_url)

    # The migrations create exactly what the models describe.
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = alembic_migration.MigrationContext.configure(
                connection, opts={'compare_type': True})
            assert autogenerate.compare_metadata(context, models.Base.metadata) == []
    finally:
        engine.dispose()

    migration.downgrade(db_url, 'base')
    assert migration.version(db_url) is None
    assert not SLM_TABLES & migration.table_names(db_url)


def test_job_members_and_events_round_trip(ctxt):
    job = db_api.create_job(ctxt, _job_values(), members=[
        {'server_id': 'srv-master', 'name': 'master', 'source_host': 'dc-a-cmp1',
         'destination_host': 'dc-b-cmp4'},
    ])
    assert job.status == states.PENDING
    worker = db_api.add_member(ctxt, job.id, {'server_id': 'srv-worker-1', 'name': 'worker-1',
                                              'source_host': 'dc-a-cmp2'})
    assert worker.state == states.QUEUED
    other = db_api.create_job(ctxt, _job_values(server_group_id='another-group',
                                                strategy='sequential'))

    db_api.update_job(ctxt, job.id, {'status': states.PLANNING})
    plan = {'members': {'srv-master': {'bandwidth_mbps': 612.5, 'start_s': 0.0},
                        'srv-worker-1': {'bandwidth_mbps': 387.5, 'start_s': 4.25}},
            'predicted_finish_s': 91.0}
    lease = datetime.datetime(2025, 11, 22, 10, 0, 30, 123456)
    db_api.update_job(ctxt, job.id, {'status': states.RUNNING, 'plan': plan,
                                     'owner': 'engine-1', 'lease_expires_at': lease})

    started = datetime.datetime(2025, 11, 22, 10, 0, 0, 250000)
    switchover = datetime.datetime(2025, 11, 22, 10, 1, 31, 7)
    master = db_api.list_members(ctxt, job.id)[0]
    db_api.update_member(ctxt, master.id, {'state': states.MIGRATING, 'started_at': started})
    db_api.update_member(ctxt, master.id, {'state': states.HELD,
                                           'bytes_transferred': 9 * 2**30 + 17})
    db_api.update_member(ctxt, master.id, {'state': states.SWITCHED_OVER,
                                           'switchover_at': switchover, 'downtime_ms': 212})

    # Two events of the same control tick keep the order they were written in.
    tick = datetime.datetime(2025, 11, 22, 10, 0, 1, 500001)
    db_api.add_event(ctxt, job.id, 'planned', {'predicted_finish_s': 91.0},
                     at=datetime.datetime(2025, 11, 22, 10, 0, 0, 1))
    db_api.add_event(ctxt, job.id, 'rate_changed', {'bandwidth_mbps': 600.0},
                     member_id=master.id, at=tick)
    db_api.add_event(ctxt, job.id, 'rate_changed', {'bandwidth_mbps': 400.0},
                     member_id=worker.id, at=tick)
    db_api.add_event(ctxt, other.id, 'planned', None)

    job = db_api.get_job(ctxt, job.id)
    assert job.status == states.RUNNING
    assert job.server_group_name == 'hadoop-cluster'
    assert job.request == _job_values()['request']
    assert job.plan == plan
    assert job.owner == 'engine-1'
    assert job.lease_expires_at == lease
    assert job.created_at <= job.updated_at
    assert [(m.server_id, m.name, m.source_host, m.destination_host, m.state)
            for m in job.members] == [
        ('srv-master', 'master', 'dc-a-cmp1', 'dc-b-cmp4', states.SWITCHED_OVER),
        ('srv-worker-1', 'worker-1', 'dc-a-cmp2', None, states.QUEUED),
    ]
    master = job.members[0]
    assert master.started_at == started
    assert master.switchover_at == switchover
    assert master.bytes_transferred == 9 * 2**30 + 17
    assert master.downtime_ms == 212
    assert job.members[1].bytes_transferred == 0

    events = db_api.list_events(ctxt, job.id)
    assert [(e.kind, e.member_id, e.detail) for e in events] == [
        ('planned', None, {'predicted_finish_s': 91.0}),
        ('rate_changed', master.id, {'bandwidth_mbps': 600.0}),
        ('rate_changed', worker.id, {'bandwidth_mbps': 400.0}),
    ]
    assert events[1].at == tick
    assert [e.detail for e in db_api.list_events(ctxt, job.id, member_id=worker.id)] == [
        {'bandwidth_mbps': 400.0}]

    assert [j.id for j in db_api.list_jobs(ctxt)] == [job.id, other.id]
    assert [j.id for j in db_api.list_jobs(ctxt, status=states.PENDING)] == [other.id]
    assert [j.id for j in db_api.list_jobs(ctxt, server_group_id='another-group')] == [
        other.id]


def test_invalid_status_transition_is_refused(ctxt):
    job = db_api.create_job(ctxt, _job_values())
    with pytest.raises(exception.InvalidStateTransition) as excinfo:
        db_api.update_job(ctxt, job.id, {'status': states.COMPLETED, 'error': None})
    message = str(excinfo.value)
    assert f'Job {job.id} cannot go from ' in message
    assert "'pending' to 'completed'" in message
    assert 'aborted, failed, planning' in message
    assert db_api.get_job(ctxt, job.id).status == states.PENDING

    db_api.update_job(ctxt, job.id, {'status': states.ABORTED, 'error': 'cancelled'})
    with pytest.raises(exception.InvalidStateTransition, match='none, it is final'):
        db_api.update_job(ctxt, job.id, {'status': states.RUNNING})
    with pytest.raises(exception.UnknownState, match="'done' is not a job state"):
        db_api.update_job(ctxt, job.id, {'status': 'done'})
    job = db_api.get_job(ctxt, job.id)
    assert (job.status, job.error) == (states.ABORTED, 'cancelled')

    member = db_api.add_member(ctxt, job.id, {'server_id': 's', 'source_host': 'h'})
    with pytest.raises(exception.InvalidStateTransition, match="'queued' to 'held'"):
        db_api.update_member(ctxt, member.id, {'state': states.HELD})
    with pytest.raises(exception.JobNotFound, match='Migration job nope could not be found'):
        db_api.update_job(ctxt, 'nope', {'status': states.PLANNING})


def test_stale_writer_cannot_apply_a_transition_twice(mariadb_ctxt):
    """Two engines on one MariaDB (SQLite has a single writer: no such race)."""
    ctxt = mariadb_ctxt
    job = db_api.create_job(ctxt, _job_values())
    # The second engine moves the job on while the first has read it in an
    # open transaction; the first one's snapshot still says pending.
    with db_api.get_context_manager(ctxt).writer.using(ctxt):
        assert db_api.get_job(ctxt, job.id).status == states.PENDING
        other = slm_context.get_admin_context(db_connection=ctxt.db_connection)
        db_api.update_job(other, job.id, {'status': states.PLANNING, 'owner': 'engine-2'})
        with pytest.raises(exception.ConcurrentUpdate, match='changed concurrently'):
            db_api.update_job(ctxt, job.id, {'status': states.PLANNING, 'owner': 'engine-1'})
    job = db_api.get_job(ctxt, job.id)
    assert (job.status, job.owner) == (states.PLANNING, 'engine-2')


def test_constraints_hold(ctxt):
    job = db_api.create_job(ctxt, _job_values())
    db_api.add_member(ctxt, job.id, {'server_id': 'srv-1', 'source_host': 'h1'})
    with pytest.raises(oslo_db_exception.DBDuplicateEntry):
        db_api.add_member(ctxt, job.id, {'server_id': 'srv-1', 'source_host': 'h2'})
    with pytest.raises(exception.JobNotFound):
        db_api.add_member(ctxt, 'no-such-job', {'server_id': 'srv-2', 'source_host': 'h1'})
    # Foreign keys are enforced on SQLite too (oslo.db's sqlite_fk).
    with pytest.raises(oslo_db_exception.DBReferenceError):
        db_api.add_event(ctxt, 'no-such-job', 'planned')
    assert len(db_api.list_members(ctxt, job.id)) == 1
