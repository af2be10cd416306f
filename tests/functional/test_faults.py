"""Faults of the real services: the broker drops an engine's connections, MariaDB deadlocks.

The broker test closes only the connections of the engine process it started
(found by the PID oslo.messaging puts in their names), with rabbitmqctl on
the local broker; other users of the broker are left alone.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from slm_plugin import context as slm_context
from slm_plugin.db import api as db
from slm_plugin.db import coordination, migration, states
from tests.functional.service_helpers import Deployment, wait_for
from tests.functional.test_service import WEB

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240)]


def _rabbitmqctl(*args, timeout=60):
    return subprocess.run(['rabbitmqctl', *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _connections_of(pid: int) -> list[str]:
    """Broker-side ids of the connections whose oslo.messaging name carries pid."""
    result = _rabbitmqctl('list_connections', 'pid', 'client_properties', '--quiet')
    assert result.returncode == 0, result.stderr
    out = []
    for line in result.stdout.splitlines()[1:]:
        conn, _, properties = line.partition('\t')
        if f':{pid}:' in properties:
            out.append(conn)
    return out


@pytest.fixture
def broker_control(rabbit_url):
    if shutil.which('rabbitmqctl') is None or '127.0.0.1' not in rabbit_url:
        pytest.skip('needs rabbitmqctl of the local RabbitMQ')
    probe = _rabbitmqctl('list_connections', 'pid', '--quiet')
    if probe.returncode != 0:
        pytest.skip(f'rabbitmqctl cannot list connections here: {probe.stderr.strip()}')


def test_an_engine_whose_broker_connections_drop_finishes_its_job(
        broker_control, tmp_path, rabbit_url, mariadb_url):
    d = Deployment(tmp_path, rabbit_url, mariadb_url)
    d.options['simulation']['speed'] = '5'
    try:
        [engine] = d.start_services()
        status, body = d.create('web')
        assert status == 202, body
        job_id = body['group_migration']['id']
        wait_for(lambda: all(m['state'] == 'migrating' for m in d.show(job_id)['members']),
                 30, what='every member to migrate')
        dropped = _connections_of(engine.pid)
        assert dropped, 'the engine has no connection to the broker'
        for conn in dropped:
            closed = _rabbitmqctl('close_connection', conn, 'slm test: connection dropped')
            assert closed.returncode == 0, closed.stdout + closed.stderr
        final = d.wait_final(job_id, timeout=120)
        assert final['status'] == 'completed', final
        assert d.sim_stats()['starts'] == dict.fromkeys(WEB, 1)
        assert d.sim_stats()['refused_starts'] == {}
        log = d.logs['engine-a'].read_text()
        assert 'slm test: connection dropped' in log or 'Reconnected to AMQP server' in log
        kinds = [e['kind'] for e in d.events(job_id)]
        assert kinds.count('member.start_requested') == 3
    finally:
        d.stop_all()
        print(d.all_tails())


def test_a_deadlock_on_mariadb_is_retried(mariadb_url, monkeypatch):
    """Ending a job deadlocks with a bigger transaction; MariaDB rolls ours back; we retry."""
    migration.upgrade(mariadb_url)
    manager = db.create_context_manager(mariadb_url)
    ctxt = slm_context.get_admin_context(db_connection=manager)
    job = coordination.create_job(
        ctxt, {'server_group_id': 'g-1', 'server_group_name': 'g', 'strategy': 'parallel',
               'request': {}}, [{'server_id': 's-1', 'name': 's-1', 'source_host': 'h'}])
    coordination.claim_job(ctxt, job.id, 'engine-a', 30)
    for status in (states.PLANNING, states.RUNNING):
        db.update_job(ctxt, job.id, {'status': status})
    bystander = coordination.create_job(
        ctxt, {'server_group_id': 'g-2', 'server_group_name': 'g2', 'strategy': 'parallel',
               'request': {}}, [])

    attempts = []
    release = coordination._release_locks

    def counted(context, job_id):
        attempts.append(time.monotonic())
        return release(context, job_id)
    monkeypatch.setattr(coordination, '_release_locks', counted)

    other = sa.create_engine(mariadb_url, poolclass=sa.pool.NullPool)
    result = {}
    try:
        with other.connect() as conn:
            tx = conn.begin()
            # a big transaction (of another job), so that MariaDB picks ours as the victim
            conn.execute(sa.text(
                'INSERT INTO job_events (job_id, at, kind) VALUES (:j, NOW(6), :k)'),
                [{'j': bystander.id, 'k': f'other.{i}'} for i in range(200)])
            conn.execute(sa.text('SELECT name FROM job_locks WHERE job_id = :j FOR UPDATE'),
                         {'j': job.id})

            def finish():
                try:
                    result['job'] = coordination.finish_job(
                        slm_context.get_admin_context(db_connection=manager), job.id,
                        states.COMPLETED, owner='engine-a')
                except Exception as exc:  # reported below
                    result['error'] = exc
            t = threading.Thread(target=finish)
            t.start()
            # ours holds the job row and waits for the locks' rows; now we want the job row
            wait_for(lambda: len(attempts) == 1, 10, what='the first attempt')
            time.sleep(0.5)
            conn.execute(sa.text('UPDATE jobs SET error = :e WHERE id = :j'),
                         {'e': 'touched', 'j': job.id})
            tx.commit()
            t.join(30)
    finally:
        other.dispose()
    try:
        assert 'error' not in result, result.get('error')
        assert len(attempts) == 2, 'the deadlock was not retried'
        assert result['job'].status == states.COMPLETED
        assert coordination.lock_holders(ctxt, ['group:g-1', 'server:s-1']) == {}
        assert len(db.list_events(ctxt, bystander.id)) == 200
    finally:
        manager.dispose_pool()
