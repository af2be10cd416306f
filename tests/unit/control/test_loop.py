"""The control loop driving the simulated cloud: outcomes, safety rules, aborts, failures.

No mocks: the simulator is the cloud. Where a test needs to see or disturb the
calls, a subclass of SimulatedCloud records them or refuses one, and the real
simulator still runs underneath.
"""

import dataclasses
import functools
from collections import Counter

import pytest

from slm_plugin import exception, planning
from slm_plugin.control import cloud as api
from slm_plugin.control.loop import ControlLoop
from slm_plugin.model import VM, CompletionPolicy
from slm_plugin.planning.baselines import ParallelPlanner
from slm_plugin.planning.plan import Decision
from slm_plugin.scenario import loader
from slm_plugin.scenario.model import Group, Host, Limits, Link, Member, Request, Scenario
from slm_plugin.simulation.cloud import SimulatedCloud
from slm_plugin.simulation.metrics import group_metrics, summary

PLANNERS = ['bounded', 'evict', 'parallel', 'sequential', 'synchronized']
SHIPPED = sorted(loader.shipped())
REFUSAL = 'no valid host was found: compute service on the target is down'


class RecordingCloud(SimulatedCloud):
    """The simulator, remembering every start it was asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.starts: list[tuple[float, str, str, float | None]] = []

    def start(self, member, destination, cap_mibps):
        self.starts.append((self.now(), member, destination, cap_mibps))
        super().start(member, destination, cap_mibps)


class RefusingCloud(RecordingCloud):
    """Refuses to start one member, as Nova does when the scheduler finds no host."""

    def __init__(self, scenario, refuse, **kwargs):
        super().__init__(scenario, **kwargs)
        self.refuse = refuse

    def start(self, member, destination, cap_mibps):
        if member == self.refuse:
            self.starts.append((self.now(), member, destination, cap_mibps))
            raise exception.CloudError(REFUSAL)
        super().start(member, destination, cap_mibps)


class FailingCloud(RecordingCloud):
    """One member's migration fails in the hypervisor after it has run for a while
    (the guest stays at its source), as libvirt reports a failed job."""

    def __init__(self, scenario, fail, after_s, **kwargs):
        super().__init__(scenario, **kwargs)
        self.fail, self.after_s = fail, after_s
        self.failed_at = None

    def progress(self, members=None):
        out = super().progress()
        p = out.get(self.fail)
        if p is not None and self.failed_at is None and p.status == api.MIGRATING \
                and self.now() - p.started_at >= self.after_s:
            super().abort(self.fail)  # the simulator stops it where it is
            self.failed_at = self.now()
            out = super().progress()
        if self.failed_at is not None:
            out[self.fail] = dataclasses.replace(out[self.fail], status=api.FAILED)
        return out


def run(sc, strategy, cloud=None, **loop_options):
    planner = planning.get(strategy)
    plan = planner.plan(sc)
    cloud = cloud or RecordingCloud(sc)
    loop = ControlLoop(cloud, sc, planner, plan, **loop_options)
    return loop.run(), cloud, plan


@functools.cache
def shipped_run(name, strategy):
    return run(loader.load_shipped(name), strategy)


def small(vms, link=100.0, policy=None, per_host=2):
    hosts = tuple(Host(f'{s}-{i}', s, 1000.0, 65536.0)
                  for s in ('east', 'west') for i in range(1, len(vms) + 1))
    members = tuple(Member(n, 'g', f'east-{i}', vm) for i, (n, vm) in enumerate(vms.items(), 1))
    return Scenario('small', hosts, (Link('east', 'west', link),),
                    (Group('g', members, policy='anti-affinity'),), Request(to_site='west'),
                    Limits(max_concurrent_per_host=per_host,
                           policy=policy or CompletionPolicy(on_stall='postcopy')))


# --- outcomes ----------------------------------------------------------------------------------


@pytest.mark.parametrize('name', ['hadoop', 'database-heavy'])
@pytest.mark.parametrize('seed', [0, 2])
def test_synchronized_keeps_the_group_together_where_parallel_splits_it(name, seed):
    sc = loader.load_shipped(name)
    split = {}
    for strategy in ('synchronized', 'parallel'):
        cloud = SimulatedCloud(sc, seed=seed, dirty_noise=0.2)
        outcome, cloud, _ = run(sc, strategy, cloud=cloud)
        assert outcome.status == 'completed'
        split[strategy] = summary(group_metrics(sc, cloud.results()))['split_time_s']
    assert split['synchronized'] <= 1.0
    assert split['parallel'] > 60.0
    assert split['parallel'] > 50 * split['synchronized']


def test_synchronized_on_a_small_scenario_switches_every_member_over_together():
    sc = small({'a': VM(4096, 20.0, wws_mib=1024), 'b': VM(1024, 5.0),
                'c': VM(2048, 30.0, wws_mib=512)})
    outcome, cloud, plan = run(sc, 'synchronized')
    assert outcome.status == 'completed'
    switch = [r.switchover_s for r in cloud.results()]
    assert max(switch) - min(switch) <= 1.0
    assert all(r.completion == 'converged' for r in cloud.results())


@pytest.mark.parametrize('strategy', PLANNERS)
@pytest.mark.parametrize('name', SHIPPED)
def test_every_member_completes_at_its_planned_destination(name, strategy):
    outcome, cloud, plan = shipped_run(name, strategy)
    assert outcome.status == 'completed', outcome.notes
    assert [m.member for m in outcome.members] == [m.member for m in plan.members]
    for m in outcome.members:
        mp = plan.member(m.member)
        assert (m.status, m.location, m.destination, m.source, m.error) == (
            api.COMPLETED, mp.destination, mp.destination, mp.source, None)
    results = {r.member: r for r in cloud.results()}
    assert set(results) == {m.member for m in plan.members}
    for r in results.values():
        assert r.status == api.COMPLETED
        assert r.destination == plan.member(r.member).destination
    # the loop stops at the first tick that sees everything finished
    last = max(r.finish_s for r in results.values())
    assert last <= outcome.finished_at < last + 1.0


@pytest.mark.parametrize('strategy', PLANNERS)
@pytest.mark.parametrize('name', SHIPPED)
def test_no_member_is_started_twice(name, strategy):
    _, cloud, plan = shipped_run(name, strategy)
    calls = Counter(member for _, member, _, _ in cloud.starts)
    assert calls == Counter(m.member for m in plan.members)
    for _, member, destination, _ in cloud.starts:
        assert destination == plan.member(member).destination


class StalePlanner(ParallelPlanner):
    """Asks to start every member at every tick, as a decision built on stale progress
    would."""

    name = 'stale'

    def decide(self, view):
        return Decision(start=tuple((m.member, m.destination, None) for m in view.plan.members))


def test_the_loop_never_restarts_a_member_a_planner_asks_for_again():
    sc = loader.load_shipped('hadoop')
    planner = StalePlanner()
    plan = planner.plan(sc)
    cloud = RecordingCloud(sc)
    outcome = ControlLoop(cloud, sc, planner, plan).run()
    assert outcome.status == 'completed'
    assert outcome.ticks > 10
    assert Counter(member for _, member, _, _ in cloud.starts) == Counter(
        m.member for m in plan.members)


def test_the_observer_sees_every_tick_in_order():
    seen = []
    sc = small({'a': VM(1024, 5.0), 'b': VM(2048, 10.0)})
    outcome, _, _ = run(sc, 'parallel', tick_s=0.5,
                        observer=lambda now, progress: seen.append((now, dict(progress))))
    assert len(seen) == outcome.ticks + 1
    assert [t for t, _ in seen] == [0.5 * i for i in range(len(seen))]
    assert seen[0][1] == {}
    assert {p.status for p in seen[-1][1].values()} == {api.COMPLETED}


class SlowReadingCloud(RecordingCloud):
    """Reading progress takes half a second of the cloud's time, as libvirt's statistics
    of a finishing migration take 1.5-2 s on a real host."""

    def progress(self, members=None):
        self.wait(0.5)
        return super().progress()


class PeriodPlanner(ParallelPlanner):
    """Parallel, remembering the period every view said the loop runs at."""

    name = 'period'

    def __init__(self):
        super().__init__()
        self.periods = []

    def decide(self, view):
        self.periods.append(view.tick_s)
        return super().decide(view)


def test_planners_see_the_period_the_loop_really_runs_at():
    """A decision lasts until the next look, which a slow cloud puts later than the
    configured tick: the view says how long, from the loop's own looks."""
    sc = small({'a': VM(1024, 5.0), 'b': VM(2048, 10.0)})
    planner = PeriodPlanner()
    outcome = ControlLoop(SlowReadingCloud(sc), sc, planner, planner.plan(sc),
                          tick_s=1.0).run()
    assert outcome.status == 'completed'
    assert planner.periods[0] == 1.0  # the configured tick until two looks
    assert planner.periods[1:] and set(planner.periods[1:]) == {1.5}


# --- abort ---------------------------------------------------------------------------------


@pytest.mark.parametrize('name, strategy, at', [
    ('hadoop', 'parallel', 150.0),
    ('hadoop', 'sequential', 120.0),
    ('hadoop', 'evict', 300.0),
    ('database-heavy', 'synchronized', 100.0),
    ('three-tier-web', 'bounded', 400.0),
])
def test_request_abort_from_the_observer_cancels_what_has_not_switched_over(name, strategy, at):
    sc = loader.load_shipped(name)
    planner = planning.get(strategy)
    plan = planner.plan(sc)
    cloud = SimulatedCloud(sc)
    loop = ControlLoop(cloud, sc, planner, plan,
                       observer=lambda now, progress: now >= at and loop.request_abort())
    outcome = loop.run()
    assert outcome.status == 'aborted'
    assert at <= outcome.finished_at < at + 1.0
    progress = cloud.progress()
    statuses = Counter()
    for m in outcome.members:
        statuses[m.status] += 1
        if m.status in api.RESUMED:
            assert m.location == m.destination
        else:
            assert m.status in (api.ABORTED, 'not_started')
            assert m.location == m.source
        # the outcome tells what the cloud says
        assert m.status == (progress[m.member].status if m.member in progress else 'not_started')
        assert m.error is None
    assert statuses[api.ABORTED] >= 1
    # nothing is left migrating or waiting at the source
    assert all(p.status not in (api.MIGRATING, api.HELD) for p in progress.values())
    for r in cloud.results():
        if r.status == api.ABORTED:
            assert r.switchover_s is None
    if strategy == 'sequential':
        assert statuses['not_started'] >= 1 and statuses[api.COMPLETED] >= 1


def test_a_deadline_stops_the_job_as_failed_and_cancels_the_rest():
    sc = loader.load_shipped('hadoop')
    outcome, cloud, _ = run(sc, 'synchronized', deadline_s=60.0)
    assert outcome.status == 'failed'
    assert 'deadline of 60 s reached' in outcome.notes
    assert {m.status for m in outcome.members} == {api.ABORTED}
    assert all(m.location == m.source for m in outcome.members)


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize('strategy', PLANNERS)
def test_a_refused_start_with_on_failure_abort_stops_the_job(strategy):
    sc = loader.load_shipped('hadoop')
    cloud = RefusingCloud(sc, 'worker-3')
    outcome, cloud, plan = run(sc, strategy, cloud=cloud, on_failure='abort')
    assert outcome.status == 'failed'
    (refused_at,) = [t for t, member, _, _ in cloud.starts if member == 'worker-3']
    assert outcome.finished_at <= refused_at + 1.0
    by_name = {m.member: m for m in outcome.members}
    assert by_name['worker-3'].error == REFUSAL
    assert by_name['worker-3'].status == 'not_started'
    assert by_name['worker-3'].location == by_name['worker-3'].source
    for m in outcome.members:
        if m.member != 'worker-3':
            assert m.error is None
            assert m.status in (api.ABORTED, api.COMPLETED, 'not_started')
    assert all(p.status not in (api.MIGRATING, api.HELD) for p in cloud.progress().values())
    # nothing was started after the refusal
    assert all(t <= refused_at for t, _, _, _ in cloud.starts)


@pytest.mark.parametrize('strategy', PLANNERS)
def test_a_refused_start_with_on_failure_continue_lets_the_others_complete(strategy):
    sc = loader.load_shipped('hadoop')
    cloud = RefusingCloud(sc, 'worker-3')
    outcome, cloud, plan = run(sc, strategy, cloud=cloud, on_failure='continue',
                               deadline_s=5000.0)
    assert outcome.status == 'failed'
    assert not any('deadline' in n for n in outcome.notes)
    by_name = {m.member: m for m in outcome.members}
    assert by_name['worker-3'].error == REFUSAL
    assert by_name['worker-3'].status == 'not_started'
    for m in outcome.members:
        if m.member != 'worker-3':
            assert (m.status, m.location, m.error) == (api.COMPLETED, m.destination, None)
    # the refused member was asked for once and never again
    assert [member for _, member, _, _ in cloud.starts].count('worker-3') == 1
    last = max(r.finish_s for r in cloud.results())
    assert outcome.finished_at < last + 1.0


class ForgetfulCloud(RecordingCloud):
    """Stops reporting one member's migration after a while, as a simulated cloud that
    was restarted (or a record Nova deleted) does: the migration just vanishes."""

    def __init__(self, scenario, forget, after_s, **kwargs):
        super().__init__(scenario, **kwargs)
        self.forget, self.after_s = forget, after_s

    def progress(self, members=None):
        out = super().progress()
        p = out.get(self.forget)
        if p is not None and self.now() - p.started_at >= self.after_s:
            del out[self.forget]
        return out


@pytest.mark.parametrize('on_failure', ['abort', 'continue'])
def test_a_migration_the_cloud_forgets_fails_and_is_not_started_again(on_failure):
    """Before, the loop waited for it for ever: it was started, so never started again,
    and never final, so never done."""
    sc = loader.load_shipped('hadoop')
    cloud = ForgetfulCloud(sc, 'worker-3', after_s=30.0)
    outcome, cloud, plan = run(sc, 'parallel', cloud=cloud, on_failure=on_failure,
                               deadline_s=5000.0)
    assert outcome.status == 'failed'
    by_name = {m.member: m for m in outcome.members}
    assert 'no longer reports its migration' in by_name['worker-3'].error
    assert [s[1] for s in cloud.starts].count('worker-3') == 1
    assert outcome.finished_at < 5000.0


@pytest.mark.parametrize('strategy', ['parallel', 'synchronized'])
def test_a_migration_failing_in_the_cloud_with_on_failure_abort_cancels_the_others(strategy):
    sc = loader.load_shipped('hadoop')
    cloud = FailingCloud(sc, 'worker-3', after_s=60.0)
    outcome, cloud, plan = run(sc, strategy, cloud=cloud, on_failure='abort')
    assert outcome.status == 'failed'
    assert cloud.failed_at is not None
    assert outcome.finished_at <= cloud.failed_at + 1.0
    by_name = {m.member: m for m in outcome.members}
    assert by_name['worker-3'].error == 'its migration failed in the cloud'
    assert by_name['worker-3'].location == by_name['worker-3'].source
    # the others were cancelled where they were: none switched over after the failure
    assert {m.status for m in outcome.members if m.member != 'worker-3'} <= {
        api.ABORTED, 'not_started'}
    assert all(p.status not in (api.MIGRATING, api.HELD) for p in cloud.progress().values())


def test_a_migration_failing_in_the_cloud_with_on_failure_continue_lets_the_others_end():
    sc = loader.load_shipped('hadoop')
    cloud = FailingCloud(sc, 'worker-3', after_s=60.0)
    outcome, cloud, plan = run(sc, 'parallel', cloud=cloud, on_failure='continue',
                               deadline_s=5000.0)
    assert outcome.status == 'failed'
    for m in outcome.members:
        if m.member != 'worker-3':
            assert (m.status, m.location, m.error) == (api.COMPLETED, m.destination, None)


def test_a_refused_action_on_a_running_member_is_reported_with_its_text():
    class NoCaps(SimulatedCloud):
        def set_cap(self, member, cap_mibps):
            raise exception.CloudError(f'{member}: libvirt does not support migrate-setspeed here')

    sc = loader.load_shipped('database-heavy')
    outcome, _, _ = run(sc, 'synchronized', cloud=NoCaps(sc), on_failure='abort')
    assert outcome.status == 'failed'
    errors = [m.error for m in outcome.members if m.error]
    assert errors and all('migrate-setspeed' in e for e in errors)


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize('tick', [0.0, -1.0])
def test_the_loop_rejects_a_tick_that_is_not_positive(tick):
    sc = small({'a': VM(1024)})
    planner = planning.get('parallel')
    with pytest.raises(ValueError, match='tick_s must be positive'):
        ControlLoop(SimulatedCloud(sc), sc, planner, planner.plan(sc), tick_s=tick)


def test_the_loop_rejects_an_unknown_failure_policy():
    sc = small({'a': VM(1024)})
    planner = planning.get('parallel')
    with pytest.raises(ValueError, match="on_failure must be abort or continue, got 'retry'"):
        ControlLoop(SimulatedCloud(sc), sc, planner, planner.plan(sc), on_failure='retry')


# --- an agent that does not answer -------------------------------------------------------------


class AgentAwayCloud(RecordingCloud):
    """The caps of one member find no agent from the instant the planner first holds it
    (its cap at the hold's trickle) until ``back_after_s`` later (never, by default), as
    an slm-agent that was killed and restarted. Its migration keeps the cap it had, as
    libvirt keeps a job's max speed when nobody changes it."""

    def __init__(self, scenario, member, back_after_s=float('inf'), **kwargs):
        super().__init__(scenario, **kwargs)
        self.member, self.back_after_s = member, back_after_s
        self.away_at = None
        self.refused: list[float] = []
        self.caps_after: list[tuple[float, float | None]] = []

    def _away(self):
        return self.away_at is not None and self.now() < self.away_at + self.back_after_s

    def set_cap(self, member, cap_mibps):
        if member == self.member:
            if self.away_at is None and cap_mibps is not None and cap_mibps <= 1.0:
                super().set_cap(member, cap_mibps)  # the hold lands; then the agent dies
                self.away_at = self.now()
                return
            if self._away():
                self.refused.append(self.now())
                raise exception.ActuatorError(
                    f'{member}: no SLM agent answers on east-3',
                    cause=exception.AgentUnavailable('no SLM agent answers on east-3'))
            if self.away_at is not None:
                self.caps_after.append((self.now(), cap_mibps))
        super().set_cap(member, cap_mibps)


def test_a_cap_the_agent_missed_is_sent_again_when_it_is_back():
    sc = loader.load_shipped('three-tier-web')  # its web tier is held for its database
    cloud = AgentAwayCloud(sc, 'web-2', back_after_s=20.0)
    outcome, cloud, plan = run(sc, 'synchronized', cloud=cloud, on_failure='abort',
                               tick_s=1.0, steer_retry_s=60.0)
    assert cloud.away_at is not None and cloud.refused, 'the agent was never away'
    assert outcome.status == 'completed', outcome
    assert all(m.status == api.COMPLETED and m.error is None for m in outcome.members)
    # refused every tick while away, then the wanted cap landed at the first tick back
    assert len(cloud.refused) >= 15
    assert cloud.caps_after and cloud.caps_after[0][0] <= cloud.away_at + 20.0 + 1.0


@pytest.mark.parametrize('on_failure', ['abort', 'continue'])
def test_a_member_held_by_an_agent_that_never_returns_is_not_left_stranded(on_failure):
    """Before, under 'continue', the member kept its trickle of a cap and nobody ended
    it: the job waited for it until its deadline."""
    sc = loader.load_shipped('three-tier-web')  # its web tier is held for its database
    cloud = AgentAwayCloud(sc, 'web-2')
    outcome, cloud, plan = run(sc, 'synchronized', cloud=cloud, on_failure=on_failure,
                               tick_s=1.0, steer_retry_s=60.0, deadline_s=5000.0)
    assert outcome.status == 'failed'
    assert not any('deadline' in n for n in outcome.notes)
    by_name = {m.member: m for m in outcome.members}
    stranded = by_name['web-2']
    assert 'no SLM agent answers' in stranded.error
    assert 'could not be steered for 60 s' in stranded.error
    assert (stranded.status, stranded.location) == (api.ABORTED, stranded.source)
    # it failed once the retries ran out, not at the first refusal
    assert cloud.refused[-1] - cloud.refused[0] >= 59.0
    others = {m.status for m in outcome.members if m.member != 'web-2'}
    if on_failure == 'continue':
        assert others == {api.COMPLETED}
    else:
        assert others <= {api.ABORTED, 'not_started'}
    assert all(p.status not in (api.MIGRATING, api.HELD) for p in cloud.progress().values())


def test_a_cap_refused_for_good_fails_the_member_at_once():
    class Refusing(RecordingCloud):
        refused_at = None

        def set_cap(self, member, cap_mibps):
            if member == 'worker-3' and self.refused_at is None and cap_mibps is not None:
                self.refused_at = self.now()
            if member == 'worker-3' and self.refused_at is not None:
                raise exception.ActuatorError(
                    'worker-3: no migration job', cause=exception.NoMigration('no job'))
            super().set_cap(member, cap_mibps)

    sc = loader.load_shipped('hadoop')
    outcome, cloud, plan = run(sc, 'synchronized', cloud=Refusing(sc), on_failure='abort')
    assert outcome.status == 'failed'
    assert outcome.finished_at <= cloud.refused_at + 1.5
