"""slm-api on a real database: bad input, policy, conflicts, aborts, dry runs.

The WSGI application runs in the test process on MariaDB (and on SQLite
where the embedded default matters); instead of the engines' RPC topic, a
recorder notes which jobs the API announced, so that a test can check that
a refused request announced nothing. The concurrency test goes through a
real HTTP server on loopback.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa
import webob
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin.api.app import build_app
from slm_plugin.cmd.api import make_server
from slm_plugin.db import api as db
from slm_plugin.db import coordination, migration, models
from slm_plugin.db.manager import database_manager
from slm_plugin.simulated.backend import SimulatedBackend
from tests.functional.service_helpers import SCENARIO

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]

BASE = '/v1/group-migrations'
MEMBER = {'X-Roles': 'member', 'X-Project-Id': 'p-1', 'X-User-Id': 'u-1'}


class Announced:
    """Stands in for the engines' RPC API: the jobs the API told them about."""

    def __init__(self):
        self.jobs = []
        self._lock = threading.Lock()

    def job_created(self, ctxt, job_id):
        with self._lock:
            self.jobs.append(job_id)
        return True


def _conf(tmp_path, db_url, **sections):
    options = {
        'DEFAULT': {'transport_url': 'fake://'},
        'database': {'connection': db_url},
        'api': {'auth_strategy': 'noauth'},
        'engine': {'scenario': str(SCENARIO)},
    }
    for name, values in sections.items():
        options.setdefault(name, {}).update(values)
    path = tmp_path / 'api.conf'
    path.write_text(''.join(f'[{s}]\n' + ''.join(f'{k} = {v}\n' for k, v in vals.items())
                            for s, vals in options.items()))
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf(['--config-file', str(path)], project='slm', default_config_files=[],
         default_config_dirs=[])
    return conf


class Client:
    def __init__(self, conf, db_url):
        migration.upgrade(db_url)
        self.db = database_manager(conf)  # as slm-api makes it
        self.announced = Announced()
        self.app = build_app(conf, backend=SimulatedBackend(conf),
                             engine_api=self.announced, db_manager=self.db)

    def context(self):
        return slm_context.get_admin_context(db_connection=self.db)

    def __call__(self, method, path, body=None, raw=None, headers=None, content_type=None):
        req = webob.Request.blank(path, method=method, headers=headers or {})
        if raw is not None or body is not None:
            req.body = raw if raw is not None else json.dumps(body).encode()
            req.content_type = content_type or 'application/json'
        response = req.get_response(self.app)
        return response.status_int, response.json if response.body else None

    def create(self, headers=None, **fields):
        return self('POST', BASE, {'group_migration': fields}, headers=headers)


@pytest.fixture
def api(tmp_path, mariadb_url):
    client = Client(_conf(tmp_path, mariadb_url), mariadb_url)
    yield client
    client.db.dispose_pool()


def _message(body):
    return body['error']['message']


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize('raw, content_type, code, expected', [
    (b'{"group_migration": {"group": "web"', 'application/json', 400, 'not JSON'),
    (b'   ', 'application/json', 400, 'it is empty'),
    (b'group=web', 'application/x-www-form-urlencoded', 415, 'application/json'),
    (b'\xff\xfe', 'application/json', 400, 'not JSON'),
    (b'[]', 'application/json', 400, "[] is not of type 'object'"),
    (b'{}', 'application/json', 400, "'group_migration' is a required property"),
])
def test_malformed_bodies_are_refused_with_the_reason(api, raw, content_type, code, expected):
    status, body = api('POST', BASE, raw=raw, content_type=content_type)
    assert status == code, body
    assert expected in _message(body)
    assert body['error']['code'] == code
    assert api.announced.jobs == []


@pytest.mark.parametrize('fields, expected', [
    ({'group': 'web', 'colour': 'blue'},
     "group_migration: Additional properties are not allowed ('colour' was unexpected)"),
    ({}, "group_migration: 'group' is a required property"),
    ({'group': ''}, 'group_migration.group: must be the id or the name of a server group'),
    ({'group': 7}, 'group_migration.group: must be the id or the name of a server group'),
    ({'group': 'web', 'target': {}},
     'group_migration.target: give exactly one of availability_zone, aggregate and hosts'),
    ({'group': 'web', 'target': {'availability_zone': 'dc-b', 'hosts': ['b-1']}},
     'group_migration.target: give exactly one of availability_zone, aggregate and hosts'),
    ({'group': 'web', 'target': {'region': 'x'}},
     "group_migration.target: Additional properties are not allowed ('region' was unexpected)"),
    ({'group': 'web', 'target': {'hosts': ['b-1', 'b-1']}},
     'group_migration.target.hosts: ' + "['b-1', 'b-1'] has non-unique elements"),
    ({'group': 'web', 'strategy': 'fastest'}, "group_migration.strategy: 'fastest' is not one"),
    ({'group': 'web', 'options': {'failure_policy': 'stop'}},
     "group_migration.options.failure_policy: 'stop' is not one of ['abort', 'continue']"),
    ({'group': 'web', 'options': {'allowed_downtime_ms': 0}},
     'group_migration.options.allowed_downtime_ms: 0 is less than the minimum of 1'),
    ({'group': 'web', 'options': {'allowed_downtime_ms': '300'}},
     "group_migration.options.allowed_downtime_ms: '300' is not of type 'integer'"),
    ({'group': 'web', 'options': {'dry_run': 'yes'}},
     "group_migration.options.dry_run: 'yes' is not of type 'boolean'"),
    ({'group': 'web', 'reason': ''},
     'group_migration.reason: must be a text of 1 to 255 characters'),
    ({'group': 'web', 'reason': 'x' * 256},
     'group_migration.reason: must be a text of 1 to 255 characters'),
    ({'group': 'web', 'options': {'deadline': 5}},
     "group_migration.options: Additional properties are not allowed ('deadline' was "
     "unexpected)"),
])
def test_invalid_fields_name_the_field_and_the_problem(api, fields, expected):
    status, body = api.create(**fields)
    assert status == 400, body
    assert _message(body) == f'Invalid input for field {expected}' or \
        _message(body).startswith(f'Invalid input for field {expected}')
    assert api.announced.jobs == []
    assert db.list_jobs(api.context()) == []


@pytest.mark.parametrize('target, expected', [
    ({'availability_zone': 'dc-z'}, 'Availability zone dc-z does not exist; there are: '
                                    'dc-a, dc-b.'),
    ({'aggregate': 'fast-ssd'}, 'Aggregate fast-ssd does not exist'),
    ({'hosts': ['b-1', 'b-9']}, 'Host b-9 does not exist.'),
    ({'availability_zone': 'dc-a'}, 'Server web-1 of group web is already in dc-a.'),
])
def test_a_target_that_cannot_take_the_group_is_a_bad_request(api, target, expected):
    status, body = api.create(group='web', target=target)
    assert status == 400, body
    assert _message(body) == expected or _message(body).startswith(expected)
    assert db.list_jobs(api.context()) == []


def test_an_unknown_group_is_not_found(api):
    status, body = api.create(group='hbase')
    assert status == 404
    assert _message(body) == 'Server group hbase could not be found.'
    assert api.announced.jobs == []


def test_unknown_jobs_paths_and_methods(api):
    missing = '2b0d0a4c-8b8e-4f59-9f1f-8f4d7d6b5a11'
    for method, path in (('GET', f'{BASE}/{missing}'), ('GET', f'{BASE}/{missing}/events'),
                         ('POST', f'{BASE}/{missing}/abort')):
        status, body = api(method, path)
        assert status == 404, (method, path)
        assert _message(body) == f'Migration job {missing} could not be found.'
    assert api('GET', '/v2/things')[0] == 404
    status, body = api('DELETE', BASE)
    assert status == 405 and 'DELETE' in _message(body)
    status, body = api('GET', f'{BASE}?colour=blue')
    assert status == 400 and 'colour' in _message(body)
    status, body = api('GET', f'{BASE}?status=sleeping')
    assert status == 400 and 'sleeping' in _message(body)


def test_a_body_too_large_is_refused(api):
    status, body = api('POST', BASE, raw=b'{"group_migration": {"group": "' + b'x' * 70000
                       + b'"}}')
    assert status == 413


# -- policy ----------------------------------------------------------------------------------


def test_only_administrators_may_act_by_default(api):
    status, body = api.create(group='web')
    assert status == 202
    job_id = body['group_migration']['id']
    for method, path, payload in (
            ('POST', BASE, {'group_migration': {'group': 'db'}}),
            ('GET', BASE, None),
            ('GET', f'{BASE}/{job_id}', None),
            ('GET', f'{BASE}/{job_id}/events', None),
            ('POST', f'{BASE}/{job_id}/abort', None)):
        status, body = api(method, path, payload, headers=MEMBER)
        assert status == 403, (method, path, body)
        assert 'slm:group_migration:' in _message(body)
    # the refused requests changed nothing
    jobs = db.list_jobs(api.context())
    assert [j.id for j in jobs] == [job_id] and jobs[0].status == 'pending'
    assert api.announced.jobs == [job_id]
    # the version documents stay open
    assert api('GET', '/', headers=MEMBER)[0] == 200


def test_a_policy_file_can_open_an_operation_to_other_roles(tmp_path, mariadb_url):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text('"slm:group_migration:list": "role:reader"\n')
    conf = _conf(tmp_path, mariadb_url, oslo_policy={'policy_file': str(policy_file)})
    client = Client(conf, mariadb_url)
    try:
        reader = dict(MEMBER, **{'X-Roles': 'reader'})
        assert client('GET', BASE, headers=reader)[0] == 200
        assert client('POST', BASE, {'group_migration': {'group': 'web'}},
                      headers=reader)[0] == 403
    finally:
        client.db.dispose_pool()


def test_keystone_mode_refuses_a_request_without_a_token(tmp_path, mariadb_url):
    conf = _conf(tmp_path, mariadb_url, api={'auth_strategy': 'keystone'},
                 keystone_authtoken={'www_authenticate_uri': 'http://127.0.0.1:5000/v3'})
    client = Client(conf, mariadb_url)
    try:
        status, _ = client('GET', BASE)
        assert status == 401
        assert client('GET', '/')[0] == 200
    finally:
        client.db.dispose_pool()


# -- conflicts -------------------------------------------------------------------------------


def test_a_group_already_moving_is_a_conflict_and_a_finished_job_frees_it(api):
    status, body = api.create(group='web')
    assert status == 202
    first = body['group_migration']['id']
    status, body = api.create(group='web', target={'hosts': ['b-1', 'b-2', 'b-3']})
    assert status == 409
    assert first in _message(body) and 'server group' in _message(body)
    # the other group is free
    assert api.create(group='db')[0] == 202
    # aborting the pending job, which no engine holds, ends it at once and frees the group
    status, body = api('POST', f'{BASE}/{first}/abort')
    assert status == 202 and body['group_migration']['status'] == 'aborted'
    # its members never started, and now never will
    assert {m['state'] for m in body['group_migration']['members']} == {'aborted'}
    status, body = api('POST', f'{BASE}/{first}/abort')
    assert status == 409 and 'already ended (aborted)' in _message(body)
    assert api.create(group='web')[0] == 202


def test_a_server_already_moving_in_another_job_is_a_conflict(api):
    ctxt = api.context()
    from slm_plugin.scenario import loader
    from slm_plugin.simulated.backend import server_id
    scenario = loader.load(SCENARIO)
    held = server_id(scenario, 'web-2')
    other = coordination.create_job(
        ctxt, {'server_group_id': 'c0ffee00-0000-4000-8000-000000000000',
               'server_group_name': 'lone', 'strategy': 'sequential', 'request': {}},
        [{'server_id': held, 'name': 'web-2', 'source_host': 'a-2'}])
    status, body = api.create(group='web')
    assert status == 409
    assert _message(body) == (f'The server {held} is already being migrated by job '
                              f'{other.id}.')
    assert [j.id for j in db.list_jobs(ctxt)] == [other.id]


def _post(port, payload):
    req = urllib.request.Request(f'http://127.0.0.1:{port}{BASE}', method='POST',
                                 data=json.dumps(payload).encode(),
                                 headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize('backend', ['mariadb', 'sqlite'])
def test_of_concurrent_requests_for_one_group_exactly_one_wins(request, tmp_path, backend):
    url = request.getfixturevalue(f'{backend}_url')
    client = Client(_conf(tmp_path, url), url)
    server = make_server(client.app, '127.0.0.1', 0)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        n = 12
        barrier = threading.Barrier(n)
        results = [None] * n

        def ask(i):
            barrier.wait()
            group = 'web' if i % 2 == 0 else 'db'
            results[i] = (group, *_post(port, {'group_migration': {'group': group}}))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.shutdown()
        server.server_close()
        serving.join(10)
    try:
        for group in ('web', 'db'):
            mine = [r for r in results if r[0] == group]
            codes = sorted(code for _, code, _ in mine)
            assert codes == [202] + [409] * (len(mine) - 1), mine
        ctxt = client.context()
        jobs = db.list_jobs(ctxt)
        assert sorted(j.server_group_name for j in jobs) == ['db', 'web']
        assert sorted(client.announced.jobs) == sorted(j.id for j in jobs)
        # nothing started: the winners wait for an engine, the losers left no trace
        assert {j.status for j in jobs} == {'pending'}
        with client.db.reader.using(ctxt):
            locks = ctxt.session.execute(sa.select(models.JobLock.job_id)).scalars().all()
            events = ctxt.session.execute(sa.select(models.JobEvent.kind)).scalars().all()
        assert len(locks) == 2 + 3 + 2  # two groups, five servers
        assert events == ['job.created', 'job.created']
    finally:
        client.db.dispose_pool()


# -- reading ---------------------------------------------------------------------------------


def test_the_reason_given_is_kept_with_the_job(api):
    status, body = api.create(group='web', reason='rack 12 power work')
    assert status == 202, body
    job_id = body['group_migration']['id']
    status, body = api('GET', f'{BASE}/{job_id}')
    assert body['group_migration']['reason'] == 'rack 12 power work'
    [created] = [e for e in db.list_events(api.context(), job_id) if e.kind == 'job.created']
    assert created.detail['reason'] == 'rack 12 power work'


def test_a_dry_run_returns_the_plan_and_stores_nothing(api):
    status, body = api.create(group='db', options={'dry_run': True, 'allowed_downtime_ms': 100})
    assert status == 200, body
    plan = body['group_migration']['plan']
    assert body['group_migration']['dry_run'] is True
    assert {m['member'] for m in plan['members']} == {'db-1', 'db-2'}
    assert all(m['destination'].startswith('b-') for m in plan['members'])
    assert set(plan['predicted']) == {'db-1', 'db-2'}
    assert all(p['downtime_s'] <= 0.1 for p in plan['predicted'].values())
    assert db.list_jobs(api.context()) == []
    assert api.announced.jobs == []


def test_list_filters_by_status_and_group(api):
    web = api.create(group='web')[1]['group_migration']['id']
    db_job = api.create(group='db')[1]['group_migration']['id']
    api('POST', f'{BASE}/{db_job}/abort')
    listed = api('GET', BASE)[1]['group_migrations']
    assert [j['id'] for j in listed] == [web, db_job]
    assert [j['id'] for j in api('GET', f'{BASE}?status=aborted')[1]['group_migrations']] == \
        [db_job]
    assert [j['id'] for j in api('GET', f'{BASE}?group=web')[1]['group_migrations']] == [web]
    shown = api('GET', f'{BASE}/{web}')[1]['group_migration']
    assert shown['status'] == 'pending' and shown['plan'] is None
    assert [m['state'] for m in shown['members']] == ['queued'] * 3
    events = api('GET', f'{BASE}/{db_job}/events')[1]['events']
    assert [e['kind'] for e in events] == ['job.created', 'job.abort_requested', 'job.aborted']


def test_list_pages_with_limit_and_marker(api):
    ids = []
    for _ in range(3):  # one group at a time: abort each pending job to free the group
        job_id = api.create(group='web')[1]['group_migration']['id']
        api('POST', f'{BASE}/{job_id}/abort')
        ids.append(job_id)
    ids.append(api.create(group='db')[1]['group_migration']['id'])

    status, first = api('GET', f'{BASE}?limit=3&status=aborted')
    assert status == 200
    assert [j['id'] for j in first['group_migrations']] == ids[:3]
    [link] = first['group_migrations_links']
    assert link['rel'] == 'next'
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link['href']).query)
    assert query == {'limit': ['3'], 'status': ['aborted'], 'marker': [ids[2]]}
    status, rest = api('GET', f'{BASE}?limit=3&marker={ids[1]}')
    assert [j['id'] for j in rest['group_migrations']] == ids[2:]
    assert 'group_migrations_links' not in rest  # a short page is the last one
    assert 'group_migrations_links' not in api('GET', BASE)[1]  # no limit, no pages


@pytest.mark.parametrize('query, expected', [
    ('limit=0', 'Invalid limit 0: give a whole number from 1 to 1000.'),
    ('limit=many', 'Invalid limit many: give a whole number from 1 to 1000.'),
    ('limit=1001', 'Invalid limit 1001: give a whole number from 1 to 1000.'),
    ('marker=nope', 'Invalid marker nope: no such migration.'),
])
def test_a_bad_page_request_says_what_is_wrong(api, query, expected):
    status, body = api('GET', f'{BASE}?{query}')
    assert status == 400
    assert _message(body) == expected


def test_links_keep_the_path_the_api_is_mounted_under(api):
    """Behind a proxy or a WSGI server that mounts the API under /slm, links keep /slm."""
    req = webob.Request.blank(BASE, method='POST', base_url='http://cloud.example/slm')
    req.body = json.dumps({'group_migration': {'group': 'web'}}).encode()
    req.content_type = 'application/json'
    response = req.get_response(api.app)
    assert response.status_int == 202, response.text
    job = response.json['group_migration']
    assert response.headers['Location'] == f'http://cloud.example/slm{BASE}/{job["id"]}'
    assert job['links'] == [{'rel': 'self',
                             'href': f'http://cloud.example/slm{BASE}/{job["id"]}'}]
