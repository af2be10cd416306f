"""The service on a real Nova: slm-api and slm-engine with ``[engine] cloud = nova``.

Nova 34 runs in this process (NovaTestCase); the API application and the
engines run here too, on an SQLite database of the test, and reach Nova only
through openstacksdk (the ``nova`` cloud driver). Engines find new jobs by
scanning the database (``[engine] scan_interval``); the RPC cast that
shortens that wait is tested on the real broker in tests/functional/test_service.py.

An engine "dies" here by leaving its job without releasing the lease, as a
killed process does (the thread stops, the lease runs out); another engine
then takes the job over from the database and from what Nova reports.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
import time

import webob
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin.common import compute_api
from slm_plugin.db import api as db
from slm_plugin.db import migration
from slm_plugin.engine import runner as job_runner
from slm_plugin.engine.clouds.nova import NovaCloudDriver
from slm_plugin.engine.service import EngineService, database_manager
from slm_plugin.execution import cloud as api
from slm_plugin.execution.nova import NovaCloud
from tests.functional.nova.base import IMAGE, NovaTestCase
from tests.functional.nova.progress_driver import CONTROL

MEMORY_MIB = 256
RATES = {'vm1': 48.0, 'vm2': 128.0, 'vm3': 512.0}  # converge after about 5, 2 and 0.5 s
FINAL = ('completed', 'failed', 'aborted')


class EngineOnNovaTest(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.start_hosts('dc1', 'a1', 'a2', 'a3')
        flavor = self.flavor('small', MEMORY_MIB)
        self.group, servers = self.boot_group('web', 'anti-affinity', 3, flavor)
        self.start_hosts('dc2', 'b1', 'b2', 'b3')
        self.ids = {s.name: s.id for s in servers}
        self.sources = {s.name: s.compute_host for s in servers}
        tmp = pathlib.Path(tempfile.mkdtemp(prefix='slm-nova-engine-'))
        self.db_url = f'sqlite:///{tmp / "slm.db"}'
        migration.upgrade(self.db_url)
        self.tmp = tmp
        self.conf = self.slm_conf('api-host')
        self.app = self.build_api()

    # -- the service ------------------------------------------------------------------------

    def slm_conf(self, host: str, maintenance: dict | None = None):
        path = self.tmp / f'{host}.conf'
        path.write_text(
            f'[DEFAULT]\nhost = {host}\ntransport_url = fake:/\n'
            f'[database]\nconnection = {self.db_url}\n'
            '[api]\nauth_strategy = noauth\n'
            '[engine]\ncloud = nova\ncontrol_tick = 0.1\nscan_interval = 0.2\n'
            'lease_duration = 6\n'
            '[maintenance]\n' + ''.join(f'{k} = {v}\n' for k, v in (maintenance or {}).items()))
        conf = cfg.ConfigOpts()
        slm_plugin.conf.register_opts(conf)
        conf(['--config-file', str(path)], project='slm', default_config_files=[],
             default_config_dirs=[])
        return conf

    def driver(self, conf) -> NovaCloudDriver:
        def connect(_conf):
            conn = self.connect()
            compute_api.negotiate(conn)
            return conn
        return NovaCloudDriver(conf, connect=connect)

    def build_api(self):
        from slm_plugin.api.app import build_app

        class Casts:  # engines scan for new jobs here (see the module's docstring)
            def job_created(self, ctxt, job_id):
                pass

        self.db = database_manager(self.conf)
        self.addCleanup(self.db.dispose_pool)
        return build_app(self.conf, driver=self.driver(self.conf), engine_api=Casts(),
                         db_manager=self.db)

    def engine(self, host: str) -> EngineService:
        return self.engine_with(host)

    def engine_with(self, host: str, **maintenance) -> EngineService:
        conf = self.slm_conf(host, maintenance)
        service = EngineService(conf, driver=self.driver(conf))
        service.start()
        self.addCleanup(service.stop, 10)
        return service

    def crash(self, service: EngineService) -> None:
        """Stop an engine as a killed process stops: its jobs' leases are not released."""
        with service._lock:
            runners = list(service._runners.values())
            threads = list(service._threads.values())
        for runner in runners:
            runner._hand_over = lambda why: None  # a dead process releases nothing
        service.stop(10)
        for thread in threads:
            self.assertFalse(thread.is_alive())

    def call(self, method: str, path: str, body=None):
        req = webob.Request.blank(path, method=method, headers={'Accept': 'application/json'})
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = 'application/json'
        resp = req.get_response(self.app)
        return resp.status_int, (resp.json if resp.body else None)

    def create(self, **request):
        status, body = self.call('POST', '/v1/group-migrations',
                                 {'group_migration': {'group': 'web', **request}})
        self.assertEqual(202, status, body)
        return body['group_migration']['id']

    def show(self, job_id):
        status, body = self.call('GET', f'/v1/group-migrations/{job_id}')
        self.assertEqual(200, status, body)
        return body['group_migration']

    def wait_final(self, job_id, timeout=90.0):
        return self.wait_for(lambda: (lambda j: j if j['status'] in FINAL else None)(
            self.show(job_id)), timeout=timeout, interval=0.2, what=f'job {job_id} to end')

    def events(self, job_id):
        ctxt = slm_context.RequestContext(is_admin=True, db_connection=self.db)
        members = {m.id: m.name for m in db.list_members(ctxt, job_id)}
        return [(e.kind, members.get(e.member_id), e.detail or {})
                for e in db.list_events(ctxt, job_id)]

    def started(self, job_id, kind=job_runner.START_ACCEPTED):
        return {m for k, m, _ in self.events(job_id) if k == kind}

    def assert_moved_once(self, job):
        for m in job['members']:
            name = m['name']
            migs = self.live_migrations(self.ids[name])
            self.assertEqual(1, len(migs), f'{name}: {migs}')
            self.assertEqual('completed', migs[0].status)
            self.assertEqual(self.sources[name], migs[0].source_compute)
            server = self.conn.compute.get_server(self.ids[name])
            self.assertEqual('dc2', server.availability_zone)
            self.assertEqual(m['destination_host'], server.compute_host)
            self.assertEqual('switched_over', m['state'])
        hosts = {self.host_of(sid) for sid in self.ids.values()}
        self.assertEqual(3, len(hosts), 'anti-affinity kept')

    # -- tests ------------------------------------------------------------------------------

    def test_a_job_created_through_the_api_moves_the_group_through_nova(self):
        self.engine('engine-1')
        job_id = self.create(target={'availability_zone': 'dc2'}, strategy='synchronized')

        job = self.wait_final(job_id)

        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        notes = ' '.join(job['plan']['notes'])
        self.assertIn('dirty rates are not known', notes)  # what discovery had to assume
        for _, name, detail in [e for e in self.events(job_id)
                                if e[0] == job_runner.START_ACCEPTED]:
            self.assertEqual(self.ids[name], detail['server_id'])
            self.assertIn('known', detail)
        # the switchover instants the API shows are Nova's order of events
        switched = sorted(m['switchover_at'] for m in job['members'])
        self.assertTrue(all(switched), job['members'])

    def test_requests_nova_cannot_carry_out_are_refused_with_its_reason(self):
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'web', 'target': {'availability_zone': 'dc9'}}})
        self.assertEqual(400, status)
        self.assertEqual("No compute host is in availability zone 'dc9'; zones: dc1, dc2.",
                         body['error']['message'])
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'no-such-group', 'target': {'availability_zone': 'dc2'}}})
        self.assertEqual(404, status)
        self.assertIn('no-such-group', body['error']['message'])
        # a member already migrating (started outside SLM): a conflict, nothing created
        CONTROL.set_rate(self.ids['vm1'], 1.0)
        NovaCloud(self.conn, {'vm1': self.ids['vm1']}).start('vm1', 'b1', None)
        self.wait_for(lambda: self.conn.compute.get_server(self.ids['vm1']).task_state,
                      what='vm1 migrating')
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'web', 'target': {'availability_zone': 'dc2'}}})
        self.assertEqual(409, status, body)
        self.assertIn('already migrating', body['error']['message'])
        status, body = self.call('GET', '/v1/group-migrations')
        self.assertEqual([], body['group_migrations'])

    def test_another_engine_takes_over_and_releases_the_group_together(self):
        for name, rate in RATES.items():
            CONTROL.set_rate(self.ids[name], rate)
        first = self.engine('engine-1')
        job_id = self.create(target={'availability_zone': 'dc2'}, strategy='synchronized')
        self.wait_for(lambda: self.started(job_id) == set(RATES), timeout=60,
                      what='every member started by engine-1')

        self.crash(first)
        self.engine('engine-2')
        job = self.wait_final(job_id)

        self.assertEqual('completed', job['status'], job)
        self.assertEqual('engine-2', job['owner'])
        self.assert_moved_once(job)
        events = self.events(job_id)
        kinds = [k for k, _, _ in events]
        self.assertIn('job.taken_over', kinds)
        # the last resumption is engine-2's (a loaded engine-1 may have lost and
        # reclaimed its own lease before)
        resumed = [d for k, _, d in events if k == 'job.resumed'][-1]
        self.assertEqual(sorted(RATES), resumed['started'])
        self.assertEqual([], resumed['lost'])
        # every start was asked for once, by engine-1; engine-2 adopted them
        requested = [m for k, m, _ in events if k == job_runner.START_REQUESTED]
        self.assertEqual(sorted(RATES), sorted(requested))
        # held by engine-1 or engine-2, all released together by engine-2's force-completes
        jobs = {name: CONTROL.jobs[sid] for name, sid in self.ids.items()}
        self.assertTrue(all(j.forced_at for j in jobs.values()), jobs)
        converged = [j.converged_at for j in jobs.values()]
        switched = [j.switched_over_at for j in jobs.values()]
        self.assertGreaterEqual(min(j.forced_at for j in jobs.values()), max(converged))
        self.assertLess(max(switched) - min(switched), (max(converged) - min(converged)) / 2)

    def test_a_migration_that_ended_while_no_engine_owned_the_job_is_adopted(self):
        CONTROL.reset(hold=False)  # the hypervisor switches over by itself, as libvirt does
        for name, rate in RATES.items():
            CONTROL.set_rate(self.ids[name], rate)
        first = self.engine('engine-1')
        job_id = self.create(target={'availability_zone': 'dc2'}, strategy='parallel')
        self.wait_for(lambda: self.started(job_id) == set(RATES), timeout=60,
                      what='every member started by engine-1')
        self.crash(first)
        self.wait_for(lambda: self.live_migrations(self.ids['vm3'])[-1].status == 'completed',
                      timeout=30, what='vm3 to arrive while no engine owns the job')
        vm3_done = time.time()

        self.engine('engine-2')
        job = self.wait_final(job_id)

        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        [vm3] = [m for m in job['members'] if m['name'] == 'vm3']
        # its switchover is Nova's instant of the end, not engine-2's first look
        record = self.live_migrations(self.ids['vm3'])[-1]
        self.assertIsNotNone(vm3['switchover_at'])
        self.assertLessEqual(_epoch(vm3['switchover_at']), vm3_done + 1.0)
        self.assertIsNotNone(record.updated_at)

    def test_host_maintenance_moves_its_groups_and_its_lone_servers(self):
        """What the service.update hook does for a disabled host (the notification itself
        is tested on the real broker in tests/functional/test_service.py).

        The hypervisor switches over by itself here, as libvirt does: nobody
        force-completes a lone server's plain migration."""
        CONTROL.reset(hold=False)
        host = self.sources['vm1']
        flavor = self.conn.compute.find_flavor('small')
        solo = self.conn.compute.create_server(
            name='solo', image_id=IMAGE, flavor_id=flavor.id, networks='none',
            availability_zone=f'dc1:{host}')
        solo = self.conn.compute.wait_for_server(solo, status='ACTIVE', interval=0.1, wait=60)
        self.assertEqual(host, solo.compute_host)
        self.conn.compute.update_service(
            next(s for s in self.conn.compute.services(binary='nova-compute')
                 if s.host == host), status='disabled', disabled_reason='maintenance: DIMMs')
        engine = self.engine_with('engine-1', evacuate_lone_servers='true',
                                  target_availability_zone='dc2')

        created = engine.evacuate_host(host, 'maintenance: DIMMs')

        self.assertEqual(1, len(created), 'one job: the group with a member on the host')
        job = self.wait_final(created[0])
        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        self.wait_for(lambda: self.host_of(solo.id) != host, timeout=60,
                      what='the lone server to leave the host')
        [record] = self.live_migrations(solo.id)
        self.wait_for(lambda: self.conn.compute.get_server(solo.id).status == 'ACTIVE'
                      and not self.conn.compute.get_server(solo.id).task_state, timeout=30,
                      what='solo settled')
        self.assertEqual(host, record.source_compute)
        status, body = self.call('GET', '/v1/group-migrations')
        self.assertEqual(1, len(body['group_migrations']), 'no job for the lone server')

    def test_adopting_without_the_handle_finds_the_migration_by_its_start(self):
        """An engine that died between asking and recording left only the request's instant."""
        CONTROL.set_rate(self.ids['vm2'], 64.0)
        before = time.time()
        mine = NovaCloud(self.conn, {'vm2': self.ids['vm2']})
        mine.start('vm2', 'b2', None)
        other = NovaCloud(self.conn, dict(self.ids))

        self.assertTrue(other.adopt('vm2', before))
        self.assertFalse(other.adopt('vm1', before), 'vm1 was never started')
        self.wait_for(lambda: other.progress()['vm2'].status == api.HELD, timeout=30,
                      what='vm2 converged')
        other.hold('vm2', False)  # a release through the adopting cloud completes it
        self.wait_for(lambda: other.progress()['vm2'].status == api.COMPLETED, timeout=30,
                      what='vm2 completed')
        [record] = self.live_migrations(self.ids['vm2'])
        self.assertEqual(record.id, other.migration_of('vm2')['migration_id'])
        self.assertEqual('b2', self.host_of(self.ids['vm2']))
        self.assertNotIn('vm1', other.progress())


def _epoch(text: str) -> float:
    import datetime
    t = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return t.timestamp()
