"""The [nova], [engine] and [planning] options reach the Nova job as its arguments."""

import pytest
from oslo_config import cfg

from slm_plugin import conf as slm_conf
from slm_plugin.collectors.nova import Capacities
from slm_plugin.execution.nova_job import options_from_conf


@pytest.fixture
def conf():
    c = cfg.ConfigOpts()
    slm_conf.register_opts(c)
    c([], project='slm')
    return c


def test_defaults(conf):
    options = options_from_conf(conf)
    caps = options['capacities']
    assert (caps.nic_mibps, caps.link_mibps, caps.dirty_rate_mibps) == (1192.0, 1192.0, 0.0)
    assert not caps.shared_storage
    assert options['converged_mib'] == 32.0
    assert options['retry'].attempts == 5
    assert options['on_failure'] == conf.engine.on_failure
    assert options['limits'].max_concurrent_per_host == 2
    assert options['limits'].policy.max_downtime_s == conf.planning.allowed_downtime_ms / 1000


def test_links_between_zones(conf):
    conf.set_override('links', {'dc1+dc2': '250', 'dc2+dc3': '40.5'}, group='nova')
    conf.set_override('link_mibps', 100.0, group='nova')
    caps = options_from_conf(conf)['capacities']
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
