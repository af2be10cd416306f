"""Max-min fair sharing: hand-worked cases and the properties that define it."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slm_plugin.model.fairshare import max_min_share

approx = pytest.approx
INF = math.inf
REL = 1e-6


# --- hand cases -----------------------------------------------------------------------------


def test_one_link_three_uncapped_flows_split_it_evenly():
    assert max_min_share([INF, INF, INF], [('wan',)] * 3, {'wan': 90.0}) == approx([30.0] * 3)


def test_a_capped_flow_leaves_its_share_to_the_others():
    # 90 / 3 = 30 each, but the first wants only 10: the other two split the remaining 80
    rates = max_min_share([10.0, INF, INF], [('wan',)] * 3, {'wan': 90.0})
    assert rates == approx([10.0, 40.0, 40.0])


def test_a_cap_above_the_fair_share_does_not_bind():
    rates = max_min_share([50.0, INF, INF], [('wan',)] * 3, {'wan': 90.0})
    assert rates == approx([30.0, 30.0, 30.0])


def test_a_flow_crossing_two_resources_is_limited_by_the_tighter():
    assert max_min_share([INF], [('nic', 'wan')], {'nic': 100.0, 'wan': 40.0}) == approx([40.0])


def test_a_flow_frozen_by_one_resource_leaves_the_rest_of_another():
    # flow 0 crosses nic and wan (40): frozen at 40; flow 1 then gets 100 - 40 of the nic
    rates = max_min_share([INF, INF], [('nic', 'wan'), ('nic',)], {'nic': 100.0, 'wan': 40.0})
    assert rates == approx([40.0, 60.0])


def test_no_contention_returns_the_caps():
    rates = max_min_share([10.0, 20.0, 30.0], [('a',), ('a', 'b'), ('b',)],
                          {'a': 100.0, 'b': 50.0})
    assert rates == [10.0, 20.0, 30.0]


def test_zero_demand_gets_nothing_even_under_contention():
    rates = max_min_share([0.0, INF, INF], [('wan',)] * 3, {'wan': 90.0})
    assert rates == approx([0.0, 45.0, 45.0])


def test_an_uncapped_flow_on_no_resource_is_an_error():
    with pytest.raises(ValueError, match='unbounded'):
        max_min_share([INF, INF], [(), ('wan',)], {'wan': 10.0})


# --- properties -----------------------------------------------------------------------------

RESOURCES = ('r0', 'r1', 'r2', 'r3')


@st.composite
def networks(draw):
    n_res = draw(st.integers(1, len(RESOURCES)))
    names = RESOURCES[:n_res]
    capacities = {r: draw(st.floats(1.0, 1000.0)) for r in names}
    n = draw(st.integers(1, 7))
    demands, routes = [], []
    for _ in range(n):
        route = tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=n_res,
                                    unique=True)))
        demand = draw(st.one_of(st.just(INF), st.just(0.0), st.floats(0.01, 2000.0)))
        demands.append(demand)
        routes.append(route)
    return demands, routes, capacities


def _loads(rates, routes, capacities):
    load = dict.fromkeys(capacities, 0.0)
    for rate, route in zip(rates, routes, strict=True):
        for r in route:
            load[r] += rate
    return load


def _saturated(load, capacities, r):
    return load[r] >= capacities[r] * (1 - REL)


@settings(max_examples=120, deadline=None)
@given(networks())
def test_no_resource_is_over_capacity(net):
    demands, routes, capacities = net
    rates = max_min_share(demands, routes, capacities)
    load = _loads(rates, routes, capacities)
    for r, cap in capacities.items():
        assert load[r] <= cap * (1 + REL), (r, load[r], cap)


@settings(max_examples=120, deadline=None)
@given(networks())
def test_no_flow_above_its_demand_and_none_negative(net):
    demands, routes, capacities = net
    rates = max_min_share(demands, routes, capacities)
    assert len(rates) == len(demands)
    for rate, demand in zip(rates, demands, strict=True):
        assert 0.0 <= rate <= demand * (1 + REL) + 1e-12
        assert math.isfinite(rate)


@settings(max_examples=120, deadline=None)
@given(networks())
def test_max_min_fair(net):
    """Every flow is at its demand or has a bottleneck: a saturated resource on its route
    where no other flow gets more than it does."""
    demands, routes, capacities = net
    rates = max_min_share(demands, routes, capacities)
    load = _loads(rates, routes, capacities)
    for i, (rate, demand) in enumerate(zip(rates, demands, strict=True)):
        if rate >= demand * (1 - REL):
            continue
        bottlenecks = [
            r for r in routes[i]
            if _saturated(load, capacities, r)
            and all(rates[j] <= rate * (1 + REL) + 1e-9
                    for j, route in enumerate(routes) if r in route)
        ]
        assert bottlenecks, (i, rate, demand, rates, load)


@settings(max_examples=50, deadline=None)
@given(networks())
def test_deterministic(net):
    demands, routes, capacities = net
    first = max_min_share(demands, routes, capacities)
    assert max_min_share(list(demands), [tuple(r) for r in routes], dict(capacities)) == first
    assert max_min_share(demands, routes, capacities) == first
