"""A migration that does not allow post-copy (``allow_post_copy``): no strategy switches a
member over by post-copy, the ones that must are refused, and the plan says what each
member will do instead."""

import pytest

from slm_plugin import exception, planning
from slm_plugin.control.loop import ControlLoop
from slm_plugin.engine.backends import with_options
from slm_plugin.scenario import loader
from slm_plugin.simulation.cloud import SimulatedCloud


class Forcing(SimulatedCloud):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.forced = []

    def force_complete(self, member, mode):
        self.forced.append((member, mode))
        super().force_complete(member, mode)


@pytest.mark.parametrize('strategy', ['synchronized-postcopy', 'evict'])
def test_strategies_that_switch_over_by_postcopy_are_refused(strategy):
    sc = with_options(loader.load_shipped('hadoop'), {'allow_post_copy': False})
    with pytest.raises(exception.PlanError, match='does not allow'):
        planning.get(strategy).plan(sc)
    # allowed, they plan and switch members over by post-copy
    allowed = loader.load_shipped('hadoop')
    planner = planning.get(strategy)
    plan = planner.plan(allowed)
    cloud = Forcing(allowed)
    assert ControlLoop(cloud, allowed, planner, plan).run().status == 'completed'
    assert {mode for _, mode in cloud.forced} == {'postcopy'}


@pytest.mark.parametrize('strategy', ['synchronized', 'parallel', 'sequential', 'bounded'])
@pytest.mark.parametrize('name', sorted(loader.shipped()))
def test_no_member_is_switched_over_by_postcopy_and_the_plan_says_so(strategy, name):
    sc = with_options(loader.load_shipped(name), {'allow_post_copy': False})
    assert sc.limits.policy.on_stall == 'pause' and not sc.limits.allow_postcopy
    planner = planning.get(strategy)
    plan = planner.plan(sc)
    assert not any('postcopy' in m.completion for m in plan.members), plan.members
    cloud = Forcing(sc)
    outcome = ControlLoop(cloud, sc, planner, plan).run()
    assert outcome.status == 'completed'
    assert all(mode != 'postcopy' for _, mode in cloud.forced), cloud.forced


def test_the_plan_of_a_member_that_cannot_converge_with_the_others_changes():
    """hadoop's namenode: forced by post-copy where it is allowed, not where it is not."""
    planner = planning.get('synchronized')
    free = {m.member: m.completion for m in planner.plan(loader.load_shipped('hadoop')).members}
    strict = {m.member: m.completion for m in planner.plan(
        with_options(loader.load_shipped('hadoop'), {'allow_post_copy': False})).members}
    assert free['namenode'] == 'forced-postcopy'
    assert 'postcopy' not in strict['namenode']
