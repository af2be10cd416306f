"""The API's policy: rules in code, admin-only defaults, the committed sample file."""

import pathlib
import subprocess
import sys

import pytest
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin import exception
from slm_plugin.api import policies, policy

ROOT = pathlib.Path(__file__).resolve().parents[3]
GENERATOR_CONF = ROOT / 'etc' / 'slm' / 'slm-policy-generator.conf'
SAMPLE = ROOT / 'etc' / 'slm' / 'policy.yaml.sample'
ACTIONS = ('create', 'list', 'list:all_projects', 'show', 'abort')


@pytest.fixture
def enforcer():
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf([], project='slm', default_config_files=[], default_config_dirs=[])
    return policy.enforcer(conf)


def _context(*roles):
    return slm_context.RequestContext(roles=list(roles), project_id='p-1', user_id='u-1',
                                      overwrite=False)


@pytest.mark.parametrize('action', ACTIONS)
def test_administrators_may_and_others_may_not(enforcer, action):
    name = f'slm:group_migration:{action}'
    policy.authorize(enforcer, _context('admin'), name)
    for roles in ((), ('member',), ('reader',), ('member', 'reader')):
        with pytest.raises(exception.Forbidden, match=name):
            policy.authorize(enforcer, _context(*roles), name)


def test_every_rule_is_documented_and_listed():
    names = [r.name for r in policies.list_rules()]
    assert names[0] == policies.ADMIN
    assert names[1:] == [f'slm:group_migration:{a}' for a in ACTIONS]
    for rule in policies.list_rules()[1:]:
        assert rule.description.endswith('.')
        assert rule.operations and rule.scope_types == ['project']


def test_sample_policy_file_is_up_to_date(tmp_path):
    generated = tmp_path / 'policy.yaml.sample'
    result = subprocess.run(
        [sys.executable, '-c', 'from oslo_policy.generator import generate_sample; '
         'generate_sample()', '--config-file', str(GENERATOR_CONF),
         '--output-file', str(generated)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert generated.read_text() == SAMPLE.read_text(), (
        'etc/slm/policy.yaml.sample is out of date; regenerate it from the repository root '
        'with:\n    .venv/bin/oslopolicy-sample-generator --config-file '
        'etc/slm/slm-policy-generator.conf')
