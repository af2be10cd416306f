"""A job's bandwidth budget (``limits.max_bandwidth_mibps``): every planner keeps the caps
of the job's running migrations within it, on the simulator, and the job still ends.

The caps are what SLM controls (QEMU's max speed); QEMU itself lifts the cap for the
stop-and-copy and for post-copy, which the budget therefore does not cover.
"""

import dataclasses
import math

import pytest

from slm_plugin import exception, planning
from slm_plugin.cmd.bench_controls import CapsSeen
from slm_plugin.control import cloud as api
from slm_plugin.control.loop import ControlLoop
from slm_plugin.scenario import loader
from slm_plugin.simulation.cloud import SimulatedCloud

PLANNERS = ['bounded', 'evict', 'parallel', 'sequential', 'synchronized']


class CapWatch(CapsSeen):
    """The simulator, adding up at every look the caps of what is migrating."""

    most = 0.0

    def progress(self, members=None):
        out = super().progress(members)
        running = [n for n, p in out.items() if p.status in (api.MIGRATING, api.HELD)]
        total = sum(math.inf if self.caps.get(n) is None else self.caps[n] for n in running)
        self.most = max(self.most, total)
        return out


def _budgeted(name, budget):
    sc = loader.load_shipped(name)
    return dataclasses.replace(sc, limits=dataclasses.replace(sc.limits,
                                                              max_bandwidth_mibps=budget))


@pytest.mark.parametrize('strategy', PLANNERS)
@pytest.mark.parametrize('name, budget', [('hadoop', 200.0), ('database-heavy', 300.0)])
def test_the_caps_of_a_job_stay_within_its_budget(strategy, name, budget):
    sc = _budgeted(name, budget)
    planner = planning.get(strategy)
    plan = planner.plan(sc)
    assert all(m.cap_mibps is not None and m.cap_mibps <= budget + 1e-6
               for m in plan.members), plan.members
    cloud = CapWatch(sc)
    outcome = ControlLoop(cloud, sc, planner, plan, tick_s=1.0).run()
    assert outcome.status == 'completed', outcome
    assert cloud.most <= budget * (1 + 1e-6), (strategy, cloud.most)


def test_a_budget_slows_the_group_as_the_model_says():
    """Half the link's bandwidth: the job takes longer, and its plan says so first."""
    free, tight = loader.load_shipped('hadoop'), _budgeted('hadoop', 150.0)
    planner = planning.get('synchronized')
    slow, fast = planner.plan(tight), planner.plan(free)

    def makespan(plan):
        return max(m.predicted_switchover_s for m in plan.members)
    assert makespan(slow) > 1.5 * makespan(fast)
    ends = {}
    for key, sc, plan in (('free', free, fast), ('tight', tight, slow)):
        cloud = SimulatedCloud(sc)
        outcome = ControlLoop(cloud, sc, planning.get('synchronized'), plan).run()
        assert outcome.status == 'completed'
        ends[key] = max(r.switchover_s for r in cloud.results())
    assert ends['tight'] > 1.5 * ends['free']


def test_a_budget_that_is_not_positive_is_refused():
    with pytest.raises(exception.PlanError, match='bandwidth budget must be positive'):
        planning.get('parallel').plan(_budgeted('hadoop', 0.0))


def test_the_request_budget_wins_over_the_configured_default():
    from oslo_config import cfg

    import slm_plugin.conf
    from slm_plugin.engine.backends import with_options

    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf([], project='slm', default_config_files=[], default_config_dirs=[])
    sc = loader.load_shipped('hadoop')
    assert with_options(sc, {}, conf).limits.max_bandwidth_mibps is None
    conf.set_override('max_bandwidth_mibps', 250.0, group='planning')
    assert with_options(sc, {}, conf).limits.max_bandwidth_mibps == 250.0
    mine = with_options(sc, {'max_bandwidth_mibps': 90}, conf)
    assert mine.limits.max_bandwidth_mibps == 90.0
    # applied again (as the simulated backend does), the request's stays
    assert with_options(mine, {}, conf).limits.max_bandwidth_mibps == 90.0
