"""SLM's configuration options: defaults, validation, and what the generator sees."""

import re

import pytest
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin.conf import opts


@pytest.fixture
def conf():
    """A private ConfigOpts with every SLM option, parsed from no file."""
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf([], project='slm', default_config_files=[], default_config_dirs=[])
    yield conf
    conf.reset()


def _load(conf, tmp_path, text):
    path = tmp_path / 'slm.conf'
    path.write_text(text)
    conf(['--config-file', str(path)], project='slm', default_config_files=[],
         default_config_dirs=[])


def test_defaults(conf):
    assert conf.api.bind_host == '0.0.0.0'
    assert conf.api.bind_port == 9740
    assert conf.api.auth_strategy == 'keystone'
    assert conf.engine.topic == 'slm-engine'
    assert conf.engine.control_tick == 1.0
    assert conf.engine.default_strategy == 'synchronized'
    assert conf.engine.max_concurrent_migrations_per_host == 2
    assert conf.engine.on_failure == 'abort'
    assert conf.agent.libvirt_uri == 'qemu:///system'
    assert conf.agent.topic_prefix == 'slm-agent'
    assert conf.planning.allowed_downtime_ms == 300
    assert conf.planning.non_convergence_policy == 'postcopy'
    assert conf.planning.max_rounds == 30
    assert conf.maintenance.enabled is False
    assert conf.maintenance.evacuate_lone_servers is False
    assert conf.database.connection == 'sqlite:///slm.sqlite'
    assert conf.transport_url == 'fake://'
    assert conf.control_exchange == 'slm'
    assert conf.host


def test_global_conf_has_every_group():
    for group in ('api', 'engine', 'agent', 'planning', 'maintenance', 'database'):
        assert group in slm_plugin.conf.CONF, group


def test_config_file_overrides_defaults(conf, tmp_path):
    _load(conf, tmp_path, '[engine]\non_failure = continue\ncontrol_tick = 0.5\n'
          '[planning]\nnon_convergence_policy = pause\n'
          '[database]\nconnection = mysql+pymysql://root@127.0.0.1/slm\n')
    assert conf.engine.on_failure == 'continue'
    assert conf.engine.control_tick == 0.5
    assert conf.planning.non_convergence_policy == 'pause'
    assert conf.database.connection == 'mysql+pymysql://root@127.0.0.1/slm'


@pytest.mark.parametrize('section, line, option', [
    ('engine', 'on_failure = retry', 'on_failure'),
    ('engine', 'control_tick = 0', 'control_tick'),
    ('api', 'auth_strategy = basic', 'auth_strategy'),
    ('planning', 'non_convergence_policy = cancel', 'non_convergence_policy'),
    ('planning', 'max_rounds = 0', 'max_rounds'),
    ('maintenance', 'disabled_reason_pattern = maint(enance', 'disabled_reason_pattern'),
])
def test_invalid_values_are_rejected(conf, tmp_path, section, line, option):
    _load(conf, tmp_path, f'[{section}]\n{line}\n')
    with pytest.raises(cfg.ConfigFileValueError):
        getattr(conf[section], option)


def test_maintenance_pattern_matches_maintenance_reasons(conf):
    pattern = re.compile(conf.maintenance.disabled_reason_pattern)
    assert pattern.search('Maintenance: replace DIMM')
    assert pattern.search('maintenance window 42')
    assert not pattern.search('failed health check')
    assert not pattern.search('maintenances')


# Registered by slm_plugin.conf but the libraries', listed by their own namespaces.
LIBRARY_GROUPS = {'database', 'oslo_messaging_metrics', 'oslo_messaging_tracing'}


def _registered_groups(conf):
    groups = set()
    for name in conf:
        if isinstance(getattr(conf, name), cfg.ConfigOpts.GroupAttr):
            groups.add(name)
    return groups


def test_list_opts_covers_every_slm_group_and_option(conf):
    listed = {}
    for group, group_opts in opts.list_opts():
        name = group if isinstance(group, str) else group.name
        listed.setdefault(name, set()).update(opt.dest for opt in group_opts)
    # These are the libraries' and listed by their own namespaces.
    slm_groups = _registered_groups(conf) - LIBRARY_GROUPS
    assert set(listed) - {'DEFAULT'} == slm_groups
    # keystoneauth registers an auth plugin's options when it loads the plugin named
    # by auth_type; the sample lists the password plugin's
    plugin = {o.dest for o in ks_loading.get_auth_plugin_conf_options('password')}
    for group in slm_groups:
        extra = plugin if group == 'nova' else set()
        assert listed[group] == set(conf[group]) | extra, group
    assert 'host' in listed['DEFAULT']


def test_nova_credentials_from_keystoneauth_options(conf, tmp_path):
    """[nova] auth_type loads keystoneauth's password plugin from the same section."""
    _load(conf, tmp_path, '[nova]\nauth_type = password\nauth_url = http://127.0.0.1:5000/v3\n'
          'username = slm\npassword = secret\nproject_name = service\n'
          'user_domain_name = Default\nproject_domain_name = Default\ntimeout = 30\n')
    auth = ks_loading.load_auth_from_conf_options(conf, 'nova')
    session = ks_loading.load_session_from_conf_options(conf, 'nova', auth=auth)
    assert auth.auth_url == 'http://127.0.0.1:5000/v3'
    assert auth._username == 'slm' and auth._project_name == 'service'
    assert session.timeout == 30.0
    assert conf.nova.use_agent is False
    # the plugin's options stay in that configuration: another one without
    # credentials in [nova] still parses (they are required where they are loaded)
    other = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(other)
    other([], project='slm', default_config_files=[], default_config_dirs=[])
    assert other.nova.auth_type is None


def test_list_opts_does_not_repeat_library_options():
    names = {opt.dest for _, group_opts in opts.list_opts() for opt in group_opts}
    assert not names & {'transport_url', 'control_exchange', 'connection', 'debug'}


def test_every_option_has_a_help_sentence():
    # keystoneauth's options are the library's, with its own wording
    theirs = {o.dest for o in ks_loading.get_session_conf_options()
              + ks_loading.get_auth_common_conf_options()
              + ks_loading.get_auth_plugin_conf_options('password')}
    for _, group_opts in opts.list_opts():
        for opt in group_opts:
            if opt.dest in theirs:
                continue
            assert opt.help and opt.help.rstrip().endswith('.'), opt.dest
            assert len(opt.help) > 40, opt.dest


def test_an_override_in_one_configuration_is_not_seen_by_another():
    """Two ConfigOpts in one process (a test's and a tool's, or SLM's beside Nova's) keep
    their overrides apart: each registers option groups of its own."""
    first, second = cfg.ConfigOpts(), cfg.ConfigOpts()
    for c in (first, second):
        slm_plugin.conf.register_opts(c)
        c([], project='slm', default_config_files=[], default_config_dirs=[])
    for group, name, value in (('engine', 'max_concurrent_migrations_per_host', 8),
                               ('agent', 'topic_prefix', 'elsewhere'),
                               ('planning', 'max_rounds', 3), ('api', 'bind_port', 1234),
                               ('maintenance', 'enabled', True), ('simulation', 'speed', 7.0),
                               ('nova', 'use_agent', True)):
        default = getattr(getattr(second, group), name)
        first.set_override(name, value, group=group)
        assert getattr(getattr(first, group), name) == value
        assert getattr(getattr(second, group), name) == default, (group, name)
