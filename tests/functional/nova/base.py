"""Real Nova in-process: API, conductor, scheduler, placement and computes, SQLite, no network.

``NovaTestCase`` builds on Nova's own functional test base
(``ProviderUsageBaseTestCase``, shipped in the nova wheel): the real Nova 34
API (WSGI, served to ``requests`` in this process by wsgi-intercept),
conductor, scheduler and placement, with in-process messaging and SQLite.
The computes run ``ProgressDriver`` (tests.functional.nova.progress_driver),
whose live migrations take time and report progress.

The plugin reaches this Nova through openstacksdk exactly as it would reach a
real one; only authentication is bypassed (Nova's fixture stubs keystone and
takes the identity from headers).
"""

from __future__ import annotations

import logging
import os
import sys
import time

import openstack.connection
import openstack.exceptions
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from nova.tests.functional import integrated_helpers

from tests.functional.nova import progress_driver
from tests.functional.nova.progress_driver import CONTROL

IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'  # an image Nova's GlanceFixture serves

# Nova loads ``compute_driver`` as ``nova.virt.<compute_driver>``: the test driver
# is made importable under that prefix, by the same module object.
sys.modules.setdefault('nova.virt.slm_progress_driver', progress_driver)
DRIVER = 'slm_progress_driver.ProgressDriver'


def sdk_connection(base_url: str, project_id: str,
                   session_hook=None) -> openstack.connection.Connection:
    """An openstacksdk connection to the in-process API, as admin.

    ``session_hook(requests_session)`` may mount a transport adapter (the tests
    of retries inject faults there: the HTTP boundary, nothing inside Nova).
    """
    session = ks_session.Session(auth=noauth.NoAuth(), additional_headers={
        'X-Auth-User': 'admin', 'X-User-Id': 'admin', 'X-Auth-Project-Id': project_id,
        'X-Roles': 'reader,member,admin',
    })
    if session_hook is not None:
        session_hook(session.session)
    return openstack.connection.Connection(
        session=session, compute_endpoint_override=base_url, compute_api_version='2')


class NovaTestCase(integrated_helpers.ProviderUsageBaseTestCase):
    """Two availability zones, ``dc1`` and ``dc2``, with hosts the test starts."""

    compute_driver = DRIVER
    # servers the sdk creates are looked up by Nova's helpers as admin
    microversion = 'latest'

    def setUp(self):
        # The wheel installs api-paste.ini under <venv>/etc/nova, not where Nova's
        # fixture looks for it.
        self.flags(api_paste_config=os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini'),
                   group='wsgi')
        super().setUp()
        # One process holds every compute here, and Nova sizes one process-wide pool
        # of live-migration threads by this option: with the default of 1 the
        # members of a group would queue behind each other instead of running
        # together as on separate hosts.
        self.flags(max_concurrent_live_migrations=16)
        # Nova's tests turn response schema validation into errors; production's
        # default is to warn. Nova 34's schema of a server migration wants every
        # byte count to be at least 1, while a hypervisor reports 0 (no disk to
        # copy, nothing left): with 'error' a correct migration record is a 500.
        self.flags(response_validation='warn', group='api')
        # ... and each such warning logs a traceback: keep them out of the test logs
        logging.getLogger('nova.api.validation').setLevel(logging.CRITICAL)
        CONTROL.reset()
        self.addCleanup(self._end_migrations)
        self.aggregates = {}
        self.conn = self.connect()

    def _end_migrations(self, timeout: float = 120.0) -> None:
        """Before Nova's executors and database go away: every live migration ends.

        A migration Nova accepted late in a test may reach the driver only after the
        test; held, it would keep a thread that Nova's executor shutdown then waits
        for without end (seen in CI: a test stuck 300 s in its cleanup). The driver
        cancels what runs and what arrives, and the cleanup waits for Nova to say
        that no server is migrating any more.
        """
        CONTROL.close()
        deadline = time.monotonic() + timeout
        while hasattr(self, 'conn') and time.monotonic() < deadline:
            busy = [s.name for s in self.conn.compute.servers(all_projects=True)
                    if s.task_state == 'migrating']
            if not busy:
                break
            time.sleep(0.2)
        CONTROL.close()  # and wait for the driver's threads of what was cancelled late

    def _clear_attrs(self):
        # Nova's TestCase deletes the test's attributes at cleanup, which pytest's
        # own teardown of a unittest case still needs.
        pass

    # -- setting up the cloud ---------------------------------------------------------

    def connect(self, session_hook=None) -> openstack.connection.Connection:
        return sdk_connection(self.api_fixture.base_url, self.api_fixture.project_id,
                              session_hook)

    def start_hosts(self, az: str, *hosts: str) -> None:
        """Start computes on ``hosts`` and put them in availability zone ``az``."""
        if az not in self.aggregates:
            self.aggregates[az] = self._create_aggregate(az, availability_zone=az)
        for host in hosts:
            self._start_compute(host)
            self.admin_api.add_host_to_aggregate(self.aggregates[az], host)

    def flavor(self, name: str, memory_mib: int, disk_gib: int = 1):
        return self.conn.compute.create_flavor(name=name, ram=memory_mib, vcpus=1,
                                               disk=disk_gib)

    def boot_group(self, name: str, policy: str, count: int, flavor, prefix: str = 'vm'):
        """A server group and ``count`` ACTIVE servers in it (``vm1``...), booted without an AZ.

        One multi-create request: the scheduler places them together, without the
        reschedules that racing single boots into an anti-affinity group cause.
        Nova names them ``vm-1``...; they are renamed ``vm1``...
        """
        group = self.conn.compute.create_server_group(name=name, policy=policy)
        self.conn.compute.create_server(
            name=prefix, image_id=IMAGE, flavor_id=flavor.id, networks='none',
            scheduler_hints={'group': group.id}, min_count=count, max_count=count)
        ids = self.wait_for(lambda: _all_or_none(self.conn.compute.get_server_group(group.id)
                                                 .member_ids, count), what='the group to fill')
        servers = []
        for sid in ids:
            try:
                server = self.conn.compute.wait_for_server(
                    self.conn.compute.get_server(sid), status='ACTIVE', interval=0.1, wait=60)
            except openstack.exceptions.SDKException as exc:
                states = [(s.name, s.status, s.task_state, s.compute_host, s.fault)
                          for s in (self.conn.compute.get_server(i) for i in ids)]
                self.fail(f'booting group {name}: {exc}; servers: {states}')
            index = server.name.rsplit('-', 1)[-1]
            servers.append(self.conn.compute.update_server(sid, name=f'{prefix}{index}'))
        return group, sorted(servers, key=lambda s: s.name)

    def wait_for(self, predicate, timeout: float = 30.0, interval: float = 0.05, what=''):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail(f'timed out after {timeout} s waiting for {what or predicate}')
            time.sleep(interval)

    def host_of(self, server_id: str) -> str:
        return self.conn.compute.get_server(server_id).compute_host

    def live_migrations(self, server_id: str):
        """Every live migration Nova has recorded of a server, oldest first."""
        migs = self.conn.compute.migrations(server_id=server_id,
                                            migration_type='live-migration')
        return sorted(migs, key=lambda m: m.id)


def _all_or_none(items, count):
    items = list(items or ())
    return items if len(items) == count else None
