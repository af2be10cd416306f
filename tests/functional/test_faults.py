"""Faults of the real services: the broker drops an engine's connections, MariaDB deadlocks.

The broker test closes only the connections of the engine process it started
(found by the PID oslo.messaging puts in their names), with rabbitmqctl on
the local broker; other users of the broker are left alone. The tests that
restart a database or a broker mid-job run a MariaDB or a RabbitMQ of their
own, which they start and stop by PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from slm_plugin import context as slm_context
from slm_plugin.common import messaging as rpc
from slm_plugin.db import api as db
from slm_plugin.db import coordination, migration, states
from tests.functional.service_helpers import FINAL, Deployment, free_port, wait_for
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


class _PrivateServer:
    """A server process of the test's own, started as ``self.proc``; stopped by its PID:
    SIGTERM (it stops cleanly, closing its connections), SIGKILL if stuck."""

    proc: subprocess.Popen | None = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class PrivateMariaDB(_PrivateServer):
    """A MariaDB server of the test's own: its data directory, its port, its PID.

    Restarting it disturbs nobody else on the machine (the machine's MariaDB and
    the other tests' databases stay up). ``--skip-grant-tables``: the test's
    server lets any local client in as root.
    """

    def __init__(self, base):
        self.datadir = base / 'data'
        self.port = free_port()
        self.log = base / 'mariadb.log'
        self.proc = None
        install = subprocess.run(
            ['mariadb-install-db', '--no-defaults', f'--datadir={self.datadir}', '--user=root',
             '--skip-test-db', '--auth-root-authentication-method=normal'],
            capture_output=True, text=True, timeout=120, check=False)
        assert install.returncode == 0, install.stdout + install.stderr

    @property
    def url(self) -> str:
        return f'mysql+pymysql://root@127.0.0.1:{self.port}'

    def start(self):
        self.proc = subprocess.Popen(
            ['mariadbd', '--no-defaults', f'--datadir={self.datadir}', f'--port={self.port}',
             '--bind-address=127.0.0.1', f'--socket={self.datadir}/mysqld.sock',
             f'--pid-file={self.datadir}/mysqld.pid', '--user=root', '--skip-grant-tables',
             '--skip-name-resolve', f'--log-error={self.log}'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 60, interval=0.2, what='the private MariaDB to answer')

    def _answers(self):
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text('SELECT 1'))
            return True
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()

    def database(self, name: str) -> str:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE `{name}` CHARACTER SET utf8mb4'))
        engine.dispose()
        return f'{self.url}/{name}?charset=utf8mb4'


@pytest.fixture
def private_mariadb(tmp_path):
    if shutil.which('mariadb-install-db') is None or shutil.which('mariadbd') is None:
        pytest.skip('needs mariadb-install-db and mariadbd')
    server = PrivateMariaDB(tmp_path / 'mariadb')
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_database_restarted_mid_job_loses_nothing(private_mariadb, tmp_path, rabbit_url):
    """MariaDB stops for a few seconds while a job runs, then comes back on the same data.

    The engine cannot renew its lease or record anything meanwhile; it leaves the job
    (an interruption), claims it again once the database answers, resumes it from the
    stored plan and the cloud, and finishes it: every member started once, the job
    completed, its story complete.
    """
    db_url = private_mariadb.database('slm')
    d = Deployment(tmp_path, rabbit_url, db_url)
    d.options['simulation']['speed'] = '4'
    d.options['engine']['max_interruptions'] = '10'
    try:
        [engine] = d.start_services()
        status, body = d.create('web')
        assert status == 202, body
        job_id = body['group_migration']['id']
        wait_for(lambda: all(m['state'] == 'migrating' for m in d.show(job_id)['members']),
                 30, what='every member to migrate')
        private_mariadb.stop()
        time.sleep(4)  # several ticks and two lease durations without a database
        private_mariadb.start()
        final = d.wait_final(job_id, timeout=150)
        assert final['status'] == 'completed', final
        assert d.sim_stats()['starts'] == dict.fromkeys(WEB, 1)
        assert all(m['state'] == 'switched_over' for m in final['members']), final['members']
        kinds = [e['kind'] for e in d.events(job_id)]
        assert kinds.count('member.start_requested') == 3, kinds
        assert kinds[-1] == 'job.completed', kinds
        print('events:', kinds)
        # the outage was felt: the job was left and claimed again
        assert 'job.interrupted' in kinds or kinds.count('job.claimed') >= 2, kinds
        assert engine.poll() is None, 'the engine must survive its database going away'
    finally:
        d.stop_all()
        print(d.all_tails())


def _rabbitmq_server() -> str | None:
    """The rabbitmq-server script that runs a node as the calling user; None if none."""
    if shutil.which('rabbitmq-server') is None:
        return None
    # Debian's /usr/sbin/rabbitmq-server runs the node as the rabbitmq user (su), who could
    # not write the test's directories; the script it wraps runs it as us
    wrapped = '/usr/lib/rabbitmq/bin/rabbitmq-server'
    return wrapped if os.access(wrapped, os.X_OK) else shutil.which('rabbitmq-server')


class PrivateRabbitMQ(_PrivateServer):
    """A RabbitMQ node of the test's own: its node name, its ports, its directories, its PID.

    Stopping it disturbs nobody else on the machine: the machine's RabbitMQ (5672) and
    its users stay up. The node listens on 127.0.0.1 only (AMQP on ``port``, Erlang
    distribution on ``dist_port``), with no plugins (so no management listener), and
    keeps its data (Mnesia), logs, PID file and Erlang cookie (a HOME of its own) under
    ``base``. It registers with the machine's epmd (4369, shared by every node), or
    starts one on 127.0.0.1 if none runs. guest may connect, from loopback only.
    """

    def __init__(self, server: str, base):
        self.server = server
        self.base = base
        self.node = f'slmtest-{uuid.uuid4().hex[:8]}@localhost'
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.log = base / 'rabbitmq-server.log'
        self.pid_file = base / 'rabbitmq.pid'
        self.proc = None
        home = base / 'home'
        for path in (home, base / 'mnesia', base / 'log'):
            path.mkdir(parents=True)
        (base / 'rabbitmq-env.conf').write_text('')  # not the machine's /etc/rabbitmq one
        (base / 'enabled_plugins').write_text('[].\n')
        config = base / 'rabbitmq.conf'
        config.write_text(f'listeners.tcp.local = 127.0.0.1:{self.port}\n'
                          'loopback_users.guest = true\n')
        self.env = dict(
            os.environ, HOME=str(home),
            RABBITMQ_CONF_ENV_FILE=str(base / 'rabbitmq-env.conf'),
            RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
            RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(config),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / 'enabled_plugins'),
            RABBITMQ_MNESIA_BASE=str(base / 'mnesia'), RABBITMQ_LOG_BASE=str(base / 'log'),
            RABBITMQ_PID_FILE=str(self.pid_file),
            # the script then execs the node (erl, beam.smp) instead of waiting on it: the
            # process the test starts is the node, and its PID the one to signal
            RABBITMQ_ALLOW_INPUT='1',
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}',
            ERL_EPMD_ADDRESS='127.0.0.1')

    @property
    def url(self) -> str:
        return f'rabbit://guest:guest@127.0.0.1:{self.port}/'

    def start(self):
        with open(self.log, 'ab') as out:
            self.proc = subprocess.Popen([self.server, '-noinput'], env=self.env, cwd=self.base,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        wait_for(self._answers, 90, interval=0.3, what=f'the private RabbitMQ {self.node}')
        assert int(self.pid_file.read_text()) == self.proc.pid, 'the node is not our child'

    def _answers(self) -> bool:
        import kombu

        if self.proc.poll() is not None:
            raise AssertionError(f'rabbitmq-server exited with {self.proc.returncode}:\n'
                                 f'{self.log.read_text(errors="replace")[-3000:]}')
        connection = kombu.Connection(f'amqp://guest:guest@127.0.0.1:{self.port}//',
                                      connect_timeout=2)
        try:
            connection.connect()
            return True
        except Exception:
            return False
        finally:
            connection.release()



@pytest.fixture
def private_rabbitmq(tmp_path):
    server = _rabbitmq_server()
    if server is None:
        pytest.skip('needs rabbitmq-server')
    broker = PrivateRabbitMQ(server, tmp_path / 'rabbitmq')
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


def _moved(d: Deployment) -> dict:
    """Member -> host of the members slm-sim-cloud has moved."""
    from slm_plugin import context

    client = rpc.get_rpc_client(d.conf(), d.sim_topic, timeout=10)
    return client.call(context.get_admin_context(), 'moved')['moved']


def test_the_broker_restarted_mid_job_loses_nothing(private_rabbitmq, tmp_path, mariadb_url):
    """The broker stops for a few seconds while a job's members migrate, then comes back.

    Real: a RabbitMQ node of the test's own (restarted on the same port and data, its
    queues gone with it: SLM's are transient), slm-api, slm-engine and slm-sim-cloud as
    processes of their own, talking over it, and the machine's MariaDB. Meanwhile the
    engine cannot ask the cloud how its migrations go; oslo.messaging reconnects every
    service, and the engine carries on: the job completes, every member moved once and
    started once, and the API tells that story.
    """
    d = Deployment(tmp_path, private_rabbitmq.url, mariadb_url)
    d.options['simulation']['speed'] = '2'
    try:
        [engine] = d.start_services()
        status, body = d.create('web')
        assert status == 202, body
        job_id = body['group_migration']['id']
        wait_for(lambda: all(m['state'] == 'migrating' for m in d.show(job_id)['members']),
                 30, what='every member to migrate')
        assert d.show(job_id)['status'] == 'running'
        began = time.monotonic()
        private_rabbitmq.stop()
        time.sleep(4)  # the engine's ticks find no broker
        private_rabbitmq.start()
        print(f'the broker was away {time.monotonic() - began:.1f} s')
        # the outage fell mid-job: the job could not end without its engine (asked of the
        # API, which reads the database: the sim-cloud's queues may not be back yet; and
        # whether the migrations ended meanwhile depends on how long their reserves last at
        # the floor, as on QEMU)
        assert d.show(job_id)['status'] not in FINAL
        final = d.wait_final(job_id, timeout=90)
        kinds = [e['kind'] for e in d.events(job_id)]
        print('events:', kinds)
        assert final['status'] == 'completed', final
        assert all(m['state'] == 'switched_over' for m in final['members']), final['members']
        assert sorted(_moved(d)) == sorted(WEB)
        stats = d.sim_stats()
        assert stats['starts'] == dict.fromkeys(WEB, 1), stats
        assert stats['refused_starts'] == {}, stats
        assert kinds.count('member.start_requested') == 3, kinds
        assert kinds[-1] == 'job.completed', kinds
        for name, process in d.processes.items():
            assert process.poll() is None, f'{name} must survive the broker going away'
        assert 'Reconnected to AMQP server' in d.logs['engine-a'].read_text()
        # its RPC server listens again (its queue went with the broker and was declared anew)
        assert d.ping_engine('engine-a')
    finally:
        d.stop_all()
        print(d.all_tails())


def test_the_cloud_killed_and_restarted_mid_job_is_reported_truthfully(tmp_path, rabbit_url,
                                                                       mariadb_url):
    """slm-sim-cloud is killed (SIGKILL, by PID) while the job's members migrate, and a new
    one starts with none of their migrations (a simulated cloud keeps its state in memory).

    The engine must neither start a member again nor report one as still migrating: the
    job fails, saying that the cloud lost the migrations, and every member ends in a
    final state.
    """
    d = Deployment(tmp_path, rabbit_url, mariadb_url)
    d.options['simulation']['speed'] = '2'
    try:
        d.start_services()
        status, body = d.create('web')
        assert status == 202, body
        job_id = body['group_migration']['id']
        wait_for(lambda: all(m['state'] == 'migrating' for m in d.show(job_id)['members']),
                 30, what='every member to migrate')
        d.kill('sim-cloud')
        time.sleep(2)
        d.start_sim_cloud('sim-cloud-2')
        final = d.wait_final(job_id, timeout=150)
        print('final:', final['status'], final['error'],
              [(m['name'], m['state']) for m in final['members']])
        assert final['status'] == 'failed', final
        # the engine finds out either in its loop (the migrations vanished) or, if the cloud
        # did not answer for a while, when it resumes the job (no migration for them)
        assert ('no longer reports its migration' in final['error']
                or 'has no migration for it' in final['error']), final['error']
        assert d.sim_stats()['starts'] == {}, 'a member was started again'
        assert all(m['state'] not in ('migrating', 'held', 'queued') for m in final['members'])
    finally:
        d.stop_all()
        print(d.all_tails())
