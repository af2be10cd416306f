"""The engine's pieces that need no services: a job's window on the cloud, resuming a loop,
the paced simulation, the simulated groups and targets, the maintenance filter."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from slm_plugin import exception, planning
from slm_plugin.control import cloud as api
from slm_plugin.control.loop import ControlLoop, Resume
from slm_plugin.engine.maintenance import ServiceUpdateEndpoint, service_status
from slm_plugin.engine.runner import (
    JobCloud,
    LeaseLost,
    plan_from_dict,
    plan_to_dict,
)
from slm_plugin.scenario import loader
from slm_plugin.simulated.backend import PacedCloud, ScenarioGroups, group_id
from slm_plugin.simulation.cloud import SimulatedCloud
from tests.functional.service_helpers import SCENARIO


@pytest.fixture(scope='module')
def scenario():
    return loader.load(SCENARIO)


def _narrow(scenario, group):
    groups = ScenarioGroups(scenario)
    return groups.scenario(groups.find_group(group), {}, {})


class Recorder:
    def __init__(self):
        self.records = []

    def __call__(self, kind, member, detail):
        self.records.append((kind, member, detail))


def _job_cloud(cloud, members, t0=0.0, guard=lambda: None, record=None, started=()):
    return JobCloud(cloud, members, t0, None, record or Recorder(), guard, threading.Event(),
                    started=started)


# -- JobCloud ------------------------------------------------------------------------------


def test_a_job_sees_only_its_members_on_its_own_clock(scenario):
    sim = SimulatedCloud(scenario)
    sim.start('db-1', 'b-1', None)
    sim.wait(10.0)
    record = Recorder()
    web = _job_cloud(sim, ['web-1', 'web-2', 'web-3'], t0=10.0, record=record)
    web.start('web-1', 'b-2', 50.0)
    sim.wait(5.0)
    progress = web.progress()
    assert set(progress) == {'web-1'}
    assert progress['web-1'].started_at == pytest.approx(0.0)
    assert web.now() == pytest.approx(5.0)
    assert record.records == [('member.start_requested', 'web-1',
                               {'destination': 'b-2', 'cap_mibps': 50.0})]
    # a member's migration that an earlier job left (aborted) is not the next job's
    sim.abort('web-1')
    sim.wait(1.0)
    assert _job_cloud(sim, ['web-1', 'web-2', 'web-3'], t0=16.0).progress() == {}


def test_a_refused_start_is_recorded_and_raised(scenario):
    sim = SimulatedCloud(scenario)
    record = Recorder()
    job = _job_cloud(sim, ['web-1'], record=record)
    with pytest.raises(exception.CloudError, match='does not exist'):
        job.start('web-1', 'nowhere', None)
    assert [r[0] for r in record.records] == ['member.start_requested', 'member.start_refused']


def test_nothing_is_sent_once_the_lease_may_have_lapsed(scenario):
    sim = SimulatedCloud(scenario)

    def lapsed():
        raise LeaseLost()
    job = _job_cloud(sim, ['web-1'], guard=lapsed)
    for call in (lambda: job.start('web-1', 'b-1', None), lambda: job.hold('web-1', True),
                 lambda: job.set_cap('web-1', 10.0), lambda: job.abort('web-1'),
                 lambda: job.force_complete('web-1', 'pause')):
        with pytest.raises(LeaseLost):
            call()
    assert sim.progress() == {}


def test_steering_a_migration_that_just_ended_is_not_an_error(scenario):
    sim = SimulatedCloud(scenario)
    job = _job_cloud(sim, ['web-1'])
    job.start('web-1', 'b-1', None)
    sim.wait(600.0)
    assert sim.progress()['web-1'].status == api.COMPLETED
    job.set_cap('web-1', 20.0)  # the loop decided on older progress
    job.hold('web-1', False)
    with pytest.raises(exception.CloudError):  # never started: a real error
        _job_cloud(sim, ['web-2']).set_cap('web-2', 20.0)


# -- taking a loop over ----------------------------------------------------------------------


class Crash(Exception):
    pass


def test_a_resumed_loop_finishes_the_job_without_starting_anything_twice(scenario):
    """The loop of a dead engine is rebuilt from what the cloud shows and what was asked."""
    narrowed = _narrow(scenario, 'web')
    planner = planning.get('synchronized')
    plan = planner.plan(narrowed)
    sim = SimulatedCloud(narrowed)
    starts = []
    real_start = sim.start

    def counting_start(member, destination, cap):
        starts.append(member)
        real_start(member, destination, cap)
    sim.start = counting_start
    asked = Recorder()
    first = ControlLoop(_job_cloud(sim, [m.member for m in plan.members], record=asked),
                        narrowed, planner, plan, tick_s=1.0,
                        observer=lambda now, p: now > 8 and (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        first.run()
    assert sorted(starts) == ['web-1', 'web-2', 'web-3']
    assert all(p.status in (api.MIGRATING, api.HELD) for p in sim.progress().values())

    # a new engine, a new planner: only the cloud and the recorded requests are left
    stored = plan_from_dict(plan_to_dict(plan))
    held = {m: None for kind, m, _ in asked.records if kind == 'member.hold_requested'}
    started = frozenset(sim.progress())
    second = ControlLoop(_job_cloud(sim, [m.member for m in stored.members], started=started),
                         narrowed, planning.get('synchronized'), stored, tick_s=1.0,
                         resume=Resume(started=started, held=held))
    outcome = second.run()
    assert outcome.status == 'completed'
    assert sorted(starts) == ['web-1', 'web-2', 'web-3']
    switchovers = [p.switchover_at for p in sim.progress().values()]
    assert max(switchovers) - min(switchovers) < 1.0


def test_a_member_whose_start_was_lost_fails_rather_than_starting_again(scenario):
    narrowed = _narrow(scenario, 'db')
    planner = planning.get('parallel')
    plan = planner.plan(narrowed)
    sim = SimulatedCloud(narrowed)
    sim.start('db-1', plan.member('db-1').destination, None)
    loop = ControlLoop(_job_cloud(sim, ['db-1', 'db-2'], started={'db-1', 'db-2'}), narrowed,
                       planner, plan, tick_s=1.0,
                       on_failure='continue',
                       resume=Resume(started=frozenset({'db-1', 'db-2'}),
                                     lost={'db-2': 'asked of the cloud, never started'}))
    outcome = loop.run()
    assert outcome.status == 'failed'
    by_name = {m.member: m for m in outcome.members}
    assert by_name['db-1'].status == api.COMPLETED
    assert by_name['db-2'].status == 'not_started'
    assert 'db-2' not in sim.progress()


def test_plans_survive_the_database(scenario):
    plan = planning.get('synchronized').plan(_narrow(scenario, 'web'))
    stored = plan_to_dict(plan, predicted=dataclasses.replace(plan, notes=('forecast',)))
    assert plan_from_dict(stored) == dataclasses.replace(plan, notes=plan.notes + ('forecast',))
    assert set(stored['predicted']) == {'web-1', 'web-2', 'web-3'}


# -- the paced simulation --------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_the_paced_cloud_runs_speed_times_faster_than_the_wall_clock(scenario):
    clock = FakeClock()
    cloud = PacedCloud(SimulatedCloud(scenario), speed=20.0, clock=clock)
    assert cloud.now() == 0.0
    clock.t += 0.5
    assert cloud.now() == pytest.approx(10.0)
    cloud.start('web-1', 'b-1', None)
    with pytest.raises(exception.CloudError):
        cloud.start('web-1', 'b-2', None)
    clock.t += 1.0
    assert cloud.progress({'web-1'})['web-1'].started_at == pytest.approx(10.0)
    assert cloud.progress({'db-1'}) == {}
    assert cloud.stats() == {'now': pytest.approx(30.0), 'starts': {'web-1': 1},
                             'refused_starts': {'web-1': 1}}


# -- groups and targets of a simulated cloud -------------------------------------------------


def test_groups_are_found_by_name_or_id_and_by_host(scenario):
    groups = ScenarioGroups(scenario)
    web = groups.find_group('web')
    assert groups.find_group(web.id) is web
    assert web.id == group_id(scenario, 'web')
    assert [s.name for s in web.servers] == ['web-1', 'web-2', 'web-3']
    with pytest.raises(exception.GroupNotFound, match='nope'):
        groups.find_group('nope')
    assert [g.name for g in groups.groups_on_host('a-1')] == ['web', 'db']
    assert [g.name for g in groups.groups_on_host('a-3')] == ['web']
    assert groups.groups_on_host('b-1') == []


def test_a_target_narrows_the_scenario_to_the_group(scenario):
    groups = ScenarioGroups(scenario)
    web = groups.find_group('web')
    s = groups.scenario(web, {'availability_zone': 'dc-b'}, {'allowed_downtime_ms': 50})
    assert s.request.to_site == 'dc-b' and s.request.groups == ('web',)
    assert s.limits.policy.max_downtime_s == 0.05
    s = groups.scenario(web, {'hosts': ['b-1', 'b-2', 'b-3']}, {})
    assert s.request.to_hosts == ('b-1', 'b-2', 'b-3')
    assert groups.scenario(web, {'aggregate': 'dc-b'}, {}).request.to_site == 'dc-b'
    assert groups.evacuation_target('a-1') == {'availability_zone': 'dc-b'}
    assert groups.evacuation_target('a-1', 'dc-x') == {'availability_zone': 'dc-x'}
    for target, message in (({'availability_zone': 'dc-c'}, 'does not exist'),
                            ({'hosts': ['z-1']}, 'Host z-1 does not exist'),
                            ({'availability_zone': 'dc-a'}, 'already in dc-a')):
        with pytest.raises(exception.InvalidTarget, match=message):
            groups.scenario(web, target, {})


# -- maintenance -----------------------------------------------------------------------------


class Conf:
    class maintenance:
        disabled_reason_pattern = r'(?i)^maintenance\b'


@pytest.mark.parametrize('status, wanted', [
    ({'host': 'h', 'binary': 'nova-compute', 'disabled': True,
      'disabled_reason': 'maintenance window'}, True),
    ({'host': 'h', 'binary': 'nova-compute', 'disabled': True,
      'disabled_reason': 'MAINTENANCE: disks'}, True),
    ({'host': 'h', 'binary': 'nova-compute', 'disabled': True,
      'disabled_reason': 'no maintenance'}, False),
    ({'host': 'h', 'binary': 'nova-compute', 'disabled': True, 'disabled_reason': None}, False),
    ({'host': 'h', 'binary': 'nova-compute', 'disabled': False,
      'disabled_reason': 'maintenance'}, False),
    ({'host': 'h', 'binary': 'nova-conductor', 'disabled': True,
      'disabled_reason': 'maintenance'}, False),
    ({'binary': 'nova-compute', 'disabled': True, 'disabled_reason': 'maintenance'}, False),
])
def test_only_compute_services_disabled_for_maintenance_count(status, wanted):
    endpoint = ServiceUpdateEndpoint(Conf, engine=None)
    assert endpoint.wanted(service_status({'nova_object.data': status})) is wanted
    assert endpoint.wanted(service_status(status)) is wanted


def test_the_maintenance_endpoint_hears_service_update_only():
    rule = ServiceUpdateEndpoint.filter_rule
    assert rule.match({}, 'nova-compute:h', 'service.update', {}, {})
    for other in ('service.delete', 'service.update.end', 'instance.update', 'xservice.update'):
        assert not rule.match({}, 'nova-compute:h', other, {}, {})


def test_ticks_begin_at_a_steady_rate_whatever_the_work_took(scenario):
    import time

    sim = SimulatedCloud(scenario)
    job = JobCloud(sim, ['web-1'], 0.0, 1.0, Recorder(), lambda: None, threading.Event())
    began = time.monotonic()
    job.progress()
    time.sleep(0.15)  # the tick's work
    job.wait(0.3)
    assert 0.28 <= time.monotonic() - began < 0.4
    job.progress()
    time.sleep(0.35)  # work longer than the tick: the next one begins at once
    t = time.monotonic()
    job.wait(0.3)
    assert time.monotonic() - t < 0.05
