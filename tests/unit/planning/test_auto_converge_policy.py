"""A job's auto-converge policy: the request's, or [planning] allow_auto_converge."""

from oslo_config import cfg

import slm_plugin.conf
from slm_plugin.engine import backends
from slm_plugin.scenario import loader
from slm_plugin.simulation.runner import simulate


def _conf(**planning):
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf([], project='slm', default_config_files=[], default_config_dirs=[])
    for k, v in planning.items():
        conf.set_override(k, v, 'planning')
    return conf


def test_the_request_says_or_else_the_configuration():
    sc = loader.load_shipped('three-tier-web')
    assert not backends.with_options(sc, {}).limits.policy.auto_converge
    assert backends.with_options(sc, {'allow_auto_converge': True}).limits.policy.auto_converge
    on = _conf(allow_auto_converge=True)
    assert backends.with_options(sc, {}, on).limits.policy.auto_converge
    assert not backends.with_options(sc, {'allow_auto_converge': False},
                                     on).limits.policy.auto_converge


def test_auto_converge_lets_the_dirtiest_guests_finish_sooner_without_post_copy():
    """In the model as in QEMU: two rounds in a row that dirty more than half of what they
    sent throttle the guest's vCPUs, and its dirty rate falls with them."""
    sc = loader.load_shipped('three-tier-web')
    plain = simulate(backends.with_options(sc, {'allow_post_copy': False}), 'parallel')
    throttled = simulate(backends.with_options(
        sc, {'allow_post_copy': False, 'allow_auto_converge': True}), 'parallel')
    assert plain.outcome.status == throttled.outcome.status == 'completed'
    assert throttled.summary['makespan_s'] < 0.95 * plain.summary['makespan_s']
