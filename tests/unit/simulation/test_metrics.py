"""Group metrics on hand-made results, and the makespan lower bound worked by hand."""

import math

import pytest

from slm_plugin.control import cloud as api
from slm_plugin.model import VM
from slm_plugin.scenario.bounds import lower_bound_s
from slm_plugin.scenario.model import Group, Host, Link, Member, Request, Scenario
from slm_plugin.simulation.cloud import MemberResult
from slm_plugin.simulation.metrics import group_metrics, summary

approx = pytest.approx
INF = math.inf
WAN = Link('east', 'west', 100.0)


def _scenario(request=None, links=(WAN,), **nics):
    hosts = tuple(Host(name, name.split('-')[0], nics.get(name.replace('-', '_'), 1000.0))
                  for name in ('east-1', 'east-2', 'east-3', 'west-1', 'west-2', 'west-3'))
    g1 = Group('g1', (
        Member('a', 'g1', 'east-1', VM(1024)),
        Member('b', 'g1', 'east-2', VM(2048, disk_mib=1024)),
        Member('c', 'g1', 'east-3', VM(2048, wire_ratio=0.5)),
    ))
    g2 = Group('g2', (
        Member('d', 'g2', 'east-1', VM(512)),
        Member('e', 'g2', 'east-1', VM(512)),
    ))
    return Scenario('m', hosts, links, (g1, g2), request or Request(to_site='west'))


def _r(member, group, *, switch=None, finish=None, downtime=None, wire=0.0, wan=True,
       status=api.COMPLETED, dest='west-1'):
    return MemberResult(
        member=member, group=group, source='east-1', destination=dest, status=status,
        start_s=0.0, switchover_s=switch, finish_s=finish, downtime_s=downtime,
        wire_mib=wire, crosses_wan=wan, rounds=(), rate_history=(), completion='converged',
    )


# --- group_metrics ---------------------------------------------------------------------------


def test_metrics_of_a_group_that_moved():
    results = [
        _r('a', 'g1', switch=10.0, finish=11.0, downtime=0.1, wire=1000.0),
        _r('b', 'g1', switch=15.0, finish=16.0, downtime=0.3, wire=3000.0),
        # moved within a site: its bytes never touched the WAN
        _r('c', 'g1', switch=12.0, finish=20.0, downtime=0.2, wire=500.0, wan=False),
    ]
    (m,) = group_metrics(_scenario(), results, {'g1': 42.0, 'g2': 7.0})
    assert m.name == 'g1'
    assert m.all_resumed
    assert m.split_time_s == approx(5.0)  # 15 - 10
    assert m.makespan_s == approx(15.0)
    assert m.eviction_time_s == approx(20.0)  # the post-copy tail of c ends last
    assert m.wan_mib == approx(4000.0)
    assert m.max_downtime_s == approx(0.3)
    assert m.split_traffic_mib == 42.0
    assert [r.member for r in m.members] == ['a', 'b', 'c']


def test_a_member_that_did_not_switch_over_makes_the_split_unbounded():
    results = [
        _r('a', 'g1', switch=10.0, finish=10.0, downtime=0.1, wire=1000.0),
        _r('b', 'g1', status=api.ABORTED, wire=700.0),
        _r('c', 'g1', switch=12.0, finish=12.0, downtime=0.2, wire=500.0),
    ]
    (m,) = group_metrics(_scenario(), results)
    assert not m.all_resumed
    assert m.split_time_s == INF
    assert m.makespan_s == INF
    assert m.eviction_time_s == INF
    assert m.wan_mib == approx(2200.0)  # aborted bytes crossed the WAN all the same
    assert m.max_downtime_s == approx(0.2)
    assert m.split_traffic_mib == 0.0


def test_a_post_copy_tail_still_draining_leaves_only_the_eviction_open():
    results = [
        _r('d', 'g2', switch=5.0, finish=6.0, downtime=0.0, wire=512.0),
        _r('e', 'g2', switch=5.5, finish=None, downtime=0.0, wire=300.0,
           status=api.SWITCHED_OVER),
    ]
    (m,) = group_metrics(_scenario(), results)
    assert m.all_resumed
    assert m.split_time_s == approx(0.5)
    assert m.makespan_s == approx(5.5)
    assert m.eviction_time_s == INF


def test_groups_without_results_are_left_out_and_foreign_results_ignored():
    results = [
        _r('d', 'g2', switch=5.0, finish=5.0, downtime=0.05, wire=512.0),
        _r('e', 'g2', switch=5.0, finish=5.0, downtime=0.05, wire=512.0),
        _r('zz', 'elsewhere', switch=1.0, finish=1.0, downtime=9.0, wire=1e6),
    ]
    groups = group_metrics(_scenario(), results)
    assert [g.name for g in groups] == ['g2']
    (m,) = groups
    assert m.split_time_s == 0.0
    assert m.wan_mib == approx(1024.0)
    assert m.max_downtime_s == approx(0.05)


def test_summary_takes_the_worst_group_and_adds_the_bytes():
    results = [
        _r('a', 'g1', switch=10.0, finish=11.0, downtime=0.1, wire=1000.0),
        _r('b', 'g1', switch=15.0, finish=16.0, downtime=0.3, wire=3000.0),
        _r('c', 'g1', switch=12.0, finish=20.0, downtime=0.2, wire=500.0),
        _r('d', 'g2', switch=30.0, finish=30.0, downtime=0.05, wire=512.0),
        _r('e', 'g2', switch=31.0, finish=31.0, downtime=0.05, wire=512.0),
    ]
    s = summary(group_metrics(_scenario(), results, {'g1': 10.0, 'g2': 5.0}))
    assert s == {
        'split_time_s': approx(5.0), 'makespan_s': approx(31.0),
        'eviction_time_s': approx(31.0), 'wan_mib': approx(5524.0),
        'max_downtime_s': approx(0.3), 'split_traffic_mib': approx(15.0),
    }


# --- lower_bound_s ---------------------------------------------------------------------------

# Bytes that must leave each member's source: a 1024; b 2048 + 1024 of disk = 3072;
# c 2048 at wire ratio 0.5 = 1024; d 512; e 512 (d and e share east-1 with a).


def test_lower_bound_is_the_link_when_the_link_is_busiest():
    # link: everything, 1024 + 3072 + 1024 + 512 + 512 = 6144 MiB over 100 MiB/s
    # east-1 NIC: 1024 + 512 + 512 = 2048 MiB over 1000 MiB/s
    assert lower_bound_s(_scenario()) == approx(61.44)


def test_lower_bound_is_a_source_nic_when_that_is_busiest():
    # east-1 carries a, d, e: 2048 MiB over 20 MiB/s = 102.4 s > link 6144 / 100
    assert lower_bound_s(_scenario(east_1=20.0)) == approx(102.4)


def test_lower_bound_counts_destination_nics_only_when_destinations_are_known():
    sc = _scenario(links=(Link('east', 'west', 10_000.0),), west_1=50.0)
    # without destinations: the busiest is east-2 (b, 3072 / 1000)
    assert lower_bound_s(sc) == approx(3.072)
    # everyone into west-1: 6144 MiB over 50 MiB/s
    dest = dict.fromkeys('abcde', 'west-1')
    assert lower_bound_s(sc, dest) == approx(122.88)
    # b alone into west-1, the others elsewhere: 3072 / 50
    dest = {'a': 'west-2', 'b': 'west-1', 'c': 'west-3', 'd': 'west-2', 'e': 'west-3'}
    assert lower_bound_s(sc, dest) == approx(61.44)


def test_lower_bound_counts_only_the_groups_the_request_moves():
    sc = _scenario(request=Request(to_site='west', groups=('g2',)))
    # d and e: 1024 MiB on the link (10.24 s) and on east-1 (1.024 s)
    assert lower_bound_s(sc) == approx(10.24)


def test_lower_bound_ignores_the_link_for_moves_within_a_site():
    sc = _scenario()
    dest = {'a': 'east-2', 'b': 'east-3', 'c': 'east-1', 'd': 'east-2', 'e': 'east-3'}
    # no WAN: the busiest NIC is east-3 in (b 3072 + e 512) / 1000
    assert lower_bound_s(sc, dest) == approx(3.584)


def test_lower_bound_of_nothing_to_move_is_zero():
    sc = _scenario(request=Request(to_site='west', groups=('nope',)))
    assert lower_bound_s(sc) == 0.0
