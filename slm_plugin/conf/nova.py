"""[nova] options: how SLM reaches Nova, and what Nova cannot tell it.

Nova knows the servers, their flavors, hosts and availability zones; it does
not know how fast the hosts' migration NICs and the links between the sites
are, nor how fast the guests dirty their memory. Those come from here (or from
the per-host agent, when one is deployed).
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from slm_plugin.conf import groups

nova_group = cfg.OptGroup(
    'nova',
    title='Nova options',
    help='How SLM talks to the Compute API through openstacksdk, and the capacities '
    'Nova does not know that the planner needs.',
)

nova_opts = [
    cfg.StrOpt(
        'cloud',
        default='envvars',
        help='Entry of clouds.yaml (or ``envvars`` for the OS_* environment variables) '
        'with the credentials SLM uses, when ``auth_type`` is not set in this section. '
        'They need the admin role: SLM reads the hosts of servers, lists compute '
        'services and live-migrates servers to a named host.',
    ),
    cfg.BoolOpt(
        'use_agent',
        default=False,
        help='Whether the SLM agent runs on the compute hosts (``slm-agent``). With it the '
        "engine measures each guest's dirty rate before planning, and caps, holds and "
        "force-completes migrations through libvirt; without it Nova's API is all there "
        'is: caps are not enforced and dirty rates are ``assumed_dirty_rate_mibps``. A '
        'job whose source hosts do not all answer runs without the agent and says so.',
    ),
    cfg.StrOpt(
        'region_name',
        help='Region of the Compute endpoint, where the credentials reach several.',
    ),
    cfg.FloatOpt(
        'host_nic_mibps',
        default=1192.0,
        min=0.001,
        help='Migration bandwidth of every compute host, in MiB/s each way (1192 is '
        '10 Gbit/s). Nova does not know it; the planner shares it between the '
        'migrations that leave or reach a host.',
    ),
    cfg.FloatOpt(
        'link_mibps',
        default=1192.0,
        min=0.001,
        help='Bandwidth, in MiB/s, of the link between two availability zones, shared '
        'by every migration that crosses it, unless ``links`` names the pair.',
    ),
    cfg.DictOpt(
        'links',
        default={},
        help='Bandwidth of the links between particular availability zones, in MiB/s, '
        'as ``zoneA+zoneB:MIBPS`` entries separated by commas, for example '
        '``dc1+dc2:500,dc1+dc3:120``. Pairs not listed get ``link_mibps``.',
    ),
    cfg.FloatOpt(
        'assumed_dirty_rate_mibps',
        default=0.0,
        min=0.0,
        help='Memory dirty rate assumed for every guest when nothing measures it. Nova '
        'does not know dirty rates; the SLM agent on the compute hosts measures '
        'them. Without the agent the plan says it assumed this value.',
    ),
    cfg.BoolOpt(
        'shared_storage',
        default=False,
        help="Whether the guests' disks are on storage shared by source and "
        'destination hosts (then only memory moves). Migrations are started with '
        '``block_migration: auto``, so Nova decides; this only tells the planner '
        "whether to count the flavor's root and ephemeral disk as data to copy. "
        'Servers that boot from volume never copy their root disk.',
    ),
    cfg.IntOpt(
        'max_concurrent_live_migrations',
        default=1,
        min=1,
        help="The computes' own ``[DEFAULT] max_concurrent_live_migrations`` (Nova's "
        'default is 1). Nova runs at most that many live migrations out of one compute '
        'host and queues the others, which the Compute API does not say; the planner '
        'runs no more than this many (and no more than ``[engine] '
        'max_concurrent_migrations_per_host``) from one host, so that what it plans as '
        'running is running.',
    ),
    cfg.BoolOpt(
        'permit_auto_converge',
        default=False,
        help="The compute hosts' ``[libvirt] live_migration_permit_auto_converge`` "
        "(Nova's default is false): whether Nova starts each live migration with QEMU's "
        "auto-converge, which throttles a guest's vCPUs while it does not converge. Nova "
        'decides it at the start of each migration, so SLM cannot change it for one job: '
        'the planner models what the computes do, and a request asking for the other '
        '(``options.allow_auto_converge``) is refused before anything starts. Nova does '
        'not auto-converge a migration it may switch over by post-copy: with '
        '``live_migration_permit_post_copy`` on, set this to false.',
    ),
    cfg.BoolOpt(
        'reset_state_after_abort',
        default=True,
        help='Reset to ACTIVE a server that Nova put in ERROR after SLM aborted its '
        "migration, when it still runs on its source host. Nova 34's libvirt driver does "
        'this about a second after a clean rollback (the guest keeps running); operators '
        'recover with ``openstack server set --state active``, which is what this does. '
        "Either way the job's notes name the server.",
    ),
    cfg.FloatOpt(
        'converged_remaining_mib',
        default=32.0,
        min=0.0,
        help='Memory still to send, in MiB, below which a running migration is '
        'reported as converged (held) once it has sent all of memory once. Nova '
        'reports only bytes; this is where SLM reads "ready to switch over" from '
        'them.',
    ),
    cfg.IntOpt(
        'retry_attempts',
        default=5,
        min=1,
        help='Attempts of one call to the Compute API that fails transiently (no '
        'connection, HTTP 5xx, 409 while the server is busy) before SLM gives up on '
        'it. Requests Nova refuses (400, 403, 404) are never repeated.',
    ),
    cfg.FloatOpt(
        'retry_initial_delay',
        default=0.5,
        min=0.0,
        help='Seconds before the first repeat of a failed call; each further wait '
        'doubles, plus a random jitter, up to ``retry_max_delay``.',
    ),
    cfg.FloatOpt(
        'retry_max_delay',
        default=10.0,
        min=0.0,
        help='Longest wait, in seconds, between two attempts of one call.',
    ),
]


def register_opts(conf):
    # a group of this conf's own (groups.register): otherwise the auth plugin options
    # keystoneauth registers on one conf would appear, required, in every other
    groups.register(conf, nova_group, nova_opts)
    # keystoneauth's own options, as Nova and Watcher have them for the services they
    # call: ``auth_type`` and the plugin's options (loaded when the section is read),
    # and the session's (TLS, timeout)
    ks_loading.register_session_conf_options(conf, nova_group.name)
    ks_loading.register_auth_conf_options(conf, nova_group.name)


def list_opts():
    auth = ks_loading.get_auth_common_conf_options() + \
        ks_loading.get_auth_plugin_conf_options('password')
    return [(nova_group, nova_opts + ks_loading.get_session_conf_options() + auth)]
