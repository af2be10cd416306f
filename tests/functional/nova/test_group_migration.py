"""A server group moves between availability zones through real Nova 34 API code.

Nova's API, conductor, scheduler and placement run in this process
(NovaTestCase); the computes run ProgressDriver, whose migrations take time,
report progress into the migration records and wait when converged until
force-complete. The plugin reaches Nova only through openstacksdk.
"""

from __future__ import annotations

from slm_plugin.collectors.nova import Target
from slm_plugin.execution import cloud as api
from slm_plugin.execution.nova import NovaCloud
from slm_plugin.execution.nova_job import migrate_group
from slm_plugin.execution.retry import RetryPolicy
from tests.functional.nova.base import NovaTestCase

TICK_S = 0.1


class GroupMigrationTest(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.start_hosts('dc1', 'a1', 'a2', 'a3')
        self.small = self.flavor('small', 256)
        self.group, self.servers = self.boot_group('web', 'anti-affinity', 3, self.small)
        # the target zone comes up after the boot, so the servers start in dc1
        self.start_hosts('dc2', 'b1', 'b2', 'b3')

    def test_anti_affinity_group_moves_to_the_other_zone(self):
        sources = {s.id: s.compute_host for s in self.servers}
        self.assertEqual(3, len(set(sources.values())))

        report = migrate_group(self.conn, 'web', Target(zone='dc2'), tick_s=TICK_S)

        self.assertEqual('completed', report.status, report.format())
        self.assertTrue(report.policy_kept)
        hosts = [m.host for m in report.members]
        self.assertEqual({'b1', 'b2', 'b3'}, set(hosts), 'one member per host in dc2')
        for m in report.members:
            self.assertEqual(api.COMPLETED, m.status)
            self.assertEqual('dc2', m.zone)
            self.assertEqual('ACTIVE', m.server_status)
            self.assertTrue(m.in_group)
            self.assertEqual(m.planned_destination, m.host)
            # what Nova itself recorded: one live migration, from the source to there
            migs = self.live_migrations(m.server_id)
            self.assertEqual(1, len(migs), migs)
            self.assertEqual('completed', migs[0].status)
            self.assertEqual(sources[m.server_id], migs[0].source_compute)
            self.assertEqual(m.host, migs[0].dest_compute)
            self.assertEqual(m.migration_id, migs[0].id)
            # Nova's own view of the group and the server agree
            server = self.conn.compute.get_server(m.server_id)
            self.assertEqual('dc2', server.availability_zone)
        self.assertEqual({s.id for s in self.servers},
                         set(self.conn.compute.get_server_group(self.group.id).member_ids))
        self.assertIn('dirty rates are not known', ' '.join(report.notes))

    def test_nova_refuses_a_second_anti_affinity_member_on_one_host(self):
        """The plan never does it; if a caller does, Nova's scheduler (2.30+) says no."""
        cloud = NovaCloud(self.conn, {s.name: s.id for s in self.servers},
                          retry=RetryPolicy(attempts=2, initial_s=0.05))
        source = {s.name: s.compute_host for s in self.servers}

        cloud.start('vm1', 'b1', None)
        self.wait_for(lambda: cloud.progress()['vm1'].status == api.COMPLETED,
                      what='vm1 on b1')
        # accepted (from 2.34 the checks run after the answer), then the conductor's
        # scheduling finds the host taken by the group and fails the migration
        cloud.start('vm2', 'b1', None)
        progress = cloud.settle(30.0)
        self.assertEqual(api.FAILED, progress['vm2'].status)
        [record] = self.live_migrations(self.ids('vm2'))
        self.assertEqual('error', record.status)
        self.assertEqual('b1', self.host_of(self.ids('vm1')))
        self.assertEqual(source['vm2'], self.host_of(self.ids('vm2')))

    def test_caps_holds_and_dirty_rates_go_through_the_actuator(self):
        """With an actuator (the SLM agent's role) caps and holds are sent to it, per source
        host, and the dirty rates it measures reach the planner; nothing says they are not
        enforced."""
        actuator = RecordingActuator(dirty_mibps=2.0)

        report = migrate_group(self.conn, 'web', Target(zone='dc2'), tick_s=TICK_S,
                               actuator=actuator)

        self.assertEqual('completed', report.status, report.format())
        sources = {s.id: s.compute_host for s in self.servers}
        held = {(sid, host) for verb, sid, host, value in actuator.calls
                if verb == 'hold' and value is True}
        self.assertEqual(set(sources.items()), held)
        self.assertTrue(any(verb == 'set_cap' for verb, *_ in actuator.calls))
        self.assertTrue(actuator.asked)
        self.assertFalse([n for n in report.notes if 'not enforced' in n], report.notes)

    def ids(self, name):
        return next(s.id for s in self.servers if s.name == name)


class RecordingActuator:
    """Stands in for the per-host agent: records what NovaCloud asks of it."""

    def __init__(self, dirty_mibps):
        self.dirty_mibps = dirty_mibps
        self.calls = []
        self.asked = 0

    def set_cap(self, server_id, host, cap_mibps):
        self.calls.append(('set_cap', server_id, host, cap_mibps))

    def hold(self, server_id, host, held):
        self.calls.append(('hold', server_id, host, held))

    def dirty_rate(self, server_id, host):
        self.asked += 1
        return self.dirty_mibps
