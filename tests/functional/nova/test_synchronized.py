"""The control loop keeps a group together through Nova's API: hold, then force-complete all.

The three members migrate at different rates (ProgressDriver), so they
converge at different instants. The synchronized planner holds the early
ones; ProgressDriver keeps a converged migration iterating until Nova's
force-complete reaches it. When the last one has converged the loop releases
them in the same tick, each with ``force_complete`` through the API, so they
switch over together. The parallel baseline, which holds nothing, lets each
one switch over as it converges: the group runs split for as long as their
convergence instants differ. Both are checked on the hypervisor's side
(ProgressDriver's record of when each migration converged, was forced and
switched over) and on the plugin's (what it observed through the API).
"""

from __future__ import annotations

from collections import defaultdict

from slm_plugin.collectors.nova import Target
from slm_plugin.execution import cloud as api
from slm_plugin.execution.nova_job import migrate_group
from tests.functional.nova.base import NovaTestCase
from tests.functional.nova.progress_driver import CONTROL

TICK_S = 0.1
MEMORY_MIB = 256
RATES = {'vm1': 64.0, 'vm2': 128.0, 'vm3': 512.0}  # converge after about 4, 2 and 0.5 s


class SynchronizedTest(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.start_hosts('dc1', 'a1', 'a2', 'a3')
        flavor = self.flavor('small', MEMORY_MIB)
        self.group, servers = self.boot_group('db', 'anti-affinity', 3, flavor)
        self.start_hosts('dc2', 'b1', 'b2', 'b3')
        self.ids = {s.name: s.id for s in servers}
        for name, rate in RATES.items():
            CONTROL.set_rate(self.ids[name], rate)
        self.seen = defaultdict(list)  # member -> statuses seen through the API, in order

    def observe(self, now, progress):
        for name, p in progress.items():
            if not self.seen[name] or self.seen[name][-1] != p.status:
                self.seen[name].append(p.status)

    def migrate(self, strategy):
        return migrate_group(self.conn, 'db', Target(zone='dc2'), strategy=strategy,
                             tick_s=TICK_S, observer=self.observe)

    def jobs(self):
        return {name: CONTROL.jobs[sid] for name, sid in self.ids.items()}

    def test_early_members_are_held_and_released_together(self):
        report = self.migrate('synchronized')

        self.assertEqual('completed', report.status, report.format())
        self.assertTrue(report.policy_kept)
        jobs = self.jobs()
        converged = {n: j.converged_at for n, j in jobs.items()}
        forced = {n: j.forced_at for n, j in jobs.items()}
        switched = {n: j.switched_over_at for n, j in jobs.items()}
        # Bounds relative to how far apart the members converge (about 3.5 s by their
        # rates, less when a busy machine staggers the starts), so that load does not
        # decide them.
        apart = converged['vm1'] - converged['vm3']
        self.assertGreater(apart, 1.5, 'the members converge far apart')
        # every member was completed by a force-complete that came through Nova's API,
        # none before the last one had converged, all at about the same time
        self.assertTrue(all(forced.values()), forced)
        self.assertGreaterEqual(min(forced.values()), max(converged.values()))
        self.assertLess(spread(forced), apart / 3)
        self.assertLess(spread(switched), apart / 3)
        # the plugin saw the early members held, through the migration records
        self.assertIn(api.HELD, self.seen['vm3'])
        self.assertIn(api.HELD, self.seen['vm2'])
        self.assertEqual(api.COMPLETED, self.seen['vm1'][-1])
        # and reports the split it observed: far shorter than the convergence spread
        self.assertIsNotNone(report.split_time_s)
        self.assertLess(report.split_time_s, apart / 2)
        for m in report.members:
            self.assertEqual('dc2', m.zone)
            self.assertEqual(1, len(self.live_migrations(m.server_id)))

    def test_parallel_baseline_switches_over_as_each_converges(self):
        report = self.migrate('parallel')

        self.assertEqual('completed', report.status, report.format())
        jobs = self.jobs()
        converged = {n: j.converged_at for n, j in jobs.items()}
        switched = {n: j.switched_over_at for n, j in jobs.items()}
        apart = converged['vm1'] - converged['vm3']
        self.assertGreater(apart, 1.5)
        # nobody holds: each is completed soon after it has converged, well before the
        # last one converges, and the group runs split for about as long
        for name in ('vm2', 'vm3'):
            self.assertLess(switched[name], converged['vm1'], name)
        self.assertGreater(spread(switched), apart / 2)
        self.assertGreater(report.split_time_s, apart / 2)


def spread(instants: dict) -> float:
    return max(instants.values()) - min(instants.values())
