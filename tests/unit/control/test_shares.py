"""control.shares and the engine's LinkAsks: priorities between jobs on shared links."""

import pytest

from slm_plugin.control import shares
from slm_plugin.engine.service import LinkAsks


def test_levels_order_critical_above_user_above_maintenance():
    assert shares.level('critical') > shares.level('user') > shares.level('maintenance')
    assert shares.level(None) == shares.level('user')
    assert shares.name_of(shares.level('maintenance')) == 'maintenance'
    with pytest.raises(ValueError, match="unknown priority 'urgent'; choose one of: critical"):
        shares.level('urgent')


def test_a_job_sees_what_higher_priority_jobs_leave_and_ignores_the_others():
    capacity = {'a<->b': 100.0, 'a<->c': 50.0}
    others = [(300, {'a<->b': 70.0}),  # higher: taken
              (200, {'a<->b': 90.0, 'a<->c': 50.0}),  # equal: shared as the cloud shares
              (100, {'a<->c': 40.0})]  # lower: never in the way
    assert shares.left_for(200, capacity, others) == {'a<->b': 30.0, 'a<->c': 50.0}
    assert shares.left_for(300, capacity, others) == capacity


def test_a_job_is_never_starved_of_a_link():
    left = shares.left_for(100, {'a<->b': 100.0}, [(300, {'a<->b': 150.0})])
    assert left == {'a<->b': shares.FLOOR_SHARE * 100.0}


def test_the_engine_keeps_each_jobs_asks_and_names_a_link_alike_both_ways():
    asks = LinkAsks()
    capacity = {'dc-a<->dc-b': 120.0}
    assert asks.left_for('db', 300, {'dc-a<->dc-b': 100.0}, capacity) == capacity
    # the other job's scenario names the link the other way round
    left = asks.left_for('web', 100, {'dc-b<->dc-a': 120.0}, {'dc-b<->dc-a': 120.0})
    assert left == {'dc-b<->dc-a': pytest.approx(20.0)}
    asks.drop('db')
    assert asks.left_for('web', 100, {}, {'dc-b<->dc-a': 120.0}) == {'dc-b<->dc-a': 120.0}
