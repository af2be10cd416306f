"""slm-api and slm-engine on Nova 34: a job through the API, refusals, host maintenance

(the set-up: tests/functional/nova/engine_base.py).
"""

from __future__ import annotations

from slm_plugin.engine import runner as job_runner
from slm_plugin.execution.nova import NovaCloud
from tests.functional.nova.base import IMAGE
from tests.functional.nova.engine_base import EngineOnNovaTestCase
from tests.functional.nova.progress_driver import CONTROL


class EngineOnNovaTest(EngineOnNovaTestCase):

    def test_a_job_created_through_the_api_moves_the_group_through_nova(self):
        self.engine('engine-1')
        job_id = self.create(target={'availability_zone': 'dc2'}, strategy='synchronized')

        job = self.wait_final(job_id)

        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        notes = ' '.join(job['plan']['notes'])
        self.assertIn('dirty rates are not known', notes)  # what discovery had to assume
        for _, name, detail in [e for e in self.events(job_id)
                                if e[0] == job_runner.START_ACCEPTED]:
            self.assertEqual(self.ids[name], detail['server_id'])
            self.assertIn('known', detail)
        # the switchover instants the API shows are Nova's order of events
        switched = sorted(m['switchover_at'] for m in job['members'])
        self.assertTrue(all(switched), job['members'])

    def test_requests_nova_cannot_carry_out_are_refused_with_its_reason(self):
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'web', 'target': {'availability_zone': 'dc9'}}})
        self.assertEqual(400, status)
        self.assertEqual("No compute host is in availability zone 'dc9'; zones: dc1, dc2.",
                         body['error']['message'])
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'no-such-group', 'target': {'availability_zone': 'dc2'}}})
        self.assertEqual(404, status)
        self.assertIn('no-such-group', body['error']['message'])
        # a group that exists but has no member: a bad request, not an unknown group
        empty = self.conn.compute.create_server_group(name='empty', policy='affinity')
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'empty', 'target': {'availability_zone': 'dc2'}}})
        self.assertEqual(400, status, body)
        self.assertEqual(f'Server group empty ({empty.id}) has no members.',
                         body['error']['message'])
        status, body = self.call('GET', '/v1/group-migrations?group=empty')
        self.assertEqual((200, []), (status, body['group_migrations']))
        # a member already migrating (started outside SLM): a conflict, nothing created
        CONTROL.set_rate(self.ids['vm1'], 1.0)
        NovaCloud(self.conn, {'vm1': self.ids['vm1']}).start('vm1', 'b1', None)
        self.wait_for(lambda: self.conn.compute.get_server(self.ids['vm1']).task_state,
                      what='vm1 migrating')
        status, body = self.call('POST', '/v1/group-migrations', {'group_migration': {
            'group': 'web', 'target': {'availability_zone': 'dc2'}}})
        self.assertEqual(409, status, body)
        self.assertIn('already migrating', body['error']['message'])
        status, body = self.call('GET', '/v1/group-migrations')
        self.assertEqual([], body['group_migrations'])

    def test_host_maintenance_moves_its_groups_and_its_lone_servers(self):
        """What the service.update hook does for a disabled host (the notification itself
        is tested on the real broker in tests/functional/test_service.py).

        The hypervisor switches over by itself here, as libvirt does: nobody
        force-completes a lone server's plain migration."""
        CONTROL.reset(hold=False)
        host = self.sources['vm1']
        flavor = self.conn.compute.find_flavor('small')
        solo = self.conn.compute.create_server(
            name='solo', image_id=IMAGE, flavor_id=flavor.id, networks='none',
            availability_zone=f'dc1:{host}')
        solo = self.conn.compute.wait_for_server(solo, status='ACTIVE', interval=0.1, wait=60)
        self.assertEqual(host, solo.compute_host)
        self.conn.compute.update_service(
            next(s for s in self.conn.compute.services(binary='nova-compute')
                 if s.host == host), status='disabled', disabled_reason='maintenance: DIMMs')
        engine = self.engine_with('engine-1', evacuate_lone_servers='true',
                                  target_availability_zone='dc2')

        created = engine.evacuate_host(host, 'maintenance: DIMMs')

        self.assertEqual(1, len(created), 'one job: the group with a member on the host')
        job = self.wait_final(created[0])
        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        self.wait_for(lambda: self.host_of(solo.id) != host, timeout=60,
                      what='the lone server to leave the host')
        [record] = self.live_migrations(solo.id)
        self.wait_for(lambda: self.conn.compute.get_server(solo.id).status == 'ACTIVE'
                      and not self.conn.compute.get_server(solo.id).task_state, timeout=30,
                      what='solo settled')
        self.assertEqual(host, record.source_compute)
        status, body = self.call('GET', '/v1/group-migrations')
        self.assertEqual(1, len(body['group_migrations']), 'no job for the lone server')

