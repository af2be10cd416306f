"""[agent] options: the per compute host service that drives libvirt."""

from oslo_config import cfg

from slm_plugin.conf import groups

agent_group = cfg.OptGroup(
    'agent',
    title='SLM agent options',
    help='Options for the slm-agent service, which runs on every compute host, measures '
    'the guests and drives their live migrations through libvirt.',
)

agent_opts = [
    cfg.StrOpt(
        'libvirt_uri',
        default='qemu:///system',
        help='libvirt connection URI of the local hypervisor. Change it when the agent '
        'runs in a container that reaches libvirtd over TCP or TLS, or for a test '
        'hypervisor such as ``test:///default``.',
    ),
    cfg.StrOpt(
        'topic_prefix',
        default='slm-agent',
        help='Prefix of the RPC topics of the agents. The agent on a compute host listens '
        'on ``<prefix>.<host>`` so that the engine can address the host that owns a '
        'migration. Change it only to run two independent SLM deployments on one '
        'message bus.',
    ),
    cfg.IntOpt(
        'dirty_rate_seconds',
        default=2,
        min=1,
        max=60,
        help="Period over which the agent measures a guest's dirty rate with libvirt's "
        'dirty-rate calculation (page sampling). Longer periods average out bursts but '
        "saturate at the guest's writable working set; small guests give coarse "
        'readings (QEMU samples a fixed number of pages per GiB).',
    ),
    cfg.IntOpt(
        'hold_downtime_ms',
        default=1,
        min=1,
        help='Max downtime the agent sets on a held migration so that QEMU keeps '
        'iterating instead of switching over; releasing restores the downtime the '
        'migration had. QEMU has no hard hold: a guest that writes almost nothing can '
        'still converge under any limit, so planners release the group by post-copy '
        'where that matters.',
    ),
    cfg.IntOpt(
        'rpc_timeout',
        default=10,
        min=1,
        help='Seconds the engine waits for an agent to answer a call (statistics, caps, '
        'holds). A dirty-rate measurement waits ``dirty_rate_seconds`` longer.',
    ),
    cfg.IntOpt(
        'probe_timeout',
        default=3,
        min=1,
        help="Seconds the engine waits for an agent's first answer before it plans "
        "without that host's measurements and says so.",
    ),
]


def register_opts(conf):
    groups.register(conf, agent_group, agent_opts)


def list_opts():
    return [(agent_group, agent_opts)]
