"""The group's predicted switchover and progress (control.eta): a share that only grows,
an instant re-predicted from what the migrations show, on hand-made progress and on a
whole simulated job."""

import pytest

from slm_plugin import planning
from slm_plugin.control import cloud as api
from slm_plugin.control import eta
from slm_plugin.control.loop import ControlLoop
from slm_plugin.planning.plan import MemberPlan, Plan
from slm_plugin.scenario import loader
from slm_plugin.simulation.cloud import SimulatedCloud
from slm_plugin.simulation.runner import forecast


def _row(name, start=0.0, switchover=10.0, wire=200.0, cap=50.0):
    return MemberPlan(name, 'g', 'a', 'b', 0, cap, start, switchover, 0.1, wire, 'converged')


def _progress(name, status=api.MIGRATING, left=100.0, wire=50.0, rate=60.0, dirty=10.0,
              switchover_at=None):
    return api.Progress(name, status, 0.0, left, 1, wire, rate, dirty, 0.0,
                        switchover_at=switchover_at)


def test_on_plan_the_instant_is_the_plans_and_behind_it_moves_by_the_lag():
    plan = Plan('parallel', (_row('a', start=0.0, switchover=10.0, wire=200.0),), 0.0)
    on_time = eta.estimate(plan, {'a': _progress('a', wire=100.0)}, 5.0)
    assert on_time.fraction == pytest.approx(0.5)
    assert on_time.eta_s == pytest.approx(10.0, abs=1e-6)
    # the same bytes 3 s later: the job is 3 s behind its plan
    behind = eta.estimate(plan, {'a': _progress('a', wire=100.0)}, 8.0)
    assert behind.eta_s == pytest.approx(13.0, abs=1e-6)
    # ahead: sooner, never before now
    ahead = eta.estimate(plan, {'a': _progress('a', wire=190.0)}, 2.0)
    assert 2.0 <= ahead.eta_s < 10.0


def test_the_share_never_goes_back_when_a_round_finds_more_to_send():
    plan = Plan('parallel', (_row('a', wire=100.0),), 0.0)
    first = eta.estimate(plan, {'a': _progress('a', wire=60.0, left=10.0)}, 1.0)
    # the next round: bytes sent grew, what is left grew more
    later = eta.estimate(plan, {'a': _progress('a', wire=60.5, left=40.0)}, 2.0, first.fraction)
    assert later.fraction >= first.fraction
    # more sent than the plan predicted: not done until it has ended
    over = eta.estimate(plan, {'a': _progress('a', wire=150.0)}, 3.0, later.fraction)
    assert over.fraction == eta.NOT_DONE
    done = eta.estimate(plan, {'a': _progress('a', api.COMPLETED, switchover_at=3.5)}, 4.0,
                        over.fraction)
    assert (done.fraction, done.eta_s) == (1.0, 3.5)


def test_members_not_started_count_nothing_and_a_late_group_is_later():
    plan = Plan('sequential', (_row('a', 0.0, 10.0, 100.0), _row('b', 10.0, 20.0, 100.0)), 0.0)
    group = eta.estimate(plan, {'a': _progress('a', api.COMPLETED, switchover_at=14.0)}, 14.0)
    assert group.fraction == pytest.approx(0.5)
    assert group.eta_s == pytest.approx(24.0, abs=1e-6)  # 4 s behind


class Watching(SimulatedCloud):
    """The simulator, with the group's estimate taken at every look."""

    def __init__(self, scenario, plan, **kwargs):
        super().__init__(scenario, **kwargs)
        self.plan, self.seen = plan, []
        self.fraction = 0.0

    def progress(self, members=None):
        out = super().progress(members)
        group = eta.estimate(self.plan, out, self.now(), self.fraction)
        self.fraction = group.fraction
        self.seen.append((self.now(), group))
        return out


@pytest.mark.parametrize('strategy', ['parallel', 'synchronized'])
@pytest.mark.parametrize('name', ['hadoop', 'database-heavy'])
def test_over_a_whole_job_the_share_only_grows_and_the_instant_closes_in(strategy, name):
    sc = loader.load_shipped(name)
    planner = planning.get(strategy)
    plan = planner.plan(sc)
    # measured against the plan's simulated figures, as the engine does
    cloud = Watching(sc, forecast(sc, plan, planner), seed=1, dirty_noise=0.2)
    assert ControlLoop(cloud, sc, planner, plan).run().status == 'completed'
    end = max(r.switchover_s for r in cloud.results())
    shares = [g.fraction for _, g in cloud.seen]
    assert shares == sorted(shares) and shares[-1] == 1.0
    # from half-way on, the predicted switchover is within a fifth of the job of the truth
    late = [(t, g.eta_s) for t, g in cloud.seen if t >= end / 2 and g.eta_s is not None]
    assert late, cloud.seen[-3:]
    assert all(abs(e - end) <= 0.2 * end for _, e in late), [
        (round(t), round(e)) for t, e in late if abs(e - end) > 0.2 * end][:5]
