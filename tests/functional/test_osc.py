"""The ``openstack`` command with the SLM plugin against slm-api, slm-engine, a simulated cloud.

Every command runs as an operator runs it: the installed ``openstack``
script in a process of its own, configured by ``OS_*`` variables only. It
authenticates with a Keystone stand-in (tests/functional/keystone_stub.py,
because no Keystone runs on this machine) and finds slm-api in the token's
service catalog under the service type ``slm``; slm-api checks the same
tokens with keystonemiddleware, so roles and policy are the real ones.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import yaml

from slm_plugin.osc import SERVICE_TYPE
from tests.functional.keystone_stub import REGION, KeystoneStub
from tests.functional.service_helpers import FINAL, Deployment, free_port, wait_for

pytestmark = [pytest.mark.functional, pytest.mark.timeout(400)]

WEB = ('web-1', 'web-2', 'web-3')
PASSWORD = {'operator': 'operator-secret', 'viewer': 'viewer-secret', 'slm': 'slm-secret'}
CLI_TIMEOUT = 180


def _openstack_script() -> str:
    beside = pathlib.Path(sys.executable).parent / 'openstack'
    found = str(beside) if beside.exists() else shutil.which('openstack')
    assert found, 'the openstack command (python-openstackclient) is not installed'
    return found


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


class Cloud:
    """The deployment, its Keystone, and the openstack command configured for them."""

    def __init__(self, deployment: Deployment, keystone: KeystoneStub, home: pathlib.Path):
        self.d = deployment
        self.keystone = keystone
        self.home = home
        self.script = _openstack_script()

    def env(self, user: str = 'operator') -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
        env.update({
            'OS_AUTH_TYPE': 'password', 'OS_AUTH_URL': self.keystone.url,
            'OS_IDENTITY_API_VERSION': '3', 'OS_USERNAME': user,
            'OS_PASSWORD': PASSWORD[user], 'OS_PROJECT_NAME': 'ops',
            'OS_USER_DOMAIN_NAME': 'Default', 'OS_PROJECT_DOMAIN_NAME': 'Default',
            'OS_REGION_NAME': REGION, 'OS_INTERFACE': 'public',
            # no clouds.yaml of the machine's user, and a fresh entry-point cache
            'HOME': str(self.home), 'XDG_CACHE_HOME': str(self.home / '.cache'),
            'PYTHONUNBUFFERED': '1'})
        return env

    def __call__(self, *args: str, user: str = 'operator', **env: str) -> Result:
        done = subprocess.run([self.script, *args], env=dict(self.env(user), **env),
                              capture_output=True,
                              text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, user: str = 'operator', **env: str) -> Result:
        result = self(*args, user=user, **env)
        assert result.rc == 0, (args, result)
        return result

    def on_terminal(self, *args: str, user: str = 'operator') -> Result:
        """Run with stderr on a pseudo-terminal (stdout a pipe); err is what it showed."""
        main, terminal = os.openpty()
        try:
            process = subprocess.Popen([self.script, *args], env=self.env(user),
                                       stdout=subprocess.PIPE, stderr=terminal,
                                       stdin=subprocess.DEVNULL, text=True)
        finally:
            os.close(terminal)
        shown = b''
        try:
            while chunk := os.read(main, 65536):  # until the command closes the terminal
                shown += chunk
        except OSError:
            pass  # Linux: EIO once no process has the terminal open
        finally:
            os.close(main)
        out, _ = process.communicate(timeout=CLI_TIMEOUT)
        return Result(process.returncode, out, shown.decode(errors='replace'))

    def show(self, job_id: str) -> dict:
        return self.ok('server', 'group', 'migration', 'show', job_id, '-f', 'json').json()

    def start(self, *args: str, user: str = 'operator') -> subprocess.Popen:
        """The command running in the background; communicate() for its output."""
        return subprocess.Popen([self.script, *args], env=self.env(user),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)

    def api(self, path: str) -> dict:
        """GET from slm-api directly with an operator's token: quicker than the command."""
        token, _ = self.keystone.issue('operator')
        status, body = self.d.http('GET', path, headers={'X-Auth-Token': token})
        assert status == 200, body
        return body


@pytest.fixture
def cloud(request, tmp_path, rabbit_url, mariadb_url):
    """The services and their Keystone; ``request.param``: options of the simulation."""
    keystone = KeystoneStub()
    for user, roles in (('operator', ['admin', 'member', 'reader']),
                        ('viewer', ['member', 'reader']), ('slm', ['admin', 'service'])):
        keystone.add_user(user, PASSWORD[user], roles,
                          project='service' if user == 'slm' else 'ops')
    keystone.start()
    d = Deployment(tmp_path, rabbit_url, mariadb_url, api={'auth_strategy': 'keystone'},
                   keystone_authtoken=keystone.authtoken_options('slm', PASSWORD['slm']))
    keystone.register(SERVICE_TYPE, f'http://127.0.0.1:{d.api_port}/')
    param = dict(getattr(request, 'param', {}))
    d.options.setdefault('planning', {}).update(param.pop('planning', {}))
    d.options['simulation'].update(param)
    home = tmp_path / 'home'
    home.mkdir()
    try:
        d.start_services()
        yield Cloud(d, keystone, home)
    finally:
        d.stop_all()
        keystone.stop()
        print(d.all_tails())  # shown when the test failed


def _member_rows(result: Result) -> dict:
    return {row['Member']: row for row in result.json()}


# -- planning --------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_starts_nothing(cloud):
    table = cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--dry-run',
                     '--max-downtime', '300')
    header = table.out.splitlines()[1]
    for column in ('Member', 'Source', 'Destination', 'Start (s)', 'Bandwidth (MiB/s)',
                   'Switchover (s)', 'Downtime (ms)', 'Bytes'):
        assert column in header, table.out
    for name in WEB:
        assert f'| {name} ' in table.out, table.out
    assert 'nothing was started' in table.err

    planned = _member_rows(cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                                    '--dry-run', '--strategy', 'synchronized', '-f', 'json'))
    assert set(planned) == set(WEB)
    for row in planned.values():
        assert row['Source'].startswith('a-') and row['Destination'].startswith('b-'), row
        assert row['Switchover (s)'] > 0 and row['Bytes'] > 0, row
    # synchronized: the members are planned to switch over together
    switchovers = [row['Switchover (s)'] for row in planned.values()]
    assert max(switchovers) - min(switchovers) < 1.0, planned

    # within a budget: the members' bandwidths together fit it, and the group takes longer
    # auto-converge is the request's to ask for on the simulated cloud
    throttled = cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--dry-run',
                         '--auto-converge', '--no-post-copy')
    assert 'nothing was started' in throttled.err, throttled

    budgeted = _member_rows(cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                                     '--dry-run', '--strategy', 'parallel',
                                     '--max-bandwidth', '80Mbit/s', '-f', 'json'))
    assert sum(r['Bandwidth (MiB/s)'] for r in budgeted.values()) <= 80e6 / 8 / 2 ** 20 + 0.5
    assert min(r['Switchover (s)'] for r in budgeted.values()) > max(switchovers), budgeted

    # the plan drawn for a person
    drawn = cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--dry-run',
                     '--timeline', str(cloud.home / 'plan.png'))
    assert f"Timeline written to {cloud.home / 'plan.png'}" in drawn.err, drawn
    assert (cloud.home / 'plan.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    value = cloud.ok('server', 'group', 'migrate', 'db', '--to-host', 'b-1', '--to-host', 'b-2',
                     '--dry-run', '-f', 'value', '-c', 'Member', '-c', 'Destination')
    assert sorted(value.out.split()) == ['b-1', 'b-2', 'db-1', 'db-2']

    # a dry run stores no job and starts no migration
    assert cloud.ok('server', 'group', 'migration', 'list', '-f', 'json').json() == []
    assert cloud.d.sim_stats()['starts'] == {}


# -- running ---------------------------------------------------------------------------------


def test_migrate_with_wait_moves_the_group_and_the_job_reads_back_in_every_format(cloud):
    result = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--wait',
                   '--max-downtime', '300', '--on-failure', 'abort', '--max-bandwidth',
                   '1.5GiB/s', '-f', 'json')
    assert result.rc == 0, result
    job = result.json()
    assert job['status'] == 'completed', job
    assert job['target'] == {'availability_zone': 'dc-b'}
    assert job['options'] == {'allowed_downtime_ms': 300, 'failure_policy': 'abort',
                              'max_bandwidth_mibps': 1536.0}
    assert {m['name'] for m in job['members']} == set(WEB)

    # the progress went to stderr, a line per change, ending with the group's
    progress = result.err.strip().splitlines()
    assert progress[-1].startswith(f"Migration {job['id']} of group web: completed, 3/3 "
                                   'switched over'), result.err
    for name in WEB:
        assert sum(line.strip().startswith(f'{name}: switched_over') for line in progress) \
            == 1, result.err
    # a line per state a member went through and per status of the job: not a log
    assert len(progress) <= len(WEB) * 4 + 5, result.err

    shown = cloud.show(job['id'])
    assert shown['status'] == 'completed'
    for m in shown['members']:
        assert m['state'] == 'switched_over', m
        assert m['source_host'].startswith('a-') and m['destination_host'].startswith('b-'), m
        assert 0 < m['downtime_ms'] <= 300, m
    assert shown['switchover']['switched_over'] == 3
    assert cloud.d.sim_stats()['starts'] == dict.fromkeys(WEB, 1)

    as_yaml = yaml.safe_load(cloud.ok('server', 'group', 'migration', 'show', job['id'],
                                      '-f', 'yaml').out)
    assert as_yaml['id'] == job['id'] and as_yaml['group'] == 'web'
    assert as_yaml['status'] == 'completed'
    status = cloud.ok('server', 'group', 'migration', 'show', job['id'], '-f', 'value',
                      '-c', 'status')
    assert status.out == 'completed\n'
    table = cloud.ok('server', 'group', 'migration', 'show', job['id'])
    assert 'availability zone dc-b' in table.out
    assert 'web-1: switched_over a-1 -> b-' in table.out, table.out

    # on a terminal the progress is redrawn in place
    shown = cloud.on_terminal('server', 'group', 'migrate', 'db', '--to-az', 'dc-b', '--wait',
                              '-f', 'value', '-c', 'id')
    assert shown.rc == 0, shown
    db_job = shown.out.strip()
    assert '\x1b[' in shown.err, shown  # cursor up, clear: the same lines drawn again
    assert 'Group db: completed, 2/2 switched over' in shown.err, shown
    assert shown.err.count('Group db: ') >= 2, shown

    listed = cloud.ok('server', 'group', 'migration', 'list', '-f', 'json').json()
    assert [(j['ID'], j['Group'], j['Status']) for j in listed] == \
        [(job['id'], 'web', 'completed'), (db_job, 'db', 'completed')]
    assert cloud.ok('server', 'group', 'migration', 'list', '--status', 'running',
                    '-f', 'json').json() == []
    ids = cloud.ok('server', 'group', 'migration', 'list', '--group', 'web', '--long',
                   '-f', 'value', '-c', 'ID', '-c', 'Requested By')
    assert ids.out.split() == [job['id'], 'api']
    # pages: --limit, and --marker where the previous page ended
    page = cloud.ok('server', 'group', 'migration', 'list', '--limit', '1', '-f', 'value',
                    '-c', 'ID')
    assert page.out.split() == [job['id']]
    page = cloud.ok('server', 'group', 'migration', 'list', '--limit', '1', '--marker',
                    job['id'], '-f', 'value', '-c', 'ID')
    assert page.out.split() == [db_job]


# slower, so that the jobs are still under way when they are aborted or started again
@pytest.mark.parametrize('cloud', [{'speed': '2'}], indirect=True)
def test_an_aborted_migration_ends_aborted_and_its_wait_fails(cloud):
    follower = cloud.start('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                           '--strategy', 'sequential', '--wait')
    try:
        job_id = wait_for(lambda: [j['id'] for j in cloud.api('/v1/group-migrations?group=web')
                                   ['group_migrations']], 120, interval=0.2,
                          what='the migration of web')[0]

        def migrating():
            job = cloud.api(f'/v1/group-migrations/{job_id}')['group_migration']
            assert job['status'] in ('pending', 'planning', 'running'), job
            return any(m['state'] == 'migrating' for m in job['members'])

        wait_for(migrating, 120, interval=0.2, what='the job to be migrating a member')
        aborted = cloud('server', 'group', 'migration', 'abort', job_id, '--wait')
        final = cloud.show(job_id)
        assert aborted.rc == 0, (aborted, final)
        assert aborted.out == ''
        assert f'Migration {job_id} of group web: aborted' in aborted.err
        assert final['status'] == 'aborted'
        assert any(m['state'] == 'aborted' for m in final['members']), final
        # members that had not switched over stopped; none is left moving
        assert {m['state'] for m in final['members']} <= {'switched_over', 'aborted',
                                                          'queued'}, final

        # the command that was following the migration says how it ended, and fails
        out, err = follower.communicate(timeout=CLI_TIMEOUT)
        assert follower.returncode == 1, (out, err)
        assert out == ''
        assert err.strip().splitlines()[-1].startswith(f'Migration {job_id} of group web: '
                                                       'aborted'), err
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(10)

    # an ended job cannot be aborted again; the API says why
    late = cloud('server', 'group', 'migration', 'abort', job_id)
    assert late.rc != 0
    assert f'Migration job {job_id} has already ended (aborted). (HTTP 409)' in late.err, late

    # the job's story tells who asked
    events = cloud.ok('server', 'group', 'migration', 'event', 'list', job_id,
                      '-f', 'json').json()
    kinds = [e['Kind'] for e in events]
    assert kinds[0] == 'job.created' and kinds[-1] == 'job.aborted', kinds
    asked = next(e for e in events if e['Kind'] == 'job.abort_requested')
    assert asked['Detail'] == {'by': 'operator-id'}, asked

    # without --wait, the migration started is printed
    created = cloud.ok('server', 'group', 'migrate', 'db', '--to-az', 'dc-b',
                       '--strategy', 'sequential', '--reason', 'rack 12 power work',
                       '-f', 'json').json()
    assert created['status'] == 'pending' and created['group'] == 'db', created
    assert created['strategy'] == 'sequential'
    assert created['reason'] == 'rack 12 power work', created
    assert {m['name'] for m in created['members']} == {'db-1', 'db-2'}
    # the group is taken: a second migration is refused with the API's reason
    again = cloud('server', 'group', 'migrate', 'db', '--to-az', 'dc-b')
    assert again.rc != 0
    assert f"is already being migrated by job {created['id']}. (HTTP 409)" in again.err, again
    # without --wait, an abort says what it asked for, and the job ends aborted
    asked = cloud.ok('server', 'group', 'migration', 'abort', created['id'])
    assert asked.out == ''
    assert f"Abort of migration {created['id']} requested (Migration {created['id']} of " \
           'group db: ' in asked.err, asked
    assert 'members that have not switched over stay at their source' in asked.err, asked
    db_path = f"/v1/group-migrations/{created['id']}"
    db_final = wait_for(lambda: (j := cloud.api(db_path)['group_migration'])['status'] in FINAL
                        and j, 180, interval=0.5, what='the migration of db to end')
    assert db_final['status'] == 'aborted', db_final


# -- windows -------------------------------------------------------------------------------

SCHEDULED = re.compile(r'It would start at (\S+) and switch over at (\S+), (\d+) s before its '
                       r'deadline (\S+)\.')


def _instant(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00')).timestamp()


# a short least margin, so that a test's window is seconds long
@pytest.mark.parametrize('cloud', [{'planning': {'deadline_margin': '0.5',
                                                 'deadline_min_margin': '2'}}], indirect=True)
def test_a_deadline_starts_the_group_as_late_as_is_safe_and_one_no_plan_meets_is_refused(cloud):
    plan = _member_rows(cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                                 '--dry-run', '-f', 'json'))
    predicted_s = max(r['Switchover (s)'] for r in plan.values()) / 10  # speed 10
    margin_s = max(0.5 * predicted_s, 2.0)

    # a dry run says when the job would start: the predicted duration plus the margin
    # before the deadline, not at once
    far = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    deadline = far.replace(microsecond=0, tzinfo=None).isoformat() + 'Z'
    dry = cloud.ok('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--dry-run',
                   '--complete-by', deadline)
    start_at, end_at, margin, complete_by = SCHEDULED.search(dry.err).groups()
    assert _instant(complete_by) == _instant(deadline)
    assert abs(_instant(start_at) - (_instant(deadline) - predicted_s - margin_s)) < 1.0, dry
    assert abs(int(margin) - margin_s) <= 1 and _instant(end_at) < _instant(deadline)

    # windows no plan meets: refused with the reason and the field, nothing starts
    soon = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--complete-by',
                 f'+{max(1, int(predicted_s / 2))}s')
    assert soon.rc != 0
    assert 'options.complete_by: no plan switches the group over by' in soon.err, soon
    assert 'so the earliest switchover is' in soon.err and '(HTTP 400)' in soon.err, soon
    past = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--complete-by',
                 '2020-01-01T00:00:00Z')
    assert 'options.complete_by: 2020-01-01T00:00:00.000Z has passed' in past.err, past
    shut = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--not-before', '+2h',
                 '--complete-by', '+1h')
    assert 'options.not_before: the window opens at' in shut.err, shut
    words = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--complete-by',
                  'tomorrow')
    assert words.rc != 0 and "--complete-by 'tomorrow': give an ISO 8601 instant" in words.err
    token, _ = cloud.keystone.issue('operator')
    for field, value in (('complete_by', '2026-13-45T00:00:00Z'), ('not_before', 'soon')):
        status, body = cloud.d.http('POST', '/v1/group-migrations', headers={
            'X-Auth-Token': token}, body={'group_migration': {
                'group': 'web', 'target': {'availability_zone': 'dc-b'},
                'options': {field: value}}})
        assert status == 400 and f'options.{field}' in body['error']['message'], body
    assert cloud.ok('server', 'group', 'migration', 'list', '-f', 'json').json() == []
    assert cloud.d.sim_stats()['starts'] == {}

    # a window opening in an hour: the job waits for it, and an abort meanwhile starts nothing
    waiting = cloud.ok('server', 'group', 'migrate', 'db', '--to-az', 'dc-b', '--not-before',
                       '+1h', '--priority', 'maintenance', '-f', 'json').json()
    assert waiting['status'] == 'pending', waiting
    assert waiting['priority'] == 'maintenance' and waiting['options']['priority'] == \
        'maintenance', waiting
    assert _instant(waiting['schedule']['start_at']) > time.time() + 3500, waiting
    path = f"/v1/group-migrations/{waiting['id']}"
    wait_for(lambda: any(e['kind'] == 'job.waiting'
                         for e in cloud.api(f'{path}/events')['events']), 60,
             what='the job to wait for its window')
    cloud.ok('server', 'group', 'migration', 'abort', waiting['id'], '--wait')
    gone = cloud.show(waiting['id'])
    assert gone['status'] == 'aborted' and gone['error'] == 'aborted before it started', gone

    # a deadline seconds away: the job starts late enough, and switches over in time
    lead_s = 6.0
    asked = time.time()
    done = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--wait', '-f', 'json',
                 '--complete-by', f'+{lead_s + predicted_s + margin_s:.0f}s')
    assert done.rc == 0, done
    job = done.json()
    assert job['status'] == 'completed', job
    schedule = job['schedule']
    begin = _instant(schedule['start_at'])
    assert begin > asked + lead_s - 2, schedule
    for m in job['members']:
        assert _instant(m['started_at']) >= begin - 0.5, (m, schedule)
        assert _instant(m['switchover_at']) <= _instant(schedule['complete_by']), (m, schedule)
    events = cloud.api(f"/v1/group-migrations/{job['id']}/events")['events']
    kinds = [e['kind'] for e in events]
    assert kinds.index('job.waiting') < kinds.index('job.started'), kinds
    assert events[-1]['detail']['deadline']['met'] is True, events[-1]
    assert cloud.d.sim_stats()['starts'] == dict.fromkeys(WEB, 1)

    # the plan against what happened, drawn for a person
    picture = cloud.home / 'web.png'
    shown = cloud.ok('server', 'group', 'migration', 'show', job['id'], '--timeline',
                     str(picture), '-f', 'value', '-c', 'status')
    assert shown.out == 'completed\n' and 'Timeline written to' in shown.err, shown
    assert picture.read_bytes()[:4] == b'\x89PNG'
    unwritable = cloud('server', 'group', 'migration', 'show', job['id'], '--timeline',
                       str(picture / 'y.png'))  # under a file: no folder can be made
    assert unwritable.rc != 0 and '--timeline' in unwritable.err, unwritable
    assert 'cannot write the picture' in unwritable.err and 'Traceback' not in unwritable.err


# -- refusals --------------------------------------------------------------------------------


def test_user_errors_print_the_api_message_and_start_nothing(cloud):
    unknown = cloud('server', 'group', 'migrate', 'nope', '--to-az', 'dc-b', '--wait')
    assert unknown.rc != 0 and unknown.out == ''
    assert 'Server group nope could not be found. (HTTP 404)' in unknown.err, unknown
    assert 'Traceback' not in unknown.err

    no_zone = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-z')
    assert no_zone.rc != 0
    assert 'Availability zone dc-z does not exist; there are: dc-a, dc-b. (HTTP 400)' \
        in no_zone.err, no_zone

    bad_downtime = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                         '--max-downtime', '0')
    assert bad_downtime.rc != 0
    assert 'group_migration.options.allowed_downtime_ms' in bad_downtime.err, bad_downtime

    bad_bandwidth = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                          '--max-bandwidth', 'fast')
    assert bad_bandwidth.rc != 0
    assert "--max-bandwidth 'fast': give a number of MiB/s, or one with a unit" in \
        bad_bandwidth.err, bad_bandwidth

    no_postcopy = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                        '--strategy', 'synchronized-postcopy', '--no-post-copy')
    assert no_postcopy.rc != 0
    assert ('Strategy synchronized-postcopy switches members over by post-copy, which this '
            'migration does not allow') in no_postcopy.err, no_postcopy

    bad_strategy = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                         '--strategy', 'teleport')
    assert bad_strategy.rc != 0
    assert "'teleport' is not one of" in bad_strategy.err and 'synchronized' in \
        bad_strategy.err, bad_strategy

    both = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--to-host', 'b-1')
    assert both.rc == 2
    assert 'argument --to-host: not allowed with argument --to-az' in both.err, both
    neither = cloud('server', 'group', 'migrate', 'web')
    assert neither.rc == 2
    assert 'one of the arguments --to-az --to-aggregate --to-host is required' in neither.err

    dry_wait = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--dry-run',
                     '--wait')
    assert dry_wait.rc != 0
    assert '--wait has nothing to wait for with --dry-run' in dry_wait.err

    both_ways = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b',
                      '--auto-converge', '--no-auto-converge')
    assert both_ways.rc == 2 and 'not allowed with argument' in both_ways.err, both_ways

    unranked = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--priority',
                     'urgent')
    assert unranked.rc == 2 and "argument --priority: invalid choice: 'urgent'" in \
        unranked.err, unranked

    undrawable = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', '--timeline',
                       'x.png')
    assert undrawable.rc != 0
    assert '--timeline draws a plan (--dry-run) or a job that has ended (--wait)' in \
        undrawable.err, undrawable

    forbidden = cloud('server', 'group', 'migrate', 'web', '--to-az', 'dc-b', user='viewer')
    assert forbidden.rc != 0
    assert 'Policy does not allow slm:group_migration:create to be performed. (HTTP 403)' \
        in forbidden.err, forbidden
    listing = cloud('server', 'group', 'migration', 'list', user='viewer')
    assert listing.rc != 0 and '(HTTP 403)' in listing.err

    missing = cloud('server', 'group', 'migration', 'show', 'no-such-job')
    assert missing.rc != 0
    assert 'Migration job no-such-job could not be found. (HTTP 404)' in missing.err

    # none of it started anything
    assert cloud.ok('server', 'group', 'migration', 'list', '-f', 'json').json() == []
    assert cloud.d.sim_stats()['starts'] == {}


def test_the_endpoint_comes_from_the_keystone_catalog(cloud):
    # the API's address reaches the command only through the token's catalog
    listed = cloud.ok('server', 'group', 'migration', 'list', '-f', 'json')
    assert listed.json() == []
    assert str(cloud.d.api_port) not in json.dumps(cloud.env('operator'))
    assert 'operator' in cloud.keystone.issued

    elsewhere = cloud('server', 'group', 'migration', 'list', OS_REGION_NAME='Elsewhere')
    assert elsewhere.rc != 0
    assert f'No {SERVICE_TYPE} endpoint (interface public) in the service catalog in region ' \
           'Elsewhere' in elsewhere.err, elsewhere

    # an endpoint override, as for any service, takes the catalog's place
    override = cloud.ok('server', 'group', 'migration', 'list', '-f', 'json',
                        OS_REGION_NAME='Elsewhere',
                        OS_SLM_ENDPOINT_OVERRIDE=f'http://127.0.0.1:{cloud.d.api_port}/v1')
    assert override.json() == []

    closed = f'http://127.0.0.1:{free_port()}'
    unreachable = cloud('server', 'group', 'migration', 'list', OS_SLM_ENDPOINT_OVERRIDE=closed)
    assert unreachable.rc != 0
    assert unreachable.err.strip() == f'Cannot reach slm-api at {closed}/v1: connection ' \
        'refused or unreachable.', unreachable
