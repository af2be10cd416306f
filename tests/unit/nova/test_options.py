"""The [nova], [engine] and [planning] options reach the Nova backend."""

import pytest
from oslo_config import cfg

from slm_plugin import conf as slm_conf
from slm_plugin.common.retry import RetryPolicy
from slm_plugin.nova.backend import limits_from_conf
from slm_plugin.nova.discovery import Capacities


@pytest.fixture
def conf():
    c = cfg.ConfigOpts()
    slm_conf.register_opts(c)
    c([], project='slm')
    return c


def test_defaults(conf):
    caps = Capacities.from_conf(conf)
    assert (caps.nic_mibps, caps.link_mibps, caps.dirty_rate_mibps) == (1192.0, 1192.0, 0.0)
    assert not caps.shared_storage
    assert conf.nova.converged_remaining_mib == 32.0
    assert RetryPolicy.from_conf(conf).attempts == 5
    limits = limits_from_conf(conf)
    assert limits.max_concurrent_per_host == 1  # Nova's own default, below [engine]'s 2
    assert limits.policy.max_downtime_s == conf.planning.allowed_downtime_ms / 1000


def test_links_between_zones(conf):
    conf.set_override('links', {'dc1+dc2': '250', 'dc2+dc3': '40.5'}, group='nova')
    conf.set_override('link_mibps', 100.0, group='nova')
    caps = Capacities.from_conf(conf)
    assert caps.link('dc2', 'dc1') == 250.0
    assert caps.link('dc3', 'dc2') == 40.5
    assert caps.link('dc1', 'dc3') == 100.0


@pytest.mark.parametrize('links, message', [
    ({'dc1': '10'}, 'is not zoneA\\+zoneB'),
    ({'dc1+dc2': 'fast'}, 'is not MiB/s'),
])
def test_bad_links_are_named(conf, links, message):
    conf.set_override('links', links, group='nova')
    with pytest.raises(ValueError, match=message):
        Capacities.from_conf(conf)


def test_the_plan_runs_no_more_per_host_than_nova_does(conf):
    conf.set_override('max_concurrent_live_migrations', 4, group='nova')
    assert limits_from_conf(conf).max_concurrent_per_host == 2  # [engine]'s limit
    conf.set_override('max_concurrent_migrations_per_host', 8, group='engine')
    assert limits_from_conf(conf).max_concurrent_per_host == 4  # Nova's
