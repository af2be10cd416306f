"""Planners: placement, loading by name, plans of the shipped scenarios, admission under
limits, and the synchronized planner's bandwidth solver (pure, worked by hand)."""

import dataclasses
import math
from collections import Counter

import pytest

from slm_plugin import exception, planning
from slm_plugin.control import cloud as api
from slm_plugin.control.cloud import Progress
from slm_plugin.model import VM, CompletionPolicy
from slm_plugin.planning.placement import place
from slm_plugin.planning.plan import View, format_table
from slm_plugin.planning.synchronized import (
    BULK,
    FLOOR_MIBPS,
    HOLD,
    MIN_TAU_S,
    RELEASE,
    RESERVE_MIB,
    Flow,
    solve,
)
from slm_plugin.scenario import loader
from slm_plugin.scenario.model import Group, Host, Limits, Link, Member, Request, Scenario

approx = pytest.approx
PLANNERS = ['bounded', 'evict', 'parallel', 'sequential', 'synchronized', 'synchronized-postcopy']
SHIPPED = sorted(loader.shipped())


def scenario(groups, *, east=4, west=4, west_memory=65536.0, nic=1000.0, link=100.0,
             request=None, limits=None):
    """``groups``: (name, policy, [(member, east host number, memory MiB, dirty MiB/s)])."""
    hosts = tuple(Host(f'east-{i}', 'east', nic, 262144.0) for i in range(1, east + 1))
    hosts += tuple(Host(f'west-{i}', 'west', nic, west_memory) for i in range(1, west + 1))
    gs = tuple(
        Group(name, tuple(Member(m, name, f'east-{h}', VM(mem, dirty_rate_mibps=d))
                          for m, h, mem, d in members), policy=policy)
        for name, policy, members in groups
    )
    return Scenario('p', hosts, (Link('east', 'west', link),), gs,
                    request or Request(to_site='west'), limits or Limits())


def progress(member, status, *, round=0, remaining=0.0, dirty=None):
    return Progress(member=member, status=status, disk_remaining_mib=0.0,
                    memory_remaining_mib=remaining, round=round, wire_mib=0.0,
                    throughput_mibps=0.0, dirty_rate_mibps=dirty, started_at=0.0)


def view(sc, plan, states, now=0.0):
    return View(sc, plan, now, {name: progress(name, s) for name, s in states.items()})


# --- placement -------------------------------------------------------------------------------


def test_anti_affinity_members_get_distinct_hosts():
    sc = scenario([('g', 'anti-affinity',
                    [('a', 1, 4096, 0), ('b', 2, 4096, 0), ('c', 3, 4096, 0)])])
    dest = place(sc)
    assert set(dest) == {'a', 'b', 'c'}
    assert len(set(dest.values())) == 3
    assert all(h.startswith('west-') for h in dest.values())


def test_affinity_members_share_one_host():
    sc = scenario([('g', 'affinity',
                    [('a', 1, 4096, 0), ('b', 1, 8192, 0), ('c', 1, 2048, 0)])])
    dest = place(sc)
    assert len(set(dest.values())) == 1


def test_affinity_that_fits_no_single_host_names_the_group():
    sc = scenario([('tight', 'affinity', [('a', 1, 3000, 0), ('b', 1, 3000, 0)])],
                  west_memory=4096.0)
    with pytest.raises(exception.PlanError,
            match=r'group tight \(affinity\) needs one host with 6000 MiB'):
        place(sc)


def test_anti_affinity_with_too_few_target_hosts_names_the_group():
    sc = scenario([('spread', 'anti-affinity',
                    [('a', 1, 1024, 0), ('b', 2, 1024, 0), ('c', 3, 1024, 0)])], west=2)
    with pytest.raises(exception.PlanError,
            match='group spread: cannot place .*anti-affinity needs 3'):
        place(sc)


def test_members_too_big_for_any_target_host_name_the_group():
    sc = scenario([('big', 'none', [('a', 1, 8192, 0)])], west_memory=4096.0)
    with pytest.raises(exception.PlanError,
            match=r'group big: cannot place a \(8192 MiB\): no target'):
        place(sc)


def test_soft_anti_affinity_shares_hosts_when_it_must_and_capacity_holds():
    sc = scenario([('soft', 'soft-anti-affinity',
                    [('a', 1, 1024, 0), ('b', 2, 1024, 0), ('c', 3, 1024, 0)])],
                  west=2, west_memory=2048.0)
    dest = place(sc)
    assert set(dest) == {'a', 'b', 'c'}
    # three members on two hosts of room for two each
    assert sorted(Counter(dest.values()).values()) == [1, 2]


def test_placement_never_overfills_a_host():
    # four 3 GiB members on hosts of 8 GiB: at most two a host
    sc = scenario([('g', 'none', [(f'm{i}', 1, 3072, 0) for i in range(4)])],
                  west=2, west_memory=8192.0)
    dest = place(sc)
    assert sorted(Counter(dest.values()).values()) == [2, 2]


def test_a_member_already_on_a_target_host_is_refused():
    sc = scenario([('g', 'none', [('a', 1, 1024, 0), ('b', 2, 1024, 0)])],
                  request=Request(to_hosts=('west-1', 'east-2')))
    with pytest.raises(exception.PlanError, match='g/b is already on target host east-2'):
        place(sc)


def test_placement_is_deterministic():
    sc = loader.load_shipped('maintenance-site')
    assert place(sc) == place(sc)


# --- loading planners by name ----------------------------------------------------------------


def test_every_planner_is_installed():
    assert planning.names() == PLANNERS


def test_an_unknown_planner_is_refused_with_the_choices():
    with pytest.raises(exception.PlanError) as err:
        planning.get('nope')
    message = str(err.value)
    assert "Unknown strategy 'nope'" in message
    for name in PLANNERS:
        assert name in message


@pytest.mark.parametrize('name', PLANNERS)
def test_get_returns_a_planner_of_that_name(name):
    assert planning.get(name).name == name


# --- plans of the shipped scenarios ----------------------------------------------------------


@pytest.mark.parametrize('strategy', PLANNERS)
@pytest.mark.parametrize('name', SHIPPED)
def test_every_shipped_scenario_plans_with_every_planner(name, strategy):
    sc = loader.load_shipped(name)
    plan = planning.get(strategy).plan(sc)
    hosts = {h.name: h for h in sc.hosts}
    members = {m.name: m for m in sc.members()}
    assert plan.strategy == strategy
    assert sorted(m.member for m in plan.members) == sorted(members)
    for mp in plan.members:
        assert mp.source == members[mp.member].host
        assert hosts[mp.destination].site == sc.request.to_site
        assert mp.group == members[mp.member].group
        assert 0 <= mp.predicted_start_s <= mp.predicted_switchover_s < math.inf
        assert mp.predicted_wire_mib > 0
    # placement respects the hosts' memory and the groups' hard policies
    used = Counter()
    for mp in plan.members:
        used[mp.destination] += members[mp.member].vm.memory_mib
    for host, mib in used.items():
        assert mib <= hosts[host].memory_mib
    for g in sc.groups:
        targets = [plan.member(m.name).destination for m in g.members]
        if g.policy == 'anti-affinity':
            assert len(set(targets)) == len(targets)
        if g.policy == 'affinity':
            assert len(set(targets)) == 1
    assert plan.lower_bound_s > 0
    table = format_table(plan)
    rows = [line for line in table.splitlines() if line.split(' ', 1)[0] in members]
    assert sorted(r.split(' ', 1)[0] for r in rows) == sorted(members)


def test_format_table_has_a_row_per_member_and_the_notes():
    sc = loader.load_shipped('three-tier-web')
    plan = planning.get('parallel').plan(sc)
    lines = format_table(plan).splitlines()
    assert lines[0].split()[:4] == ['member', 'group', 'source', 'destination']
    assert set(lines[1]) <= {'-', ' '}
    body = lines[2:2 + len(plan.members)]
    assert [line.split()[0] for line in body] == [m.member for m in plan.members]
    assert lines[2 + len(plan.members)].startswith('strategy parallel; lower bound')
    assert lines[3 + len(plan.members):] == [f'note: {n}' for n in plan.notes]


def test_sequential_plans_one_wave_per_member_back_to_back():
    plan = planning.get('sequential').plan(loader.load_shipped('hadoop'))
    assert [m.wave for m in plan.members] == list(range(len(plan.members)))
    for before, after in zip(plan.members, plan.members[1:], strict=False):
        assert after.predicted_start_s >= before.predicted_switchover_s


# --- admission -------------------------------------------------------------------------------


def _three_on_one_host(limits):
    return scenario([('g', 'none', [('a', 1, 1024, 0), ('b', 1, 1024, 0), ('c', 1, 1024, 0),
                                    ('d', 2, 1024, 0)])], limits=limits)


def test_sequential_admits_one_member_at_a_time_in_plan_order():
    sc = _three_on_one_host(Limits(max_concurrent_per_host=4))
    planner = planning.get('sequential')
    plan = planner.plan(sc)
    order = [m.member for m in plan.members]
    assert [s[0] for s in planner.decide(view(sc, plan, {})).start] == [order[0]]
    for i in range(len(order) - 1):
        running = dict.fromkeys(order[:i], api.COMPLETED) | {order[i]: api.MIGRATING}
        assert planner.decide(view(sc, plan, running)).start == ()
        done = dict.fromkeys(order[:i + 1], api.COMPLETED)
        assert [s[0] for s in planner.decide(view(sc, plan, done)).start] == [order[i + 1]]
    everything = dict.fromkeys(order, api.COMPLETED)
    assert planner.decide(view(sc, plan, everything)).start == ()


@pytest.mark.parametrize('strategy', ['parallel', 'bounded', 'evict', 'synchronized'])
def test_the_per_host_limit_holds_back_members_of_a_busy_host(strategy):
    sc = _three_on_one_host(Limits(max_concurrent_per_host=2))
    planner = planning.get(strategy)
    plan = planner.plan(sc)
    started = [s[0] for s in planner.decide(view(sc, plan, {})).start]
    by_host = Counter(plan.member(m).source for m in started)
    assert by_host == {'east-1': 2, 'east-2': 1}
    # one of east-1's finishes (or switches over and drains): still two in flight there
    first = [m for m in started if plan.member(m).source == 'east-1']
    states = {first[0]: api.SWITCHED_OVER, first[1]: api.HELD, 'd': api.MIGRATING}
    assert planner.decide(view(sc, plan, states)).start == ()
    states[first[0]] = api.COMPLETED
    (third,) = [s[0] for s in planner.decide(view(sc, plan, states)).start]
    assert third not in started and plan.member(third).source == 'east-1'


def test_an_aborted_or_failed_member_frees_its_slot_and_is_not_restarted():
    sc = _three_on_one_host(Limits(max_concurrent_per_host=1))
    planner = planning.get('parallel')
    plan = planner.plan(sc)
    started = [s[0] for s in planner.decide(view(sc, plan, {})).start]
    (on_east_1,) = [m for m in started if plan.member(m).source == 'east-1']
    states = {m: api.MIGRATING for m in started}
    states[on_east_1] = api.ABORTED
    again = [s[0] for s in planner.decide(view(sc, plan, states)).start]
    assert len(again) == 1 and again[0] not in started


def test_the_per_link_limit_and_the_window_bound_the_starts():
    members = [(f'm{i}', i, 1024, 0) for i in range(1, 5)]
    sc = scenario([('g', 'none', members)], limits=Limits(max_concurrent_per_link=3))
    planner = planning.get('parallel')
    assert len(planner.decide(view(sc, planner.plan(sc), {})).start) == 3
    sc = scenario([('g', 'none', members)])
    planner = planning.get('bounded', window=2)
    plan = planner.plan(sc)
    first = planner.decide(view(sc, plan, {})).start
    assert len(first) == 2
    states = {first[0][0]: api.COMPLETED, first[1][0]: api.MIGRATING}
    assert len(planner.decide(view(sc, plan, states)).start) == 1


def test_a_window_below_one_is_refused():
    with pytest.raises(exception.PlanError, match='window must be at least 1'):
        planning.get('bounded', window=0)


# --- the synchronized solver -----------------------------------------------------------------

CAPACITY = {'nic-a': 1000.0, 'nic-b': 1000.0, 'nic-c': 1000.0, 'wan': 100.0}


def flow(name, stage, remaining=0.0, dirty=0.0, ratio=1.0):
    return Flow(name, stage, remaining, dirty, ratio, (f'nic-{name}', 'wan'))


def test_bulk_caps_are_proportional_to_the_bytes_left_and_fill_the_bottleneck():
    flows = [flow('a', BULK, 1000.0, 5.0), flow('b', BULK, 3000.0, 10.0)]
    tau, caps, forced = solve(flows, CAPACITY)
    assert tau == approx(40.0)  # 4000 MiB over 100 MiB/s
    assert caps == {'a': approx(25.0), 'b': approx(75.0)}
    assert caps['b'] / caps['a'] == approx(3.0)
    assert sum(caps.values()) == approx(CAPACITY['wan'])
    assert forced == set()


def test_bulk_caps_count_wire_bytes():
    flows = [flow('a', BULK, 2000.0, ratio=0.5), flow('b', BULK, 3000.0)]
    tau, caps, _ = solve(flows, CAPACITY)
    assert tau == approx(40.0)  # 1000 + 3000 wire MiB
    assert caps == {'a': approx(25.0), 'b': approx(75.0)}


def test_bulk_is_bound_by_a_source_nic_when_that_is_tighter():
    capacity = dict(CAPACITY, **{'nic-a': 10.0})
    tau, caps, _ = solve([flow('a', BULK, 1000.0), flow('b', BULK, 1000.0)], capacity)
    assert tau == approx(100.0)  # nic-a: 1000 / 10
    assert caps == {'a': approx(10.0), 'b': approx(10.0)}


def test_bulk_never_plans_to_finish_sooner_than_the_floor():
    tau, caps, _ = solve([flow('a', BULK, 1.0)], CAPACITY)
    assert tau == MIN_TAU_S
    assert caps['a'] == approx(1.0 / MIN_TAU_S)


def test_bulk_shares_what_held_members_leave():
    flows = [flow('a', BULK, 1000.0), flow('b', HOLD, dirty=8.0), flow('c', HOLD)]
    tau, caps, _ = solve(flows, CAPACITY)
    # held members run at the floor whatever they dirty: it is what keeps them unconverged
    assert caps['b'] == caps['c'] == FLOOR_MIBPS
    spare = CAPACITY['wan'] - 2 * FLOOR_MIBPS
    assert tau == approx(1000.0 / spare)
    assert caps['a'] == approx(spare)


def test_release_caps_end_every_member_at_one_instant_dirty_rates_included():
    flows = [flow('a', RELEASE, 100.0, dirty=10.0), flow('b', RELEASE, 300.0, dirty=20.0)]
    tau, caps, forced = solve(flows, CAPACITY)
    assert forced == set()
    assert tau == approx(400.0 / (100.0 - 30.0))
    assert caps == {'a': approx(100.0 / tau + 10.0), 'b': approx(300.0 / tau + 20.0)}
    assert sum(caps.values()) == approx(CAPACITY['wan'])
    # the geometric series: R / (cap - D) is the same instant for both
    assert 100.0 / (caps['a'] - 10.0) == approx(300.0 / (caps['b'] - 20.0))


def test_a_member_whose_dirty_rate_cannot_fit_is_forced_out_of_the_common_finish():
    flows = [flow('a', RELEASE, 50.0, dirty=70.0), flow('b', RELEASE, 50.0, dirty=10.0)]
    tau, caps, forced = solve(flows, CAPACITY)
    # after b (10), 90 MiB/s are left and 70 is more than 0.6 of that
    assert forced == {'a'}
    assert tau == approx(100.0 / (100.0 - 10.0))
    _, _, forced = solve([flow('a', BULK, 1000.0, dirty=70.0), flow('b', BULK, 1000.0, 10.0)],
                         CAPACITY)
    assert forced == {'a'}
    _, _, forced = solve([flow('a', RELEASE, 10.0, dirty=40.0)], CAPACITY)
    assert forced == set()


def test_solve_is_pure():
    flows = [flow('a', BULK, 1000.0, 5.0), flow('b', RELEASE, 20.0, dirty=10.0)]
    capacity = dict(CAPACITY)
    first = solve(flows, capacity)
    assert capacity == CAPACITY
    assert solve(flows, capacity) == first


def _progress(name, rnd, memory_left, started=0.0, dirty=None):
    return Progress(member=name, status=api.MIGRATING, disk_remaining_mib=0.0,
                    memory_remaining_mib=memory_left, round=rnd,
                    wire_mib=1024.0 * max(rnd, 0) + 1024.0 - memory_left,
                    throughput_mibps=0.0, dirty_rate_mibps=dirty, started_at=started,
                    round_started_at=started)


def test_synchronized_holds_a_member_at_its_reserve_and_releases_the_group_together():
    """The hold QEMU keeps: the first pass stops a reserve short and runs at the floor
    (no hold call, no downtime trick); once every member is held, all are released in
    one tick with caps that end them together."""
    sc = scenario([('g', 'anti-affinity', [('idle', 1, 1024, 0), ('busy', 2, 1024, 6)])])
    planner = planning.get('synchronized')
    plan = planner.plan(sc)

    def decide(progress, now=10.0):
        return planner.decide(View(sc, plan, now, progress))

    d = decide({'idle': _progress('idle', 0, RESERVE_MIB), 'busy': _progress('busy', 0, 400)})
    assert d.caps['idle'] == FLOOR_MIBPS
    assert d.caps['busy'] > 50  # the rest of the link, to its own reserve
    assert not d.hold and not d.force
    # a member that has not reported its pass yet (0 sent, 0 left) is not held
    fresh = _progress('busy', 0, 0.0)
    fresh = Progress(**{**{f: getattr(fresh, f) for f in fresh.__slots__}, 'wire_mib': 0.0})
    assert decide({'idle': _progress('idle', 0, RESERVE_MIB),
                   'busy': fresh}).caps['busy'] > FLOOR_MIBPS
    # the busy one's first pass ends: both held, the group is released in this tick
    d = decide({'idle': _progress('idle', 0, RESERVE_MIB * 0.9),
                'busy': _progress('busy', 1, 60.0, started=9.0, dirty=6.0)})
    left = {'idle': RESERVE_MIB * 0.9, 'busy': 60.0 + 6.0 * 1.0}
    tau = sum(left.values()) / (100.0 - 6.0)
    assert d.caps['idle'] == approx(left['idle'] / tau)
    assert d.caps['busy'] == approx(left['busy'] / tau + 6.0)
    # released stays released: a member back within its reserve is not held again
    d = decide({'idle': _progress('idle', 0, 5.0),
                'busy': _progress('busy', 2, 10.0, started=10.5, dirty=6.0)}, now=11.0)
    assert d.caps['idle'] > FLOOR_MIBPS and d.caps['busy'] > 6.0


def test_a_first_pass_about_to_reach_its_reserve_lands_in_it_instead_of_through_it():
    """With the others held, the solver gives the last member in bulk what is left of
    the link to reach its reserve at once; that cap lasts a whole tick. On QEMU it sent
    the pass from 27.6 to 11.5 MiB, under the 16 MiB QEMU's threshold (53 MiB/s x 0.3 s)
    then was, and the member switched over by itself, 1.5 s before its group."""
    sc = scenario([('g', 'anti-affinity', [('late', 1, 1024, 0), ('held', 2, 1024, 0)])])
    planner = planning.get('synchronized')
    plan = planner.plan(sc)
    downtime = sc.limits.policy.max_downtime_s
    above = 3.6  # MiB left before its reserve
    d = planner.decide(View(sc, plan, 10.0, {  # the loop looks every 0.25 s
        'late': _progress('late', 0, RESERVE_MIB + above),
        'held': _progress('held', 0, RESERVE_MIB)}, tick_s=0.25))
    cap = d.caps['late']
    assert RESERVE_MIB + above - cap * 0.25 >= RESERVE_MIB / 2  # half the reserve kept
    assert cap * downtime <= RESERVE_MIB / 2  # QEMU's threshold below what is kept
    assert cap > FLOOR_MIBPS  # still moving toward its reserve
    # far from its reserve, the same member gets the link as before
    d = planner.decide(View(sc, plan, 10.25, {'late': _progress('late', 0, 400.0),
                                              'held': _progress('held', 0, RESERVE_MIB)},
                            tick_s=0.25))
    assert d.caps['late'] > 90


def test_the_synchronized_plan_reports_forced_members_and_one_switchover_per_group():
    sc = scenario([('g', 'anti-affinity', [('hot', 1, 8192, 80), ('cool', 2, 8192, 5)])],
                  limits=Limits(policy=CompletionPolicy(on_stall='postcopy')))
    plan = planning.get('synchronized').plan(sc)
    assert plan.member('hot').completion == 'forced-postcopy'
    assert plan.member('cool').completion == 'converged'
    assert plan.member('hot').predicted_switchover_s == plan.member('cool').predicted_switchover_s
    # initial caps: bulk shares of the link in proportion to the bytes
    assert plan.member('hot').cap_mibps + plan.member('cool').cap_mibps == approx(100.0)


def test_the_synchronized_plan_runs_groups_sharing_a_link_in_waves_smallest_first():
    sc = scenario([('big', 'none', [('b1', 1, 8192, 5), ('b2', 2, 8192, 5)]),
                   ('small', 'none', [('s1', 3, 2048, 5)])])
    planner = planning.get('synchronized')
    plan = planner.plan(sc)
    assert plan.member('s1').wave == 0
    assert plan.member('b1').wave == plan.member('b2').wave == 1
    assert [s[0] for s in planner.decide(view(sc, plan, {})).start] == ['s1']
    # the big group waits for the small one to resume, then starts
    assert planner.decide(view(sc, plan, {'s1': api.MIGRATING})).start == ()
    d = planner.decide(view(sc, plan, {'s1': api.COMPLETED}))
    assert sorted(s[0] for s in d.start) == ['b1', 'b2']
    assert d.hold == {}


def _moving(p, mibps):
    return dataclasses.replace(p, throughput_mibps=mibps)


def _slow_member_run(throughputs):
    """Two members in bulk, looked at once a second, the busy one (dirtying 12 MiB/s)
    moving at ``throughputs`` in turn while its cap allows far more; then both held, and
    released in the next look. Returns the planner, the release's decision and every
    note the planner gave."""
    sc = scenario([('g', 'anti-affinity', [('idle', 1, 1024, 0), ('busy', 2, 1024, 12)])],
                  limits=Limits(allow_postcopy=False))
    planner = planning.get('synchronized')
    plan = planner.plan(sc)
    now = 10.0
    notes = []
    for mibps in throughputs:
        notes += planner.decide(View(sc, plan, now, {
            'idle': _moving(_progress('idle', 0, 600.0), 40.0),
            'busy': _moving(_progress('busy', 0, 600.0, dirty=12.0), mibps)})).notes
        now += 1.0
    d = planner.decide(View(sc, plan, now, {
        'idle': _progress('idle', 0, RESERVE_MIB),
        'busy': _progress('busy', 1, 20.0, started=now - 1.0, dirty=12.0)}))
    return planner, d, notes + list(d.notes)


def test_one_slow_look_is_no_limit_on_the_release():
    """A loaded host can slow a migration for one look; what it moved before says what
    its path carries. Read as its limit, 6 MiB/s against 12 MiB/s dirtied put the common
    finish 32,000,000 s away on QEMU, capped the whole group at its dirty rates, and
    split it by 67.8 s."""
    planner, d, notes = _slow_member_run([40.0, 40.0, 40.0, 6.0])
    (_, tau), = planner.releases.values()
    assert tau < 5.0
    assert d.caps['busy'] > 12.0 + 10.0 and d.caps['idle'] > 10.0
    assert not notes


def test_a_member_that_never_moves_more_than_it_dirties_is_taken_out_of_the_release():
    """A path that carries less than its guest dirties never converges with the others:
    the rest of the group is still released together, on a finite common finish, and
    the slow member converges on its own, uncapped, as in parallel (pausing it would
    exceed the allowed downtime)."""
    planner, d, notes = _slow_member_run([6.0, 6.0, 6.0, 6.0])
    (_, tau), = planner.releases.values()
    assert tau < 5.0
    assert d.caps['busy'] is None
    assert d.caps['idle'] > FLOOR_MIBPS
    assert any(n.startswith('busy: moved at most 6 MiB/s') for n in notes)
