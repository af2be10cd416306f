"""The devstack plugin (devstack/settings, devstack/plugin.sh), phase by phase.

No devstack runs here. Each test sources devstack/settings and devstack/plugin.sh in
bash, as stack.sh does, after small shell functions that stand in for devstack's
helpers (``iniset``, ``is_service_enabled``, ``run_process``,
``get_or_create_service``, ...). The stand-ins record their calls in a file; the
ones that write configuration (``iniset``, ``iniset_rpc_backend``,
``configure_keystone_authtoken_middleware``) really write an ini file, through
Python's configparser, so the tests read back what slm.conf and nova.conf would
contain. The tests check that content, which calls each phase makes on a
controller, an all-in-one node and a compute node, and that every option the
plugin writes to slm.conf is one slm_plugin (etc/slm/slm.conf.sample) or
keystoneauth reads.
"""

import configparser
import os
import pwd
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / 'devstack' / 'plugin.sh'
SETTINGS = ROOT / 'devstack' / 'settings'
SAMPLE = ROOT / 'etc' / 'slm' / 'slm.conf.sample'
SEP = '\x1f'

ALL_IN_ONE = 'mysql,rabbit,key,n-api,n-cpu,slm-api,slm-engine,slm-agent'
CONTROLLER = 'mysql,rabbit,key,n-api,slm-api,slm-engine'
COMPUTE = 'n-cpu,slm-agent'

VIRSH_NEW = textwrap.dedent("""\
    Compiled against library: libvirt 10.0.0
    Using library: libvirt 10.0.0
    Using API: QEMU 10.0.0
    Running hypervisor: QEMU 8.2.2
    Running against daemon: 10.0.0
""")
VIRSH_OLD = VIRSH_NEW.replace('daemon: 10.0.0', 'daemon: 6.0.0').replace(
    'QEMU 8.2.2', 'QEMU 4.2.1')
VIRSH_OLD_QEMU = VIRSH_NEW.replace('QEMU 8.2.2', 'QEMU 5.1.0')

# The ini writer behind the iniset/iniget stand-ins: DEFAULT is an ordinary section,
# as in oslo.config files.
INI_TOOL = textwrap.dedent("""\
    import configparser, sys
    cmd, path, section, option = sys.argv[1:5]
    cp = configparser.ConfigParser(interpolation=None, default_section='\\x00')
    cp.optionxform = str
    cp.read(path)
    if cmd == 'set':
        if not cp.has_section(section):
            cp.add_section(section)
        cp.set(section, option, sys.argv[5])
        with open(path, 'w') as f:
            cp.write(f)
    else:
        print(cp.get(section, option, fallback=''))
""")

# Stand-ins for devstack's functions (functions-common, lib/keystone, lib/database,
# lib/rpc_backend), with the same arguments.
STANDINS = r"""
set -o errexit -o nounset -o pipefail
record() { local IFS=$'\x1f'; printf '%s\n' "$*" >> "$SLM_TEST_CALLS"; }
iniset() { record iniset "$@"; "$SLM_TEST_PY" -I -S "$SLM_TEST_INI" set "$@"; }
iniget() { "$SLM_TEST_PY" -I -S "$SLM_TEST_INI" get "$@"; }
is_service_enabled() {
    local s
    for s in "$@"; do [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0; done
    return 1
}
enable_service() {
    local s
    record enable_service "$@"
    for s in "$@"; do
        [[ ",$DISABLED_SERVICES," == *",$s,"* ]] && continue
        is_service_enabled "$s" || ENABLED_SERVICES+=",$s"
    done
}
trueorfalse() {
    local value=${!2:-$1}
    case "${value,,}" in
        1|yes|true|on) echo True ;;
        0|no|false|off) echo False ;;
        *) echo "$1" ;;
    esac
}
define_plugin() { record define_plugin "$@"; }
get_python_exec_prefix() { echo "$SLM_TEST_BIN"; }
echo_summary() { :; }
warn() { record warn "$@"; }
die() { record die "$@"; echo "die: $*" >&2; exit 1; }
sudo() { "$@"; }
getent() { [[ "$1" == group && " $SLM_TEST_GROUPS " == *" $2 "* ]]; }
virsh() { printf '%s' "$SLM_TEST_VIRSH"; }
setup_develop() { record setup_develop "$@"; }
pip_install() { record pip_install "$@"; }
add_user_to_group() { record add_user_to_group "$@"; }
create_service_user() { record create_service_user "$@"; }
get_or_create_service() { record get_or_create_service "$@"; }
get_or_create_endpoint() { record get_or_create_endpoint "$@"; }
recreate_database() { record recreate_database "$@"; }
database_connection_url() { echo "mysql+pymysql://root:dbsecret@$SERVICE_HOST/$1?charset=utf8"; }
run_process() { record run_process "$@"; }
stop_process() { record stop_process "$@"; }
wait_for_service() { record wait_for_service "$@"; }
iniset_rpc_backend() {
    record iniset_rpc_backend "$@"
    iniset "$2" DEFAULT transport_url "rabbit://stackrabbit:rabbitsecret@$SERVICE_HOST:5672/"
}
configure_keystone_authtoken_middleware() {
    local conf=$1 user=$2 section=${3:-keystone_authtoken}
    record configure_keystone_authtoken_middleware "$@"
    iniset "$conf" "$section" auth_type password
    iniset "$conf" "$section" interface public
    iniset "$conf" "$section" auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" username "$user"
    iniset "$conf" "$section" password "$SERVICE_PASSWORD"
    iniset "$conf" "$section" user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf" "$section" project_name "$SERVICE_PROJECT_NAME"
    iniset "$conf" "$section" project_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf" "$section" www_authenticate_uri "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" memcached_servers "localhost:11211"
}
"""

# A stand-in for the slm-manage console script: records its arguments, and whether
# the configuration file it is given names a database.
FAKE_SLM_MANAGE = textwrap.dedent("""\
    #!/usr/bin/env bash
    db=$(grep -c '^connection = mysql' "$2" || true)
    IFS=$'\\x1f'
    printf '%s\\n' "slm-manage${IFS}$*${IFS}database-in-conf=$db" >> "$SLM_TEST_CALLS"
""")


class Stack:
    """One node's run of the plugin: its configuration files and recorded calls."""

    def __init__(self, tmp: Path, proc: subprocess.CompletedProcess, env: dict):
        self.tmp = tmp
        self.proc = proc
        self.env = env
        calls_file = tmp / 'calls'
        lines = calls_file.read_text().splitlines() if calls_file.exists() else []
        self.calls = [line.split(SEP) for line in lines]

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    def named(self, name: str) -> list[list[str]]:
        return [call[1:] for call in self.calls if call[0] == name]

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    @staticmethod
    def read(path: Path) -> configparser.ConfigParser:
        cp = configparser.ConfigParser(interpolation=None, default_section='\x00')
        cp.optionxform = str
        assert path.exists(), f'{path} was not written'
        cp.read(path)
        return cp

    @property
    def slm_conf(self) -> configparser.ConfigParser:
        return self.read(Path(self.env['SLM_CONF_DIR']) / 'slm.conf')

    @property
    def nova_conf(self) -> configparser.ConfigParser:
        return self.read(Path(self.env['NOVA_CONF']))

    @property
    def nova_cpu_conf(self) -> configparser.ConfigParser:
        return self.read(Path(self.env['NOVA_CPU_CONF']))


@pytest.fixture
def stack(tmp_path):
    """Run phases of the plugin as devstack would: ``stack(['stack install', ...])``."""
    if shutil.which('bash') is None:
        pytest.skip('bash is needed to source the devstack plugin')

    def run(phases, services=ALL_IN_ONE, disabled='', virsh=VIRSH_NEW,
            groups='libvirt kvm', nova_conf='', nova_cpu_conf='', **settings):
        for name in ('calls', 'slm', 'nova'):
            path = tmp_path / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        bindir = tmp_path / 'bin'
        bindir.mkdir(exist_ok=True)
        manage = bindir / 'slm-manage'
        manage.write_text(FAKE_SLM_MANAGE)
        manage.chmod(0o755)
        ini_tool = tmp_path / 'ini_tool.py'
        ini_tool.write_text(INI_TOOL)
        (tmp_path / 'nova').mkdir()
        nova = tmp_path / 'nova' / 'nova.conf'
        nova_cpu = tmp_path / 'nova' / 'nova-cpu.conf'
        nova.write_text(nova_conf)
        nova_cpu.write_text(nova_cpu_conf)
        env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': str(tmp_path),
            'LC_ALL': 'C',
            'SLM_TEST_CALLS': str(tmp_path / 'calls'),
            'SLM_TEST_PY': sys.executable,
            'SLM_TEST_INI': str(ini_tool),
            'SLM_TEST_BIN': str(bindir),
            'SLM_TEST_GROUPS': groups,
            'SLM_TEST_VIRSH': virsh,
            'ENABLED_SERVICES': services,
            'DISABLED_SERVICES': disabled,
            # devstack's globals
            'DEST': str(tmp_path / 'opt-stack'),
            # the stack user: this one, so that ``sudo install -o`` works without sudo
            'STACK_USER': pwd.getpwuid(os.getuid()).pw_name,
            'SERVICE_HOST': '192.0.2.10',
            'SERVICE_PROTOCOL': 'http',
            'SERVICE_LISTEN_ADDRESS': '0.0.0.0',
            'SERVICE_PASSWORD': 'servicesecret',
            'SERVICE_PROJECT_NAME': 'service',
            'SERVICE_DOMAIN_NAME': 'Default',
            'SERVICE_TIMEOUT': '60',
            'REGION_NAME': 'RegionOne',
            'KEYSTONE_SERVICE_URI': 'http://192.0.2.10/identity',
            'ENABLE_DEBUG_LOG_LEVEL': 'True',
            'NOVA_CONF': str(nova),
            'NOVA_CPU_CONF': str(nova_cpu),
            'VIRT_DRIVER': 'libvirt',
            'DEFAULT_IMAGE_NAME': 'cirros-0.6.2-x86_64-disk',
            'DEFAULT_INSTANCE_TYPE': 'm1.tiny',
            'PRIVATE_NETWORK_NAME': 'private',
            'SLM_CONF_DIR': str(tmp_path / 'slm'),
        }
        env.update(settings)
        script = [STANDINS, f'source "{SETTINGS}"']
        for phase in phases:
            script.append(f'source "{PLUGIN}" {phase}')
        proc = subprocess.run(['bash', '-c', '\n'.join(script)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        return Stack(tmp_path, proc, env)

    return run


def sample_options() -> dict[str, set[str]]:
    """Section -> option names of etc/slm/slm.conf.sample (``#name = default`` lines)."""
    options: dict[str, set[str]] = {}
    section = None
    for line in SAMPLE.read_text().splitlines():
        header = re.match(r'^\[([A-Za-z0-9_]+)\]$', line)
        if header:
            section = header.group(1)
            options.setdefault(section, set())
            continue
        option = re.match(r'^#([a-z][a-z0-9_]*) =( |$)', line)
        if option and section:
            options[section].add(option.group(1))
    return options


def keystoneauth_options() -> set[str]:
    """Options keystoneauth reads from a section: auth_type and the password plugin's."""
    from keystoneauth1 import loading

    opts = (loading.get_auth_common_conf_options()
            + loading.get_auth_plugin_conf_options('password')
            + loading.get_session_conf_options())
    return {opt.dest for opt in opts}


def items(cp: configparser.ConfigParser) -> set[tuple[str, str]]:
    return {(section, option) for section in cp.sections() for option in cp[section]}


# -- post-config: slm.conf ---------------------------------------------------------------

def test_post_config_writes_slm_conf(stack):
    node = stack(['stack post-config'])
    assert node.ok, node.proc.stderr
    conf = node.slm_conf
    assert conf['DEFAULT']['transport_url'] == 'rabbit://stackrabbit:rabbitsecret@192.0.2.10:5672/'
    assert conf['database']['connection'] == \
        'mysql+pymysql://root:dbsecret@192.0.2.10/slm?charset=utf8'
    assert conf['api']['auth_strategy'] == 'keystone'
    assert conf['api']['bind_host'] == '0.0.0.0'
    assert conf['api']['bind_port'] == '9740'
    assert conf['engine']['cloud'] == 'nova'
    assert conf['engine']['default_strategy'] == 'synchronized'
    assert dict(conf['nova']) == {
        'auth_type': 'password',
        'auth_url': 'http://192.0.2.10/identity',
        'username': 'nova',
        'password': 'servicesecret',
        'project_name': 'service',
        'user_domain_name': 'Default',
        'project_domain_name': 'Default',
        'region_name': 'RegionOne',
        'use_agent': 'True',
    }
    assert conf['agent']['libvirt_uri'] == 'qemu:///system'
    assert not conf.has_section('maintenance')
    assert node.named('iniset_rpc_backend') == [['slm', node.env['SLM_CONF_DIR'] + '/slm.conf']]
    assert node.named('configure_keystone_authtoken_middleware') == [
        [node.env['SLM_CONF_DIR'] + '/slm.conf', 'slm']]
    # Nova is left alone without the maintenance hook
    assert node.nova_conf.sections() == []


def test_settings_override_the_defaults(stack):
    node = stack(['stack post-config'], SLM_CLOUD_DRIVER='simulated', SLM_STRATEGY='parallel',
                 SLM_SERVICE_PORT='9999', SLM_SERVICE_HOST='slm.example.org',
                 SLM_SERVICE_PROTOCOL='https', SLM_NOVA_USERNAME='admin',
                 SLM_NOVA_PROJECT_NAME='admin', SLM_NOVA_PASSWORD='adminsecret')
    assert node.ok, node.proc.stderr
    conf = node.slm_conf
    assert conf['engine']['cloud'] == 'simulated'
    assert conf['engine']['default_strategy'] == 'parallel'
    assert conf['api']['bind_port'] == '9999'
    assert (conf['nova']['username'], conf['nova']['project_name'],
            conf['nova']['password']) == ('admin', 'admin', 'adminsecret')
    assert node.named('get_or_create_endpoint') == [
        ['slm', 'RegionOne', 'https://slm.example.org:9999/']]


def test_api_port_default_is_the_services_default(stack):
    """SLM_SERVICE_PORT defaults to [api] bind_port's own default."""
    match = re.search(r'^#bind_port = (\d+)$', SAMPLE.read_text(), re.MULTILINE)
    assert match, 'no [api] bind_port in the sample'
    node = stack(['stack post-config'])
    assert node.ok, node.proc.stderr
    assert node.slm_conf['api']['bind_port'] == match.group(1)


def test_every_option_written_to_slm_conf_exists(stack):
    node = stack(['stack post-config'], SLM_ENABLE_MAINTENANCE_HOOK='True',
                 SLM_MAINTENANCE_TARGET_AZ='dc2', nova_cpu_conf='[DEFAULT]\nhost = cmp1\n')
    assert node.ok, node.proc.stderr
    known = sample_options()
    assert 'cloud' in known['engine'] and 'auth_strategy' in known['api'], \
        'the sample did not parse'
    keystoneauth = keystoneauth_options()
    assert {'auth_type', 'auth_url', 'username', 'password'} <= keystoneauth
    unknown = []
    for section, option in sorted(items(node.slm_conf)):
        allowed = known.get(section, set())
        if section in ('nova', 'keystone_authtoken'):
            allowed = allowed | keystoneauth
        if option not in allowed:
            unknown.append(f'[{section}] {option}')
    assert unknown == []
    # and the plugin wrote a good share of them (the check above is not vacuous)
    assert len(items(node.slm_conf)) >= 20


def test_the_computes_migration_settings_reach_the_planner(stack):
    """Nova queues live migrations beyond its computes' max_concurrent_live_migrations
    and decides auto-converge and post-copy itself; none of it is in the Compute API."""
    node = stack(['stack post-config'], nova_cpu_conf=(
        '[DEFAULT]\nhost = cmp1\nmax_concurrent_live_migrations = 3\n'
        '[libvirt]\nlive_migration_permit_post_copy = False\n'
        'live_migration_permit_auto_converge = True\n'))
    assert node.ok, node.proc.stderr
    assert node.slm_conf['nova']['max_concurrent_live_migrations'] == '3'
    assert node.slm_conf['nova']['permit_auto_converge'] == 'True'
    assert node.slm_conf['planning']['allow_post_copy'] == 'False'
    # Nova's defaults where it says nothing: SLM's defaults are the same
    node = stack(['stack post-config'], nova_cpu_conf='[DEFAULT]\nhost = cmp1\n')
    assert node.ok, node.proc.stderr
    assert not node.slm_conf.has_option('nova', 'max_concurrent_live_migrations')
    assert not node.slm_conf.has_option('planning', 'allow_post_copy')


# -- the maintenance hook ----------------------------------------------------------------

@pytest.mark.parametrize('value', ['True', 'true', 'yes'])
def test_maintenance_hook_turns_on_nova_versioned_notifications(stack, value):
    node = stack(['stack post-config'], SLM_ENABLE_MAINTENANCE_HOOK=value)
    assert node.ok, node.proc.stderr
    assert node.slm_conf['maintenance']['enabled'] == 'True'
    for nova in (node.nova_conf, node.nova_cpu_conf):
        assert nova['notifications']['notification_format'] == 'both'
        assert nova['oslo_messaging_notifications']['driver'] == 'messagingv2'


def test_maintenance_target_zone(stack):
    node = stack(['stack post-config'], SLM_ENABLE_MAINTENANCE_HOOK='True',
                 SLM_MAINTENANCE_TARGET_AZ='dc2')
    assert node.ok, node.proc.stderr
    assert node.slm_conf['maintenance']['target_availability_zone'] == 'dc2'
    assert node.named('warn') == []
    # the nova driver cannot choose a zone by itself: say so
    node = stack(['stack post-config'], SLM_ENABLE_MAINTENANCE_HOOK='True')
    assert node.ok, node.proc.stderr
    assert 'target_availability_zone' not in node.slm_conf['maintenance']
    [warning] = node.named('warn')
    assert 'SLM_MAINTENANCE_TARGET_AZ' in warning[1]


def test_maintenance_hook_keeps_a_configured_notification_driver(stack):
    node = stack(['stack post-config'], SLM_ENABLE_MAINTENANCE_HOOK='True',
                 nova_conf='[oslo_messaging_notifications]\ndriver = routing\n')
    assert node.ok, node.proc.stderr
    assert node.nova_conf['oslo_messaging_notifications']['driver'] == 'routing'
    assert node.nova_conf['notifications']['notification_format'] == 'both'


def test_maintenance_hook_off_by_default_and_when_false(stack):
    for value in ('', 'False'):
        node = stack(['stack post-config'], SLM_ENABLE_MAINTENANCE_HOOK=value)
        assert node.ok, node.proc.stderr
        assert not node.slm_conf.has_section('maintenance')
        assert not node.nova_conf.has_section('notifications')
        assert not node.nova_cpu_conf.has_section('notifications')


# -- which node does what ----------------------------------------------------------------

def test_controller_creates_the_keystone_service_and_the_database(stack):
    node = stack(['stack install', 'stack post-config', 'stack extra'], services=CONTROLLER)
    assert node.ok, node.proc.stderr
    conf_file = node.env['SLM_CONF_DIR'] + '/slm.conf'
    assert node.named('setup_develop') == [[node.env['DEST'] + '/slm-plugin']]
    assert node.named('pip_install') == []  # no libvirt-python without the agent
    assert node.named('create_service_user') == [['slm', 'admin']]
    [service] = node.named('get_or_create_service')
    assert service[:2] == ['slm', 'slm']
    assert node.named('get_or_create_endpoint') == [
        ['slm', 'RegionOne', 'http://192.0.2.10:9740/']]
    assert node.named('recreate_database') == [['slm']]
    assert node.named('slm-manage') == [
        ['--config-file', conf_file, 'db', 'upgrade', 'database-in-conf=1']]
    names = node.names()
    assert names.index('recreate_database') < names.index('slm-manage')
    started = [call[0] for call in node.named('run_process')]
    assert started == ['slm-api', 'slm-engine']
    assert node.named('run_process') == [
        ['slm-api', f'{node.tmp}/bin/slm-api --config-file {conf_file}'],
        ['slm-engine', f'{node.tmp}/bin/slm-engine --config-file {conf_file}'],
    ]
    assert node.named('wait_for_service') == [['60', 'http://192.0.2.10:9740/']]
    # no agent here: the engine does not wait for one, and libvirt is not touched
    assert node.slm_conf['nova']['use_agent'] == 'False'
    assert not node.slm_conf.has_section('agent')
    assert node.named('add_user_to_group') == []


def test_controller_told_that_its_computes_run_the_agent(stack):
    node = stack(['stack post-config'], services=CONTROLLER, SLM_USE_AGENT='True')
    assert node.ok, node.proc.stderr
    assert node.slm_conf['nova']['use_agent'] == 'True'


def test_all_in_one_starts_the_agent_in_the_libvirt_group(stack):
    node = stack(['stack install', 'stack post-config', 'stack extra'])
    assert node.ok, node.proc.stderr
    runs = {call[0]: call[1:] for call in node.named('run_process')}
    assert set(runs) == {'slm-api', 'slm-engine', 'slm-agent'}
    assert runs['slm-agent'][1] == 'libvirt'
    assert runs['slm-agent'][0].endswith('/slm-agent --config-file '
                                         + node.env['SLM_CONF_DIR'] + '/slm.conf')
    assert len(runs['slm-api']) == 1 and len(runs['slm-engine']) == 1
    assert node.named('add_user_to_group') == [[node.env['STACK_USER'], 'libvirt']]
    assert node.named('pip_install') == [
        ['-r', node.env['DEST'] + '/slm-plugin/libvirt-requirements.txt']]


def test_compute_node_runs_only_the_agent(stack):
    node = stack(['stack install', 'stack post-config', 'stack extra'], services=COMPUTE,
                 disabled='slm-api,slm-engine')
    assert node.ok, node.proc.stderr
    assert [call[0] for call in node.named('run_process')] == ['slm-agent']
    for name in ('recreate_database', 'slm-manage', 'create_service_user',
                 'get_or_create_service', 'get_or_create_endpoint', 'wait_for_service'):
        assert node.named(name) == [], name
    conf = node.slm_conf
    assert conf['DEFAULT']['transport_url'].startswith('rabbit://')
    assert conf['agent']['libvirt_uri'] == 'qemu:///system'
    # only what the agent reads: no database URL, no credentials
    assert conf.sections() == ['DEFAULT', 'agent']
    assert node.named('configure_keystone_authtoken_middleware') == []
    assert node.named('add_user_to_group') == [[node.env['STACK_USER'], 'libvirt']]


def test_agent_takes_novas_host_name(stack):
    node = stack(['stack post-config'], services=COMPUTE, disabled='slm-api,slm-engine',
                 nova_cpu_conf='[DEFAULT]\nhost = compute-1.dc2\n')
    assert node.ok, node.proc.stderr
    assert node.slm_conf['DEFAULT']['host'] == 'compute-1.dc2'
    node = stack(['stack post-config'], services=COMPUTE, disabled='slm-api,slm-engine')
    assert node.ok, node.proc.stderr
    assert 'host' not in node.slm_conf['DEFAULT']


def test_nothing_happens_without_an_slm_service(stack):
    node = stack(['stack install', 'stack post-config', 'stack extra', 'unstack', 'clean'],
                 services='n-cpu', disabled='slm-api,slm-engine')
    assert node.ok, node.proc.stderr
    assert set(node.names()) <= {'define_plugin', 'enable_service'}
    assert not (node.tmp / 'slm').exists()


def test_unstack_stops_and_clean_removes_the_configuration(stack):
    node = stack(['stack post-config', 'unstack', 'clean'])
    assert node.ok, node.proc.stderr
    assert [call[0] for call in node.named('stop_process')] == [
        'slm-api', 'slm-engine', 'slm-agent']
    assert not Path(node.env['SLM_CONF_DIR']).exists()


# -- libvirt prerequisites of the agent --------------------------------------------------

def test_recent_libvirt_passes_without_warning(stack):
    # 10.0.0 >= 7.2.0: a version comparison, not a string comparison
    node = stack(['stack post-config'], virsh=VIRSH_NEW)
    assert node.ok, node.proc.stderr
    assert node.named('warn') == [] and node.named('die') == []


def test_old_libvirt_stops_stack_sh(stack):
    node = stack(['stack post-config'], virsh=VIRSH_OLD)
    assert not node.ok
    [die] = node.named('die')
    assert 'libvirt 6.0.0' in die[1] and '7.2' in die[1]
    assert 'SLM_REQUIRE_DIRTY_RATE=False' in die[1]


def test_old_qemu_stops_stack_sh(stack):
    node = stack(['stack post-config'], virsh=VIRSH_OLD_QEMU)
    assert not node.ok
    [die] = node.named('die')
    assert 'QEMU 5.1.0' in die[1] and '5.2' in die[1]


def test_old_libvirt_only_warns_when_not_required(stack):
    node = stack(['stack post-config', 'stack extra'], virsh=VIRSH_OLD,
                 SLM_REQUIRE_DIRTY_RATE='False')
    assert node.ok, node.proc.stderr
    warnings = [call[1] for call in node.named('warn')]
    assert len(warnings) == 2
    assert 'libvirt 6.0.0' in warnings[0] and 'QEMU 4.2.1' in warnings[1]
    assert 'slm-agent' in [call[0] for call in node.named('run_process')]


def test_unreadable_libvirt_version_warns(stack):
    node = stack(['stack post-config'], virsh='error: failed to connect to the hypervisor\n')
    assert node.ok, node.proc.stderr
    [warning] = node.named('warn')
    assert 'could not read the libvirt and QEMU versions' in warning[1]


def test_missing_libvirt_group_stops_stack_sh(stack):
    node = stack(['stack post-config'], groups='kvm')
    assert not node.ok
    [die] = node.named('die')
    assert 'group libvirt' in die[1]


# -- test-config -------------------------------------------------------------------------

def test_test_config_writes_the_integration_suite_variables(stack):
    node = stack(['stack test-config'], SLM_TEST_TARGET_AZ='dc2')
    assert node.ok, node.proc.stderr
    env_file = Path(node.env['SLM_CONF_DIR']) / 'integration-tests.env'
    out = subprocess.run(
        ['bash', '-c', f'source "{env_file}"; echo "$SLM_TEST_CLOUD|$SLM_TEST_TARGET_AZ|'
         '$SLM_TEST_IMAGE|$SLM_TEST_FLAVOR|$SLM_TEST_NETWORK"'],
        capture_output=True, text=True, check=True, env={'PATH': os.environ['PATH']})
    assert out.stdout.strip() == 'devstack-admin|dc2|cirros-0.6.2-x86_64-disk|m1.tiny|private'


# -- the shell itself --------------------------------------------------------------------

@pytest.mark.parametrize('path', [PLUGIN, SETTINGS], ids=['plugin.sh', 'settings'])
def test_bash_parses(path):
    subprocess.run(['bash', '-n', str(path)], check=True)


def test_shellcheck_clean():
    shellcheck = ROOT / '.venv' / 'bin' / 'shellcheck'
    binary = str(shellcheck) if shellcheck.exists() else shutil.which('shellcheck')
    if binary is None:
        pytest.skip('shellcheck is not installed (tools/bootstrap.sh installs it)')
    proc = subprocess.run([binary, str(PLUGIN), str(SETTINGS)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout
