"""A server group moves between availability zones through real Nova 34 API code.

Nova's API, conductor, scheduler and placement run in this process
(NovaTestCase); the computes run ProgressDriver, whose migrations take time,
report progress into the migration records and wait when converged until
force-complete. The plugin reaches Nova only through openstacksdk. Jobs are
created through slm-api and carried out by an slm-engine (the engine's
path, the only orchestrator; the set-up: tests/functional/nova/engine_base.py).
"""

from __future__ import annotations

from slm_plugin.common.retry import RetryPolicy
from slm_plugin.control import cloud as api
from slm_plugin.engine import runner as job_runner
from slm_plugin.nova.cloud import NovaCloud
from tests.functional.nova.engine_base import EngineOnNovaTestCase
from tests.functional.nova.progress_driver import CONTROL

DC2 = {'availability_zone': 'dc2'}


class GroupMigrationTest(EngineOnNovaTestCase):

    def test_anti_affinity_group_moves_to_the_other_zone(self):
        self.assertEqual(3, len(set(self.sources.values())))
        self.engine('engine-1')

        job_id = self.create(target=DC2, strategy='synchronized')
        job = self.wait_final(job_id)

        self.assertEqual('completed', job['status'], job)
        self.assertIsNone(job['error'])
        # the engine's check of the group afterwards (hosts, zone, ACTIVE, membership,
        # policy) found nothing
        events = self.events(job_id)
        self.assertEqual([], [d for k, _, d in events if k == 'job.verified'])
        [ended] = [d for k, _, d in events if k == 'job.completed']
        self.assertEqual({n: api.COMPLETED for n in self.ids}, ended['members'])
        self.assertEqual({'b1', 'b2', 'b3'}, {m['destination_host'] for m in job['members']},
                         'one member per host in dc2')
        self.assert_moved_once(job)  # once each, from its source, ACTIVE in dc2, policy kept
        accepted = {m: d for k, m, d in events if k == job_runner.START_ACCEPTED}
        for m in job['members']:
            name, sid = m['name'], self.ids[m['name']]
            # what Nova itself recorded: one live migration, from the source to the planned host
            [mig] = self.live_migrations(sid)
            self.assertEqual(m['destination_host'], mig.dest_compute)
            self.assertNotIn(mig.id, accepted[name]['known'], "the job's own migration")
            server = self.conn.compute.get_server(sid)
            self.assertEqual('ACTIVE', server.status)
            self.assertIsNone(server.task_state)
        # Nova's own view of the group: its members unchanged
        self.assertEqual(set(self.ids.values()),
                         set(self.conn.compute.get_server_group(self.group.id).member_ids))
        self.assertIn('dirty rates are not known', ' '.join(job['plan']['notes']))

    def test_nova_refuses_a_second_anti_affinity_member_on_one_host(self):
        """The plan never does it; if a caller does, Nova's scheduler (2.30+) says no."""
        cloud = NovaCloud(self.conn, self.ids, retry=RetryPolicy(attempts=2, initial_s=0.05))

        cloud.start('vm1', 'b1', None)
        self.wait_for(lambda: cloud.progress()['vm1'].status == api.COMPLETED,
                      what='vm1 on b1')
        # accepted (from 2.34 the checks run after the answer), then the conductor's
        # scheduling finds the host taken by the group and fails the migration
        cloud.start('vm2', 'b1', None)
        progress = cloud.settle(30.0)
        self.assertEqual(api.FAILED, progress['vm2'].status)
        [record] = self.live_migrations(self.ids['vm2'])
        self.assertEqual('error', record.status)
        self.assertEqual('b1', self.host_of(self.ids['vm1']))
        self.assertEqual(self.sources['vm2'], self.host_of(self.ids['vm2']))

    def test_caps_and_dirty_rates_go_through_the_actuator(self):
        """With an actuator (the SLM agent's role) caps are sent to it, per source host,
        and the dirty rates it measures reach the planner; nothing says they are not
        enforced. The synchronized planner holds by caps alone: no hold is asked for.

        The actuator is the agent boundary, which no real part reaches in this test (no
        agent runs on these computes; tests/functional/nova/agent_stand_in.py).
        Everything else is the engine's path.
        """
        actuator = self.actuator
        actuator.dirty_mibps = 2.0
        self.engine('engine-1')

        job_id = self.create(target=DC2, strategy='synchronized')
        job = self.wait_final(job_id)

        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        self.assertEqual([], [c for c in actuator.calls if c[0] == 'hold'])
        self.assertTrue(any(verb == 'set_cap' for verb, *_ in actuator.calls))
        # every member was capped, and its cap lifted before its completion, for good
        for name, sid in self.ids.items():
            caps = [value for verb, server, _, value in actuator.calls
                    if verb == 'set_cap' and server == sid]
            self.assertTrue(caps, name)
            self.assertIsNone(caps[-1], f'{name}: caps {caps}')
        self.assertTrue(actuator.asked)
        [cloud] = actuator.clouds
        notes = list(job['plan']['notes']) + list(cloud.notes)
        self.assertFalse([n for n in notes if 'not enforced' in n], notes)

    def test_a_cap_for_a_guest_that_has_left_its_source_is_no_failure(self):
        """Seen on a real cloud (tools/cloud, 2026-12-02): libvirt removes the guest from its
        source the instant it switches over, seconds before Nova records the end, and a cap
        sent in between met "no guest with UUID" and failed a job whose members had all
        arrived. The agent's part is the stand-in (tests/functional/nova/agent_stand_in.py)."""
        CONTROL.reset(hold=False)
        CONTROL.post_s = 5.0
        cloud = NovaCloud(self.conn, self.ids, actuator=self.actuator,
                          retry=RetryPolicy(attempts=2, initial_s=0.05))
        cloud.start('vm1', 'b1', 64.0)
        self.wait_for(lambda: (CONTROL.job(self.ids['vm1']) is not None
                               and CONTROL.job(self.ids['vm1']).switched_over_at is not None),
                      what='vm1 at its destination')
        self.assertEqual('running', self.live_migrations(self.ids['vm1'])[-1].status)

        cloud.set_cap('vm1', 8.0)  # its source has no such guest any more: nothing to cap

        self.wait_for(lambda: cloud.progress()['vm1'].status == api.COMPLETED, timeout=30,
                      what='Nova to record the end')
        self.assertEqual('b1', self.host_of(self.ids['vm1']))
