"""Running slm-api and slm-engine on a real Nova: ``[engine] cloud = nova``.

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

import datetime
import json
import pathlib
import shutil
import tempfile

import webob
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin.db import api as db
from slm_plugin.db import migration
from slm_plugin.db.manager import database_manager
from slm_plugin.engine import runner as job_runner
from slm_plugin.engine.service import EngineService
from slm_plugin.nova import compute_api
from slm_plugin.nova.backend import NovaBackend
from tests.functional.nova.agent_stand_in import ActuatedBackend, DriverActuator
from tests.functional.nova.base import NovaTestCase

MEMORY_MIB = 256
# converge after about 8, 4 and 2 s alone: a first pass shorter than a few control
# ticks ends before the engine has seen it move (tests/functional/nova/test_synchronized.py)
RATES = {'vm1': 32.0, 'vm2': 64.0, 'vm3': 128.0}
FINAL = ('completed', 'failed', 'aborted')


class EngineOnNovaTestCase(NovaTestCase):

    #: more of the slm conf, for the API and every engine: {section: {option: value}}
    slm_options: dict = {}
    def setUp(self):
        super().setUp()
        # the agent's part (max speeds, dirty rates) done to ProgressDriver: no libvirt
        # here (tests/functional/nova/agent_stand_in.py); a test may change the class
        self.actuator = DriverActuator()
        self.engine_backend_class = ActuatedBackend.with_actuator(self.actuator)
        self.start_hosts('dc1', 'a1', 'a2', 'a3')
        self.small = flavor = self.flavor('small', MEMORY_MIB)
        self.group, servers = self.boot_group('web', 'anti-affinity', 3, flavor)
        self.start_hosts('dc2', 'b1', 'b2', 'b3')
        self.ids = {s.name: s.id for s in servers}
        self.sources = {s.name: s.compute_host for s in servers}
        tmp = pathlib.Path(tempfile.mkdtemp(prefix='slm-nova-engine-'))
        self.addCleanup(shutil.rmtree, tmp, True)
        self.db_url = f'sqlite:///{tmp / "slm.db"}'
        migration.upgrade(self.db_url)
        self.tmp = tmp
        self.conf = self.slm_conf('api-host')
        self.app = self.build_api()

    # -- the service ------------------------------------------------------------------------

    def slm_conf(self, host: str, maintenance: dict | None = None):
        path = self.tmp / f'{host}.conf'
        sections = {'engine': {}, 'maintenance': {}}
        for section, options in self.slm_options.items():
            sections.setdefault(section, {}).update(options)
        sections['maintenance'].update(maintenance or {})
        path.write_text(
            f'[DEFAULT]\nhost = {host}\ntransport_url = fake:/\n'
            f'[database]\nconnection = {self.db_url}\n'
            '[api]\nauth_strategy = noauth\n'
            '[engine]\ncloud = nova\ncontrol_tick = 0.1\nscan_interval = 0.2\n'
            'lease_duration = 6\n'
            + ''.join(f'{k} = {v}\n' for k, v in sections.pop('engine').items())
            + ''.join(f'[{section}]\n' + ''.join(f'{k} = {v}\n' for k, v in options.items())
                      for section, options in sections.items()))
        conf = cfg.ConfigOpts()
        slm_plugin.conf.register_opts(conf)
        conf(['--config-file', str(path)], project='slm', default_config_files=[],
             default_config_dirs=[])
        return conf

    def backend(self, conf, cls=NovaBackend, connection=None) -> NovaBackend:
        """A backend on its own openstacksdk connection (``connection()``, by default
        a plain one to the in-process Nova)."""
        def connect(_conf):
            conn = (connection or self.connect)()
            compute_api.negotiate(conn)
            return conn
        return cls(conf, connect=connect)

    def engine_backend(self, conf) -> NovaBackend:
        """The backend of an engine; a test changes its class or its connection here."""
        return self.backend(conf, cls=self.engine_backend_class,
                            connection=self.engine_connection)

    def engine_connection(self):
        """The connection an engine's backend reaches Nova by (e.g. with a fault injector)."""
        return self.connect()

    def build_api(self):
        from slm_plugin.api.app import build_app

        class Casts:  # engines scan for new jobs here (see the module's docstring)
            def job_created(self, ctxt, job_id):
                pass

        self.db = database_manager(self.conf)
        self.addCleanup(self.db.dispose_pool)
        return build_app(self.conf, backend=self.backend(self.conf), engine_api=Casts(),
                         db_manager=self.db)

    def engine(self, host: str) -> EngineService:
        return self.engine_with(host)

    def engine_with(self, host: str, **maintenance) -> EngineService:
        conf = self.slm_conf(host, maintenance)
        service = EngineService(conf, backend=self.engine_backend(conf))
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



def epoch(text: str) -> float:
    """Seconds since the epoch of an API timestamp."""
    t = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return t.timestamp()
