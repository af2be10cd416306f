"""Migrating a real server group between availability zones of a real cloud.

A cloud with SLM deployed (devstack with ``enable_plugin slm-plugin``, see
devstack/README.rst, or any other), named in clouds.yaml, and an availability zone
to move the group to:

    SLM_TEST_CLOUD       clouds.yaml entry, with the admin role (devstack-admin)
    SLM_TEST_TARGET_AZ   availability zone the group moves to
    SLM_TEST_SOURCE_AZ   optional: where the servers boot (default: another zone)
    SLM_TEST_IMAGE       optional: image name or ID (default: an active cirros image)
    SLM_TEST_FLAVOR      optional: flavor name or ID (default: the smallest that fits)
    SLM_TEST_NETWORK     optional: network name or ID (default: the only tenant network)
    SLM_TEST_SERVERS     optional: members of the group, 2 or 3 (default 2)
    SLM_TEST_TIMEOUT     optional: seconds for a boot or a migration (default 900)

The suite boots an anti-affinity group, asks the ``openstack`` CLI for a dry run
(which must start nothing), then migrates the group with ``--wait`` and checks with
openstacksdk that every member is ACTIVE in the target zone on a host of its own,
still in the group, and that SLM reports the job completed. Everything it creates
is deleted at the end, also when a test fails. Without SLM_TEST_CLOUD and
SLM_TEST_TARGET_AZ the whole module is skipped.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

CLOUD = os.environ.get('SLM_TEST_CLOUD', '')
TARGET_AZ = os.environ.get('SLM_TEST_TARGET_AZ', '')

if not CLOUD or not TARGET_AZ:
    pytest.skip(
        'no cloud to migrate in: set SLM_TEST_CLOUD (a clouds.yaml entry with the admin role) '
        'and SLM_TEST_TARGET_AZ (the availability zone the group moves to); optionally '
        'SLM_TEST_SOURCE_AZ, SLM_TEST_IMAGE, SLM_TEST_FLAVOR, SLM_TEST_NETWORK, '
        'SLM_TEST_SERVERS, SLM_TEST_TIMEOUT',
        allow_module_level=True,
    )

import openstack  # noqa: E402  (only once a cloud is configured)

SOURCE_AZ = os.environ.get('SLM_TEST_SOURCE_AZ', '')
IMAGE = os.environ.get('SLM_TEST_IMAGE', '')
FLAVOR = os.environ.get('SLM_TEST_FLAVOR', '')
NETWORK = os.environ.get('SLM_TEST_NETWORK', '')
SERVERS = int(os.environ.get('SLM_TEST_SERVERS', '2'))
TIMEOUT = int(os.environ.get('SLM_TEST_TIMEOUT', '900'))
FINAL_JOB_STATUSES = {'completed', 'failed', 'aborted'}


# -- helpers -----------------------------------------------------------------------------

def openstack_cli() -> str:
    """The ``openstack`` command: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / 'openstack'
    if beside.exists():
        return str(beside)
    found = shutil.which('openstack')
    if found is None:
        pytest.fail('the openstack CLI (python-openstackclient) is not installed', pytrace=False)
    return found


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``openstack --os-cloud $SLM_TEST_CLOUD ARGS``; fail the test when it fails."""
    command = [openstack_cli(), '--os-cloud', CLOUD, *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(command[1:])} exited with {proc.returncode}:\n'
                    f'{proc.stderr}{proc.stdout}', pytrace=False)
    return proc


def cli_json(*args: str, timeout: float = 120):
    proc = cli(*args, '-f', 'json', timeout=timeout)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f'openstack {" ".join(args)} -f json printed no JSON:\n{proc.stdout}',
                    pytrace=False)


def fields(row: dict) -> dict:
    """CLI columns by a normalised name: ``Status`` and ``status`` are both ``status``."""
    return {str(key).strip().lower().replace(' ', '_'): value for key, value in row.items()}


def job_ids() -> set[str]:
    rows = cli_json('server', 'group', 'migration', 'list')
    return {str(fields(row).get('id')) for row in rows}


def group_policy(group) -> str:
    return group.policy or (group.policies or [''])[0]


class Cleanups:
    """Undo steps run last-in first-out, as tempest's addCleanup; every step runs."""

    def __init__(self):
        self.steps = []

    def add(self, description, func, *args):
        self.steps.append((description, func, args))

    def run(self):
        errors = []
        while self.steps:
            description, func, args = self.steps.pop()
            try:
                func(*args)
            except (Exception, pytest.fail.Exception) as exc:  # report every leak
                errors.append(f'{description}: {exc}')
        if errors:
            pytest.fail('cleanup failed, delete by hand:\n' + '\n'.join(errors), pytrace=False)


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def conn():
    try:
        connection = openstack.connect(cloud=CLOUD)
    except openstack.exceptions.ConfigException as exc:
        pytest.fail(f'SLM_TEST_CLOUD={CLOUD}: {exc}', pytrace=False)
    yield connection
    connection.close()


@pytest.fixture(scope='module')
def cleanups(conn):  # torn down before the connection it deletes through
    steps = Cleanups()
    yield steps
    steps.run()


@pytest.fixture(scope='module')
def cli_ready():
    """The SLM commands of the CLI are installed (slm_plugin's OSC plugin)."""
    proc = subprocess.run([openstack_cli(), 'server', 'group', 'migrate', '--help'],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail('openstack server group migrate is unknown: install slm_plugin where '
                    f'the openstack CLI runs.\n{proc.stderr}', pytrace=False)


@pytest.fixture(scope='module')
def boot_args(conn):
    """Image, flavor, network and source zone of the servers."""
    zones = [z.name for z in conn.compute.availability_zones()
             if (z.state or {}).get('available', True)]
    if TARGET_AZ not in zones:
        pytest.fail(f'SLM_TEST_TARGET_AZ={TARGET_AZ} is not an available zone: {zones}',
                    pytrace=False)
    source = SOURCE_AZ or next((z for z in zones if z != TARGET_AZ), None)
    if source is None or source == TARGET_AZ:
        pytest.fail(f'the servers need a zone other than {TARGET_AZ} to start in; '
                    f'available: {zones} (set SLM_TEST_SOURCE_AZ)', pytrace=False)

    if IMAGE:
        image = conn.image.find_image(IMAGE, ignore_missing=False)
    else:
        image = next((i for i in conn.image.images(status='active')
                      if 'cirros' in (i.name or '').lower()), None)
        if image is None:
            pytest.fail('no active cirros image: set SLM_TEST_IMAGE', pytrace=False)

    if FLAVOR:
        flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    else:
        fitting = [f for f in conn.compute.flavors()
                   if f.ram >= (image.min_ram or 0) and f.disk >= (image.min_disk or 0)]
        if not fitting:
            pytest.fail(f'no flavor fits image {image.name}: set SLM_TEST_FLAVOR', pytrace=False)
        flavor = min(fitting, key=lambda f: (f.ram, f.vcpus, f.disk))

    if NETWORK:
        network = conn.network.find_network(NETWORK, ignore_missing=False)
    else:
        networks = [n for n in conn.network.networks()
                    if not n.is_router_external
                    and (n.is_shared or n.project_id == conn.current_project_id)]
        if len(networks) != 1:
            pytest.fail(f'{len(networks)} candidate networks: set SLM_TEST_NETWORK',
                        pytrace=False)
        network = networks[0]
    return {'image': image, 'flavor': flavor, 'network': network, 'source_az': source}


@pytest.fixture(scope='module')
def group(conn, cleanups, boot_args):
    """An anti-affinity server group of SLM_TEST_SERVERS ACTIVE servers."""
    assert 2 <= SERVERS <= 3, 'SLM_TEST_SERVERS must be 2 or 3'
    prefix = f'slm-it-{uuid.uuid4().hex[:8]}'
    server_group = conn.compute.create_server_group(name=prefix, policy='anti-affinity')
    cleanups.add(f'server group {server_group.id}', conn.compute.delete_server_group,
                 server_group, True)

    servers = []
    for index in range(SERVERS):
        server = conn.compute.create_server(
            name=f'{prefix}-{index}',
            image_id=boot_args['image'].id,
            flavor_id=boot_args['flavor'].id,
            networks=[{'uuid': boot_args['network'].id}],
            availability_zone=boot_args['source_az'],
            scheduler_hints={'group': server_group.id},
        )
        cleanups.add(f'server {server.id}', _delete_server, conn, server)
        servers.append(server)
    servers = [conn.compute.wait_for_server(s, status='ACTIVE', failures=['ERROR'],
                                            interval=5, wait=TIMEOUT) for s in servers]
    assert {s.availability_zone for s in servers} == {boot_args['source_az']}
    return {'group': server_group, 'servers': servers}


def _delete_server(conn, server):
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, interval=5, wait=TIMEOUT)


def _abort_unless_final(job_id):
    job = fields(cli_json('server', 'group', 'migration', 'show', job_id))
    if job.get('status') not in FINAL_JOB_STATUSES:
        cli('server', 'group', 'migration', 'abort', job_id)


# -- tests, in order ---------------------------------------------------------------------

def test_dry_run_starts_nothing(conn, cli_ready, group):
    before = job_ids()
    hosts = {s.id: s.compute_host for s in group['servers']}

    rows = cli_json('server', 'group', 'migrate', group['group'].id, '--to-az', TARGET_AZ,
                    '--dry-run')

    # the plan: a row per member, from its host to a host of the target zone
    assert isinstance(rows, list), f'a dry run prints a row per member, not {rows!r}'
    plan = [fields(row) for row in rows]
    names = {s.name: s for s in group['servers']} | {s.id: s for s in group['servers']}
    zones = {svc.host: svc.availability_zone
             for svc in conn.compute.services(binary='nova-compute')}
    assert len(plan) == len(group['servers']), plan
    for row in plan:
        server = names.get(row.get('member'))
        assert server is not None, f'unknown member in the plan: {row}'
        assert row.get('source') == server.compute_host, row
        assert zones.get(row.get('destination')) == TARGET_AZ, (row, zones)

    assert job_ids() == before, 'a dry run created a migration job'
    for server_id, host in hosts.items():
        server = conn.compute.get_server(server_id)
        assert (server.status, server.compute_host) == ('ACTIVE', host), \
            f'server {server_id} moved or is moving after a dry run'


def test_migrate_group_to_target_az(conn, cli_ready, cleanups, group):
    members = {s.id for s in group['servers']}
    sources = {s.id: s.compute_host for s in group['servers']}

    proc = subprocess.run(
        [openstack_cli(), '--os-cloud', CLOUD, 'server', 'group', 'migrate',
         group['group'].id, '--to-az', TARGET_AZ, '--wait', '-f', 'json'],
        capture_output=True, text=True, timeout=TIMEOUT + 120)
    try:
        job = fields(json.loads(proc.stdout))
    except (json.JSONDecodeError, AttributeError):
        job = {}
    if job.get('id'):
        cleanups.add(f'migration job {job["id"]}', _abort_unless_final, str(job['id']))
    assert proc.returncode == 0, f'migrate exited with {proc.returncode}:\n{proc.stderr}'
    assert job.get('id'), f'migrate --wait -f json printed no job:\n{proc.stdout}'
    assert job.get('status') == 'completed', job
    states = {m.get('server_id'): m.get('state') for m in job.get('members') or ()}
    assert states == dict.fromkeys(members, 'switched_over'), states

    # SLM's own record of the job
    shown = fields(cli_json('server', 'group', 'migration', 'show', str(job['id'])))
    assert shown.get('status') == 'completed', shown
    assert str(job['id']) in job_ids()

    # Nova's view: every member ACTIVE in the target zone, on a host of its own
    servers = [conn.compute.get_server(server_id) for server_id in members]
    for server in servers:
        assert server.status == 'ACTIVE', (server.id, server.status)
        assert server.availability_zone == TARGET_AZ, (server.id, server.availability_zone)
        assert server.compute_host != sources[server.id], server.id
    hosts = [server.compute_host for server in servers]
    assert len(set(hosts)) == len(hosts), f'anti-affinity broken: {hosts}'

    # still one group, with the same members and policy
    server_group = conn.compute.get_server_group(group['group'].id)
    assert set(server_group.member_ids) == members
    assert group_policy(server_group) == 'anti-affinity'
