"""[agent] options: the per compute host service that drives libvirt."""

from oslo_config import cfg

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
]


def register_opts(conf):
    conf.register_group(agent_group)
    conf.register_opts(agent_opts, group=agent_group)


def list_opts():
    return [(agent_group, agent_opts)]
