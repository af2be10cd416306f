"""The agent killed while it caps the migrations, on Nova 34: re-capped when it is
back, never left stranded when it is not.

The agent is the stand-in of agent_stand_in.py (no libvirt here): mid-job it
stops answering, as a killed slm-agent (AgentActuator raises AgentUnavailable),
and the migrations keep the max speeds they had. The API, the engine and Nova
are real. (The same on the simulator, with a member held to its trickle when
the agent dies: tests/unit/control/test_loop.py.)
"""

from __future__ import annotations

import re

from tests.functional.nova.agent_stand_in import ActuatedBackend, AwayActuator
from tests.functional.nova.engine_base import EngineOnNovaTestCase
from tests.functional.nova.progress_driver import CONTROL

# slower than engine_base.RATES, so that the agent dies well before the end: about
# 10, 5 and 2.5 s each alone
RATES = {'vm1': 24.0, 'vm2': 48.0, 'vm3': 96.0}


class AgentFaultsOnNovaTest(EngineOnNovaTestCase):

    def away(self, **kwargs) -> AwayActuator:
        self.actuator = AwayActuator(**kwargs)
        self.engine_backend_class = ActuatedBackend.with_actuator(self.actuator)
        for name, rate in RATES.items():
            CONTROL.set_rate(self.ids[name], rate)
        return self.actuator

    def test_an_agent_back_within_the_retry_time_gets_its_caps_and_the_job_completes(self):
        agent = self.away(back_after_s=3.0)
        self.slm_options = {'engine': {'steer_retry_timeout': 30}}
        self.engine('engine-1')
        job = self.wait_final(self.create(target={'availability_zone': 'dc2'},
                                          strategy='synchronized'))

        self.assertEqual('completed', job['status'], job)
        self.assert_moved_once(job)
        self.assertIsNotNone(agent.away_at, f'the agent never died: {agent.calls}')
        self.assertTrue(agent.refused, 'nothing was sent while the agent was away')
        # sent again at later ticks while away (not dropped after the first refusal), and
        # what the plan wanted landed once back; how many ticks fit in the 3 s depends on
        # the machine (3 refusals in 0.9 s on a loaded one, more than 5 on a quiet one)
        self.assertGreaterEqual(len(agent.refused), 2, agent.refused)
        self.assertGreater(agent.refused[-1][0] - agent.refused[0][0], 0.2, agent.refused)
        self.assertTrue(agent.after, 'no cap landed after the agent came back')
        self.assertLess(agent.after[0][0] - agent.away_at, 3.0 + 2.0, agent.after[0])
        # No assertion on the split: while the agent is away nothing can hold a member,
        # and one whose last max speed lets it converge is completed as soon as its cap
        # can be lifted (seen here: 8 s ahead of the others after a 3 s outage).

    def test_an_agent_that_never_returns_leaves_no_member_stranded(self):
        agent = self.away()
        self.slm_options = {'engine': {'steer_retry_timeout': 2}}
        self.engine('engine-1')
        job_id = self.create(target={'availability_zone': 'dc2'}, strategy='synchronized')
        job = self.wait_final(job_id)

        self.assertEqual('failed', job['status'], job)
        # the seconds it really waited: each refused cap costs the agent's probe timeout,
        # so on a loaded machine the last try before failing can end past the 2 s
        waited = re.findall(r'could not be steered for (\d+) s', job['error'])
        self.assertTrue(waited, job)
        self.assertTrue(all(2 <= int(s) <= 10 for s in waited), job)
        self.assertIn('no SLM agent answered', job['error'], job)
        self.assertGreaterEqual(agent.refused[-1][0] - agent.refused[0][0], 1.5)
        # every member cancelled where it was: on its source, running, not migrating
        self.wait_for(lambda: all(not self.conn.compute.get_server(sid).task_state
                                  for sid in self.ids.values()), timeout=30,
                      what='no server migrating')
        for m in job['members']:
            server = self.conn.compute.get_server(self.ids[m['name']])
            self.assertEqual(self.sources[m['name']], server.compute_host, m)
            self.assertEqual('ACTIVE', server.status, m)
            self.assertNotEqual('switched_over', m['state'], m)
        self.assertTrue(all(j.aborted_at is not None for j in CONTROL.history), [
            (j.server, j.aborted_at) for j in CONTROL.history])
