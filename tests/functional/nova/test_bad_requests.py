"""Discovery against real Nova 34 API code, and requests it must refuse before starting anything.

A refused request raises DiscoveryError (or PlanError) with a message for
the operator, and Nova has no live migration afterwards: nothing started.
"""

from __future__ import annotations

from slm_plugin.collectors.nova import Capacities, DiscoveryError, NovaCollector, Target
from slm_plugin.execution import cloud as api
from slm_plugin.execution.nova import NovaCloud
from slm_plugin.execution.nova_job import migrate_group
from slm_plugin.planning.plan import PlanError
from tests.functional.nova.base import IMAGE, NovaTestCase

DC2 = Target(zone='dc2')


class BadRequestTest(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.start_hosts('dc1', 'a1', 'a2', 'a3')
        self.small = self.flavor('small', 256, disk_gib=1)
        self.group, servers = self.boot_group('web', 'anti-affinity', 3, self.small)
        self.start_hosts('dc2', 'b1', 'b2', 'b3')
        self.ids = {s.name: s.id for s in servers}

    def nothing_started(self):
        self.assertEqual([], list(self.conn.compute.migrations()))

    def refused(self, message, group='web', target=DC2, error=DiscoveryError):
        with self.assertRaises(error) as caught:
            migrate_group(self.conn, group, target, tick_s=0.1)
        self.assertIn(message, str(caught.exception))
        self.nothing_started()
        return str(caught.exception)

    def disable(self, *hosts, reason='maintenance'):
        for host in hosts:
            self.conn.compute.disable_service(None, host=host, binary='nova-compute',
                                              disabled_reason=reason)

    # -- discovery -------------------------------------------------------------------------

    def test_discovery_builds_the_scenario(self):
        caps = Capacities(nic_mibps=900.0, link_mibps=100.0,
                          links={frozenset({'dc1', 'dc2'}): 250.0}, dirty_rate_mibps=5.0)
        found = NovaCollector(self.conn, caps).discover('web', Target(zone='dc2'))

        self.assertEqual('2.96', found.microversion)
        sc = found.scenario
        self.assertEqual(('dc1', 'dc2'), tuple(sorted(sc.sites)))
        self.assertEqual({'a1', 'a2', 'a3', 'b1', 'b2', 'b3'}, {h.name for h in sc.hosts})
        self.assertTrue(all(h.nic_mibps == 900.0 for h in sc.hosts))
        self.assertEqual(250.0, sc.link_between('dc1', 'dc2').capacity_mibps)
        [group] = sc.groups
        self.assertEqual(('web', 'anti-affinity'), (group.name, group.policy))
        self.assertEqual({'vm1', 'vm2', 'vm3'}, {m.name for m in group.members})
        for m in group.members:
            self.assertEqual(self.host_of(self.ids[m.name]), m.host)
            self.assertEqual(256.0, m.vm.memory_mib)
            self.assertEqual(1024.0, m.vm.disk_mib)  # 1 GiB root disk, block migration
            self.assertEqual(5.0, m.vm.dirty_rate_mibps)
        self.assertEqual('dc2', sc.request.to_site)
        self.assertEqual(('b1', 'b2', 'b3'), found.target_hosts)
        self.assertIn('dirty rates are not known', ' '.join(found.notes))
        self.assertEqual(self.ids, found.server_ids)

    def test_targets_by_aggregate_or_hosts_skip_disabled_hosts(self):
        self.disable('b3')
        collector = NovaCollector(self.conn, Capacities(shared_storage=True))
        by_aggregate = collector.discover(self.group.id, Target(aggregate='dc2'))
        self.assertEqual(('b1', 'b2'), by_aggregate.target_hosts)
        self.assertEqual(('b1', 'b2'), by_aggregate.scenario.request.to_hosts)
        self.assertTrue(all(m.vm.disk_mib == 0 for m in by_aggregate.scenario.members()))
        by_hosts = collector.discover('web', Target(hosts=('b1', 'b2')))
        self.assertEqual(('b1', 'b2'), by_hosts.scenario.request.to_hosts)
        with self.assertRaises(DiscoveryError) as caught:
            collector.discover('web', Target(hosts=('b1', 'b3')))
        self.assertIn('target host b3 is disabled: maintenance', str(caught.exception))

    # -- refused ---------------------------------------------------------------------------

    def test_unknown_group_and_impossible_targets(self):
        self.refused("no server group has the id or name 'nope'", group='nope')
        self.refused('no server group has the id or name', group=self.ids['vm1'])
        self.refused('is already in availability zone dc1', target=Target(zone='dc1'))
        self.refused("no compute host is in availability zone 'dc9'; zones: dc1, dc2",
                     target=Target(zone='dc9'))
        # a server booted into a zone stays there: Nova's scheduler will not move it
        pinned = self.conn.compute.create_server_group(name='pinned', policy='affinity')
        server = self.conn.compute.create_server(
            name='db1', image_id=IMAGE, flavor_id=self.small.id, networks='none',
            availability_zone='dc1', scheduler_hints={'group': pinned.id})
        self.conn.compute.wait_for_server(server, interval=0.1, wait=60)
        self.refused(f'db1 ({server.id}) was booted into availability zone dc1',
                     group='pinned')
        self.disable('b3')
        self.refused('anti-affinity needs 3 distinct target hosts', error=PlanError)
        self.disable('b1', 'b2')
        message = self.refused('availability zone dc2 has no enabled compute host that is up')
        self.assertIn('b1 (disabled: maintenance)', message)

    def test_member_in_error(self):
        self.conn.compute.reset_server_state(self.ids['vm2'], 'error')
        self.refused(f'vm2 ({self.ids["vm2"]}) is ERROR; Nova live-migrates only ACTIVE')

    def test_member_already_migrating(self):
        vm1 = self.ids['vm1']
        # someone else moves vm1; the test driver keeps it running until it is completed
        self.conn.compute.live_migrate_server(vm1, host='b1', block_migration='auto')
        self.wait_for(lambda: list(self.conn.compute.server_migrations(vm1)),
                      what='the migration of vm1 to run')

        with self.assertRaises(DiscoveryError) as caught:
            migrate_group(self.conn, 'web', Target(zone='dc2'), tick_s=0.1)
        self.assertIn(f'vm1 ({vm1}) is already migrating (task_state migrating)',
                      str(caught.exception))
        self.assertEqual([vm1], [m.server_id for m in self.conn.compute.migrations()])

        # the Cloud itself refuses it too, should discovery have been skipped
        cloud = NovaCloud(self.conn, self.ids)
        with self.assertRaises(api.CloudError) as refused:
            cloud.start('vm1', 'b2', None)
        self.assertIn('busy (task_state migrating)', str(refused.exception))
        self.assertEqual(1, len(list(self.conn.compute.migrations())))
