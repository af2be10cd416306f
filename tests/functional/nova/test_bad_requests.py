"""Discovery against real Nova 34 API code, and requests it must refuse before starting anything.

A request discovery refuses is answered by slm-api with 400 (InvalidTarget), 404
(GroupNotFound) or 409 (MembersBusy) and a sentence for the operator; no job is created
and Nova has no live migration afterwards: nothing started. A request discovery accepts
but no plan can carry out (PlanError) is refused by planning: a dry run answers 400, and a
job of it is failed by the engine with the reason before it starts anything. (The set-up
of slm-api and slm-engine on Nova: tests/functional/nova/engine_base.py.)
"""

from __future__ import annotations

from slm_plugin import exception
from slm_plugin.engine import runner as job_runner
from slm_plugin.nova.cloud import NovaCloud
from slm_plugin.nova.discovery import Capacities, NovaCollector, Target
from tests.functional.nova.base import IMAGE
from tests.functional.nova.engine_base import EngineOnNovaTestCase

DC2 = {'availability_zone': 'dc2'}


class BadRequestTest(EngineOnNovaTestCase):

    def nothing_started(self):
        self.assertEqual([], list(self.conn.compute.migrations()))

    def job_ids(self):
        status, body = self.call('GET', '/v1/group-migrations')
        self.assertEqual(200, status, body)
        return [j['id'] for j in body['group_migrations']]

    def post(self, group='web', target=DC2, **request):
        return self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': group, 'target': target, **request}})

    def refused(self, code, message, group='web', target=DC2):
        """The API's answer to a request it must refuse: its code, a sentence with message,
        no job, nothing started in Nova."""
        before = self.job_ids()
        status, body = self.post(group, target)
        self.assertEqual(code, status, body)
        text = body['error']['message']
        self.assertIn(message, text)
        self.assert_sentence(text)
        self.assertEqual(before, self.job_ids(), 'no job created')
        self.nothing_started()
        return text

    def assert_sentence(self, text):
        self.assertTrue(text[:1].isupper() and text.endswith('.'), text)

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
        with self.assertRaises(exception.InvalidTarget) as caught:
            collector.discover('web', Target(hosts=('b1', 'b3')))
        self.assertIn('target host b3 is disabled: maintenance', str(caught.exception))

    # -- refused ---------------------------------------------------------------------------

    def test_unknown_group_and_impossible_targets(self):
        self.refused(404, "No server group has the id or name 'nope'.", group='nope')
        self.refused(404, 'No server group has the id or name', group=self.ids['vm1'])
        self.refused(400, 'is already in availability zone dc1',
                     target={'availability_zone': 'dc1'})
        message = self.refused(400, 'zones: dc1, dc2', target={'availability_zone': 'dc9'})
        self.assertEqual("No compute host is in availability zone 'dc9'; zones: dc1, dc2.",
                         message)
        # a server booted into a zone stays there: Nova's scheduler will not move it
        pinned = self.conn.compute.create_server_group(name='pinned', policy='affinity')
        server = self.conn.compute.create_server(
            name='db1', image_id=IMAGE, flavor_id=self.small.id, networks='none',
            availability_zone='dc1', scheduler_hints={'group': pinned.id})
        self.conn.compute.wait_for_server(server, interval=0.1, wait=60)
        self.refused(400, f'db1 ({server.id}) was booted into availability zone dc1',
                     group='pinned')
        self.disable('b3')
        self.refused_by_planning('anti-affinity needs 3 distinct target hosts')
        self.disable('b1', 'b2')
        message = self.refused(400, 'Availability zone dc2 has no enabled compute host that '
                                    'is up')
        self.assertIn('b1 (disabled: maintenance)', message)

    def test_an_affinity_group_is_refused_before_anything_starts(self):
        """Nova's scheduler refuses each member's move (ServerGroupAffinityFilter): moved one
        at a time, an affinity group cannot change hosts, so the request is a 400."""
        _, servers = self.boot_group('pair', 'affinity', 2, self.small, prefix='db')
        here = {s.availability_zone for s in servers}
        self.assertEqual(1, len(here))
        other = 'dc1' if here == {'dc2'} else 'dc2'
        message = self.refused(400, 'has the affinity policy', group='pair',
                               target={'availability_zone': other})
        self.assertIn('ServerGroupAffinityFilter', message)

    def test_an_auto_converge_policy_the_computes_do_not_have_is_refused(self):
        """Nova's computes decide auto-converge when they start a migration ([libvirt]
        live_migration_permit_auto_converge; here false, as [nova] permit_auto_converge
        says): a request asking for it is refused, dry run or not; one asking for what the
        computes do plans."""
        before = self.job_ids()
        for dry_run in (True, False):
            status, body = self.post(options={'allow_auto_converge': True, 'dry_run': dry_run})
            self.assertEqual(400, status, body)
            text = body['error']['message']
            self.assertIn('options.allow_auto_converge: the compute hosts do not '
                          'auto-converge', text)
            self.assert_sentence(text)
        self.assertEqual(before, self.job_ids(), 'no job created')
        self.nothing_started()
        status, body = self.post(options={'allow_auto_converge': False, 'dry_run': True})
        self.assertEqual(200, status, body)

    def refused_by_planning(self, message):
        """Discovery lets it through (checking is cheap, planning is not); planning says no."""
        status, body = self.post(options={'dry_run': True})
        self.assertEqual(400, status, body)
        self.assertIn(message, body['error']['message'])
        self.assertEqual([], self.job_ids(), 'a dry run creates no job')
        self.engine('engine-1')
        status, body = self.post()
        self.assertEqual(202, status, body)
        job_id = body['group_migration']['id']
        job = self.wait_final(job_id)
        self.assertEqual('failed', job['status'], job)
        self.assertIn(message, job['error'])
        self.assertIsNone(job['plan'], 'no plan stored')
        self.assertEqual([], [m for k, m, _ in self.events(job_id)
                              if k == job_runner.START_REQUESTED])
        self.assertEqual({'aborted'}, {m['state'] for m in job['members']}, 'called off')
        self.nothing_started()

    def test_member_in_error(self):
        self.conn.compute.reset_server_state(self.ids['vm2'], 'error')
        self.refused(400, f'vm2 ({self.ids["vm2"]}) is ERROR; Nova live-migrates only ACTIVE')

    def test_member_already_migrating(self):
        vm1 = self.ids['vm1']
        # someone else moves vm1; the test driver keeps it running until it is completed
        self.conn.compute.live_migrate_server(vm1, host='b1', block_migration='auto')
        self.wait_for(lambda: list(self.conn.compute.server_migrations(vm1)),
                      what='the migration of vm1 to run')

        status, body = self.post()
        self.assertEqual(409, status, body)  # MembersBusy: a conflict, worth a retry later
        self.assertIn(f'vm1 ({vm1}) is already migrating (task_state migrating)',
                      body['error']['message'])
        self.assert_sentence(body['error']['message'])
        self.assertEqual([], self.job_ids())
        self.assertEqual([vm1], [m.server_id for m in self.conn.compute.migrations()])

        # the Cloud itself refuses it too, should discovery have been skipped
        cloud = NovaCloud(self.conn, self.ids)
        with self.assertRaises(exception.CloudError) as refused:
            cloud.start('vm1', 'b2', None)
        self.assertIn('busy (task_state migrating)', str(refused.exception))
        self.assertEqual(1, len(list(self.conn.compute.migrations())))
