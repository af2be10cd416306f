"""Transient faults and failed members, against real Nova 34 API code.

Faults are injected only at the HTTP boundary, by a requests transport
adapter on the plugin's session (tests.functional.nova.faults.FaultInjector,
the one mock in these tests): a 503 from in front of Nova that never reaches
it, or a connection that drops after Nova accepted the request. Everything
behind it (API, conductor, scheduler, placement, computes) is Nova's code.

Failures of a member come from Nova itself: a start that keeps failing, or a
migration that fails on the hypervisor (ProgressDriver's ``fail_at``).
"""

from __future__ import annotations

from slm_plugin.collectors.nova import Target
from slm_plugin.execution import cloud as api
from slm_plugin.execution.nova_job import migrate_group
from slm_plugin.execution.retry import RetryPolicy
from tests.functional.nova.base import NovaTestCase
from tests.functional.nova.faults import FaultInjector
from tests.functional.nova.progress_driver import CONTROL

TICK_S = 0.1
FAST = RetryPolicy(attempts=4, initial_s=0.05, max_s=0.2)


class FaultTest(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.start_hosts('dc1', 'a1', 'a2', 'a3')
        flavor = self.flavor('small', 256)
        self.group, servers = self.boot_group('web', 'anti-affinity', 3, flavor)
        self.start_hosts('dc2', 'b1', 'b2', 'b3')
        self.ids = {s.name: s.id for s in servers}
        self.sources = {s.name: s.compute_host for s in servers}
        self.faults = FaultInjector()
        self.plugin = self.connect(session_hook=self.faults.mount_on)

    def migrate(self, **options):
        options.setdefault('tick_s', TICK_S)
        options.setdefault('retry', FAST)
        return migrate_group(self.plugin, 'web', Target(zone='dc2'), **options)

    def live_migrate_actions(self, server_id):
        """The live migrations Nova accepted for the server (its instance actions)."""
        return [a for a in self.conn.compute.server_actions(server_id)
                if a.action == 'live-migration']

    def assert_one_migration_each(self):
        for name, sid in self.ids.items():
            self.assertEqual(1, len(self.live_migrations(sid)), name)
            self.assertEqual(1, len(self.live_migrate_actions(sid)), name)

    def test_transient_errors_are_retried(self):
        vm2 = self.ids['vm2']
        start = self.faults.add(method='POST', path=f'/servers/{vm2}/action',
                                body='os-migrateLive', status=503)
        reads = self.faults.add(method='GET', path='/migrations', status=502, times=3)
        force = self.faults.add(method='POST', path=r'/migrations/\d+/action',
                                body='force_complete', status=503)

        report = self.migrate()

        self.assertEqual('completed', report.status, report.format())
        self.assertEqual((1, 3, 1), (start.hits, reads.hits, force.hits))
        # the 503 never reached Nova; the repeat did, once
        self.assertEqual(2, len(self.faults.live_migrate_posts(vm2)))
        self.assertEqual(1, len(self.faults.live_migrate_posts(vm2, reached_nova=True)))
        self.assert_one_migration_each()
        self.assertEqual({'b1', 'b2', 'b3'}, {m.host for m in report.members})

    def test_a_start_accepted_but_unanswered_is_adopted_not_repeated(self):
        vm1, vm3 = self.ids['vm1'], self.ids['vm3']
        self.faults.add(method='POST', path=f'/servers/{vm1}/action', body='os-migrateLive',
                        kind='drop')
        self.faults.add(method='POST', path=rf'/servers/{vm3}/migrations/\d+/action',
                        body='force_complete', kind='drop')

        report = self.migrate()

        self.assertEqual('completed', report.status, report.format())
        # Nova got the start of vm1 once: the plugin asked Nova before repeating it
        self.assertEqual(1, len(self.faults.live_migrate_posts(vm1)))
        self.assertTrue(report.member('vm1').adopted)
        self.assertFalse(report.member('vm2').adopted)
        self.assert_one_migration_each()
        for m in report.members:
            self.assertEqual('dc2', m.zone)

    def test_a_member_nova_never_accepts_aborts_the_group(self):
        vm3 = self.ids['vm3']
        self.faults.add(method='POST', path=f'/servers/{vm3}/action', body='os-migrateLive',
                        status=503, times=100)

        report = self.migrate(on_failure='abort')

        self.assertEqual('failed', report.status, report.format())
        self.assertIn('503', report.member('vm3').error)
        self.assertEqual('not_started', report.member('vm3').status)
        self.assertEqual(FAST.attempts, len(self.faults.live_migrate_posts(vm3)))
        for name in ('vm1', 'vm2'):
            self.assertEqual(api.ABORTED, report.member(name).status, name)
            self.assertEqual(['cancelled'],
                             [m.status for m in self.live_migrations(self.ids[name])])
        # the report says where every member is: all of them still at home
        for m in report.members:
            self.assertEqual(self.sources[m.member], m.host, m.member)
            self.assertEqual('dc1', m.zone)
            self.assertEqual('ACTIVE', m.server_status)
        self.assertEqual([], self.live_migrations(vm3))

    def test_a_failed_migration_with_continue_leaves_the_others_to_finish(self):
        CONTROL.fail_at[self.ids['vm2']] = 0.5

        report = self.migrate(on_failure='continue')

        self.assertEqual('failed', report.status, report.format())
        vm2 = report.member('vm2')
        self.assertEqual(api.FAILED, vm2.status)
        self.assertEqual(self.sources['vm2'], vm2.host)
        self.assertEqual('ACTIVE', vm2.server_status)
        [record] = self.live_migrations(self.ids['vm2'])
        self.assertIn(record.status, ('error', 'failed'))
        for name in ('vm1', 'vm3'):
            m = report.member(name)
            self.assertEqual(api.COMPLETED, m.status, name)
            self.assertEqual('dc2', m.zone)
        self.assertTrue(report.policy_kept)
        self.assert_one_migration_each()

    def test_a_failed_migration_with_abort_keeps_the_group_at_home(self):
        CONTROL.fail_at[self.ids['vm1']] = 0.5
        CONTROL.set_rate(self.ids['vm1'], 128.0)  # fails after the others have converged

        report = self.migrate(on_failure='abort')

        self.assertEqual('failed', report.status, report.format())
        self.assertEqual(api.FAILED, report.member('vm1').status)
        for name in ('vm2', 'vm3'):
            self.assertEqual(api.ABORTED, report.member(name).status, name)
        for m in report.members:
            self.assertEqual(self.sources[m.member], m.host, m.member)
            self.assertEqual('ACTIVE', m.server_status)
        self.assert_one_migration_each()
